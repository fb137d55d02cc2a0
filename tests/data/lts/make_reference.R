#!/usr/bin/env Rscript
## Reference results for dashboard.stats.lts (tests/unit/test_lts.py).
##
## Writes reference.json next to this script: deterministic datasets
## (set.seed per dataset) plus R's robustbase::ltsReg() results with DEFAULT
## settings (alpha = 1/2, nsamp = 500, adjust = FALSE, use.correction = TRUE,
## wgtFUN = "01.original") and summary.lts(), and stats::lm() + summary.lm().
##
## Regenerate (from the repository root):
##     Rscript tests/data/lts/make_reference.R
## Needs R >= 4 and robustbase (written against 0.95.0). No jsonlite needed:
## the JSON is written by hand, numbers with sprintf("%.17g") (round-trips
## IEEE doubles exactly); NA is written as null, NaN/Inf as the strings
## "NaN", "Infinity", "-Infinity" (Python: float(s)).
##
## For n > 50 ltsReg() draws 500 random starting pairs from R's RNG; we call
## set.seed(1) right before ltsReg() so the committed output is reproducible.
## 'best' (the raw h-subset) uses 1-based row numbers among the finite pairs.

suppressPackageStartupMessages(library(robustbase))

args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "."
out_file <- file.path(out_dir, "reference.json")

## ---------- tiny JSON writer ----------
num1 <- function(v) {
  stopifnot(length(v) == 1L)
  if (is.finite(v)) sprintf("%.17g", v)
  else if (is.nan(v)) "\"NaN\""           # strings, so the file stays strict JSON
  else if (is.infinite(v)) if (v > 0) "\"Infinity\"" else "\"-Infinity\""
  else "null"                                # NA (missing)
}
numv <- function(v) paste0("[", paste(vapply(as.numeric(v), num1, ""), collapse = ", "), "]")
str1 <- function(s) paste0("\"", gsub("\"", "\\\\\"", s), "\"")
obj <- function(fields, indent = "    ") {
  body <- paste0(indent, "  ", str1(names(fields)), ": ", unlist(fields), collapse = ",\n")
  paste0("{\n", body, "\n", indent, "}")
}

## ---------- datasets ----------
datasets <- list()
add <- function(name, description, x, y, seed_fit = NA) {
  datasets[[length(datasets) + 1L]] <<- list(name = name, description = description,
                                             x = x, y = y, seed_fit = seed_fit)
}

set.seed(101); n <- 22
x <- round(runif(n, 0, 10), 3); y <- 1.5 + 0.8 * x + rnorm(n, sd = 0.7)
y[c(3, 17)] <- y[c(3, 17)] + c(12, -9)
add("n22_two_outliers", "n=22, linear, two gross y-outliers (obs 3, 17)", x, y)

set.seed(202); n <- 22
x <- rnorm(n, 50, 10); y <- 10 - 0.3 * x + rnorm(n, sd = 2)
add("n22_clean", "n=22, clean linear relation, Gaussian noise", x, y)

set.seed(303); n <- 15
x <- runif(n, -2, 2); y <- 0.5 + 2 * x + rnorm(n, sd = 0.5)
y[4] <- 8; x[11] <- 4; y[11] <- -3
add("n15", "n=15, one y-outlier and one bad leverage point", x, y)

set.seed(404); n <- 37
x <- rnorm(n, 0, 1); y <- -1 + 1.2 * x + rnorm(n, sd = 0.4)
bad <- 31:37; x[bad] <- rnorm(length(bad), 3, 0.3); y[bad] <- rnorm(length(bad), -4, 0.5)
add("n37_leverage_cluster", "n=37, cluster of 7 bad leverage points", x, y)

set.seed(505); n <- 60
x <- runif(n, 0, 20); y <- 4 + 0.5 * x + rnorm(n, sd = 1)
bad <- sample(n, 8); y[bad] <- y[bad] + runif(8, 8, 15)
add("n60_random_starts", "n=60 (> 50: R uses 500 random starting pairs), 8 y-outliers, clear optimum",
    x, y, seed_fit = 1)

set.seed(606)
x <- rep(0:10, 2); y <- 3 + 0.4 * x + rnorm(22, sd = 0.5)
y[5] <- y[5] + 6; y[18] <- y[18] - 4
add("n22_tied_x", "n=22, every x value occurs twice (integer x), two outliers", x, y)

set.seed(707); n <- 30
x <- round(rlnorm(n, meanlog = 2, sdlog = 0.9))
x[c(7, 19, 26)] <- c(45, 60, 38)
y <- 0.1 + 0.01 * x + rnorm(n, sd = 0.2)
y[c(19, 26)] <- y[c(19, 26)] - c(1.5, 1.2)
add("n30_skewed_x", "n=30, right-skewed integer x (like years of use) with extreme values, weak slope", x, y)

set.seed(808); n <- 26
x <- rnorm(n, 10, 3); y <- 2 - 0.5 * x + rnorm(n, sd = 1)
y[c(6, 13)] <- y[c(6, 13)] + c(7, 9)
x[2] <- NA; y[9] <- NA; x[20] <- NA; y[20] <- NA
add("n26_with_na", "n=26 with 3 incomplete pairs (NA in x, y, both); 23 finite pairs", x, y)

set.seed(909); n <- 150
x <- rgamma(n, shape = 2, scale = 3); y <- 1 + 0.7 * x + rnorm(n, sd = 1.5)
bad <- sample(n, 22); y[bad] <- y[bad] - runif(22, 10, 20)
add("n150_random_starts", "n=150 (> 50: R random starts), 22 y-outliers, clear optimum", x, y, seed_fit = 1)

set.seed(1111); n <- 22
x <- round(runif(n, 0, 10), 2); y <- 1 + 2 * x
bad <- c(2, 5, 9, 13, 16, 20, 21, 22); y[bad] <- y[bad] + rnorm(length(bad), 0, 5)
add("n22_exact_fit", "n=22, 14 points exactly on y = 1 + 2x: raw scale < 1e-7 (exact-fit branch)", x, y)

## A few small random cases (exhaustive pair search in R) to exercise the
## FAST-LTS replication (starting pairs, 2 C-steps, top-10, full C-steps).
for (k in 1:12) {
  set.seed(1000 + k)
  n <- sample(c(5:12, 18, 22, 25, 33, 41, 50), 1)
  x <- round(rnorm(n, 0, 2), 2)
  y <- round(0.3 - 0.7 * x + rt(n, df = 2), 2)
  add(sprintf("fuzz_%02d_n%d", k, n), "small random heavy-tailed data (t_2 errors), 2-decimal values", x, y)
}

## ---------- fits ----------
records <- character(0)
for (d in datasets) {
  x <- d$x; y <- d$y
  if (!is.na(d$seed_fit)) set.seed(d$seed_fit)
  df <- data.frame(x = x, y = y)
  ## formula interface, all defaults: model.frame's na.omit drops incomplete
  ## pairs (summary.lts() fails on ltsReg.default fits with NA rows).
  fit <- ltsReg(y ~ x, data = df)
  s <- summary(fit)
  cf <- s$coefficients                       # rows: (Intercept), x
  ok <- is.finite(x) & is.finite(y)
  stopifnot(length(fit$lts.wt) == sum(ok))
  lm_fit <- lm(y ~ x, data = df)             # na.action = na.omit
  ls <- summary(lm_fit)
  lcf <- ls$coefficients
  lts <- obj(list(
    raw_intercept = num1(fit$raw.coefficients[1]), raw_slope = num1(fit$raw.coefficients[2]),
    raw_scale = num1(fit$raw.scale),
    intercept = num1(fit$coefficients[1]), slope = num1(fit$coefficients[2]),
    scale = num1(fit$scale),
    quan = num1(fit$quan), best = numv(fit$best), crit = num1(fit$crit),
    raw_weights = numv(fit$raw.weights), weights = numv(fit$lts.wt),
    residuals = numv(fit$residuals),
    raw_cnp2 = numv(fit$raw.cnp2), cnp2 = numv(fit$cnp2),
    r_squared = num1(s$r.squared), sigma = num1(s$sigma),
    df_resid = num1(s$df[2]),
    intercept_se = num1(cf[1, 2]), slope_se = num1(cf[2, 2]),
    intercept_t = num1(cf[1, 3]), t_value = num1(cf[2, 3]),
    intercept_p = num1(cf[1, 4]), p_value = num1(cf[2, 4])
  ), indent = "      ")
  ols <- obj(list(
    intercept = num1(lcf[1, 1]), slope = num1(lcf[2, 1]),
    intercept_se = num1(lcf[1, 2]), slope_se = num1(lcf[2, 2]),
    t_value = num1(lcf[2, 3]), p_value = num1(lcf[2, 4]),
    r_squared = num1(ls$r.squared), sigma = num1(ls$sigma), df_resid = num1(ls$df[2])
  ), indent = "      ")
  records <- c(records, obj(list(
    name = str1(d$name), description = str1(d$description),
    n_total = num1(length(x)), n_finite = num1(sum(ok)),
    seed_before_fit = if (is.na(d$seed_fit)) "null" else num1(d$seed_fit),
    x = numv(x), y = numv(y), lts = lts, ols = ols
  ), indent = "    "))
}

header <- obj(list(
  generator = str1("tests/data/lts/make_reference.R"),
  R_version = str1(R.version.string),
  robustbase_version = str1(as.character(packageVersion("robustbase"))),
  call = str1("ltsReg(y ~ x, data) with all defaults; summary(fit); lm(y ~ x, data)")
), indent = "  ")
json <- paste0("{\n  \"meta\": ", header, ",\n  \"datasets\": [\n    ",
               paste(records, collapse = ",\n    "), "\n  ]\n}\n")
writeLines(json, out_file, sep = "")
cat("wrote", out_file, "(", length(datasets), "datasets )\n")
