"""Tests for dashboard.stats.lts against R (robustbase::ltsReg, lm) and Python OLS.

Reference numbers come from tests/data/lts/reference.json, written by
tests/data/lts/make_reference.R (R 4.2 + robustbase 0.95.0, default settings).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import timeit
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from dashboard.stats import lts as lts_mod
from dashboard.stats.lts import RegressionResult, lts_regression, ols_regression

REF_PATH = Path(__file__).resolve().parents[1] / "data" / "lts" / "reference.json"
REF = json.loads(REF_PATH.read_text())
DATASETS = {d["name"]: d for d in REF["datasets"]}
EXACT_FIT = "n22_exact_fit"  # raw scale < 1e-7: SEs / t / p are rounding noise in R
REGULAR = [name for name in DATASETS if name != EXACT_FIT]

RTOL = 1e-6
ATOL = 1e-9


def _num(v) -> float:
    """JSON value -> float (null = NA -> nan; "Infinity"/"NaN" strings)."""
    return np.nan if v is None else float(v)


def _arr(values) -> np.ndarray:
    return np.array([_num(v) for v in values], dtype=float)


def _xy(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = DATASETS[name]
    return _arr(d["x"]), _arr(d["y"])


def assert_close(actual: float, expected: float, what: str, *, atol: float = ATOL) -> None:
    """|a - e| <= 1e-6 |e|, or (only when |e| <= atol) |a - e| <= atol."""
    expected = _num(expected)
    assert np.isfinite(actual), f"{what}: got non-finite {actual!r}"
    err = abs(actual - expected)
    ok = err <= RTOL * abs(expected) or (abs(expected) <= atol and err <= atol)
    assert ok, f"{what}: got {actual!r}, R {expected!r} (rel err {err / max(abs(expected), 1e-300):.3g})"


# --------------------------------------------------------------------------
# reference file sanity
# --------------------------------------------------------------------------
def test_reference_file_provenance_and_coverage():
    assert REF["meta"]["robustbase_version"] == "0.95.0"
    assert len(REF["datasets"]) >= 6
    n_finite = {d["name"]: d["n_finite"] for d in REF["datasets"]}
    # the required shapes of data are all present
    assert n_finite["n22_two_outliers"] == 22
    assert n_finite["n22_clean"] == 22
    assert n_finite["n15"] == 15
    assert n_finite["n37_leverage_cluster"] == 37
    assert n_finite["n60_random_starts"] == 60
    assert n_finite["n22_tied_x"] == 22
    assert n_finite["n26_with_na"] == 23
    x, _ = _xy("n22_tied_x")
    assert np.unique(x).size == 11
    x, _ = _xy("n30_skewed_x")
    assert stats.skew(x) > 1.5


def test_reference_outliers_are_flagged_by_r():
    # guards against a reference file where LTS does nothing interesting
    w = _arr(DATASETS["n22_two_outliers"]["lts"]["weights"])
    assert w[2] == 0 and w[16] == 0
    assert w.sum() < 22


# --------------------------------------------------------------------------
# LTS vs R
# --------------------------------------------------------------------------
SCALAR_FIELDS = [
    "raw_intercept",
    "raw_slope",
    "raw_scale",
    "intercept",
    "slope",
    "scale",
    "r_squared",
    "t_value",
    "p_value",
    "df_resid",
    "intercept_se",
    "slope_se",
]


@pytest.mark.parametrize("name", REGULAR)
def test_lts_matches_r(name):
    d = DATASETS[name]
    ref = d["lts"]
    x, y = _xy(name)
    res = lts_regression(x, y)

    assert isinstance(res, RegressionResult)
    assert res.method == "lts"
    assert res.n == d["n_finite"]
    for field in SCALAR_FIELDS:
        # p-values can be 1e-40: always compare them relatively
        assert_close(getattr(res, field), ref[field], f"{name}.{field}",
                     atol=0.0 if field == "p_value" else ATOL)
    np.testing.assert_array_equal(res.weights, _arr(ref["weights"]), err_msg=f"{name} lts.wt")
    np.testing.assert_array_equal(res.raw_weights, _arr(ref["raw_weights"]), err_msg=f"{name} raw.weights")
    assert res.n_eff == pytest.approx(sum(ref["weights"]), abs=0)
    assert res.df_resid == res.n_eff - 2
    # residual standard error of summary.lts = sqrt(sum(w r^2)/df): check the
    # documented relation between our fields and R's sigma
    resid = y[res.used] - (res.intercept + res.slope * x[res.used])
    np.testing.assert_allclose(resid, _arr(ref["residuals"]), rtol=RTOL, atol=ATOL)
    sigma = np.sqrt(np.sum(res.weights * resid**2) / res.df_resid)
    assert_close(float(sigma), ref["sigma"], f"{name}.sigma")


@pytest.mark.parametrize("name", REGULAR)
def test_best_subset_matches_r(name):
    """The FAST-LTS search picks exactly R's raw h-subset (fit$best)."""
    d = DATASETS[name]
    x, y = _xy(name)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    h = lts_mod._h_alpha_n(0.5, n, 2)
    assert h == d["lts"]["quan"]
    best = np.sort(lts_mod._fast_lts_best(x[ok], y[ok], h)) + 1
    np.testing.assert_array_equal(best, np.array(d["lts"]["best"], dtype=int))


def test_exact_fit_branch_matches_r():
    d = DATASETS[EXACT_FIT]
    ref = d["lts"]
    x, y = _xy(EXACT_FIT)
    res = lts_regression(x, y)
    assert res.raw_scale == 0.0 and res.scale == 0.0
    assert _num(ref["raw_scale"]) == 0.0 and _num(ref["scale"]) == 0.0
    for field in ["raw_intercept", "raw_slope", "intercept", "slope", "r_squared", "df_resid"]:
        assert_close(getattr(res, field), ref[field], f"exact.{field}")
    np.testing.assert_array_equal(res.weights, _arr(ref["weights"]))
    assert res.n_eff == 14
    # R's t is ~1e16 (division by a rounding-noise SE); ours is >= that or inf
    assert abs(res.t_value) >= 1e12
    assert res.p_value <= 1e-100


@pytest.mark.parametrize(
    "name",
    [n for n in REGULAR if sum(DATASETS[n]["lts"]["raw_weights"]) < DATASETS[n]["n_finite"]],
)
def test_correction_factors_match_r(name):
    d = DATASETS[name]
    n = d["n_finite"]
    ref = d["lts"]
    assert_close(lts_mod._lts_cnp2(n, 0.5), ref["raw_cnp2"][1], "LTScnp2")
    assert_close(lts_mod._lts_cnp2_rew(n, 0.5), ref["cnp2"][1], "LTScnp2.rew")
    assert_close(lts_mod._consistency(sum(ref["raw_weights"]), n), ref["cnp2"][0], "cdelta.rew")


def test_documented_constants_for_n22():
    assert lts_mod._h_alpha_n(0.5, 22, 2) == 12
    assert lts_mod._lts_cnp2(22, 0.5) == pytest.approx(1.3358, abs=5e-5)
    assert lts_mod._lts_cnp2_rew(22, 0.5) == pytest.approx(1.0560, abs=5e-5)
    assert lts_mod._CUTOFF == pytest.approx(np.sqrt(stats.chi2.ppf(0.975, 1)), rel=1e-14)
    assert lts_mod._CUTOFF == pytest.approx(stats.norm.ppf(0.9875), rel=1e-14)


def test_lts_differs_from_ols_when_there_are_outliers():
    x, y = _xy("n22_two_outliers")
    lts = lts_regression(x, y)
    ols = ols_regression(x, y)
    assert abs(lts.slope - ols.slope) > 0.05
    assert ols.method == "ols"


# --------------------------------------------------------------------------
# behaviour / invariances
# --------------------------------------------------------------------------
def test_non_finite_pairs_are_dropped_and_mask_returned():
    x, y = _xy("n22_two_outliers")
    x2 = np.insert(x, [0, 5, 10], [np.nan, 1.0, np.inf])
    y2 = np.insert(y, [0, 5, 10], [3.0, np.nan, 2.0])
    res = lts_regression(list(x2), list(y2))
    base = lts_regression(x, y)
    assert res.used.shape == x2.shape
    assert res.used.sum() == 22 and res.n == 22
    np.testing.assert_array_equal(res.used, np.isfinite(x2) & np.isfinite(y2))
    np.testing.assert_array_equal(res.weights, base.weights)
    assert res.slope == pytest.approx(base.slope, rel=1e-12)
    assert res.p_value == pytest.approx(base.p_value, rel=1e-10)


def test_affine_equivariance():
    x, y = _xy("n37_leverage_cluster")
    base = lts_regression(x, y)
    res = lts_regression(3.0 * x - 7.0, -2.0 * y + 5.0)
    # y' = -2 y + 5, x' = 3 x - 7  =>  slope' = -2/3 slope
    assert res.slope == pytest.approx(-2.0 / 3.0 * base.slope, rel=1e-9)
    assert res.intercept == pytest.approx(-2.0 * (base.intercept + 7.0 / 3.0 * base.slope) + 5.0, rel=1e-9)
    assert res.scale == pytest.approx(2.0 * base.scale, rel=1e-9)
    np.testing.assert_array_equal(res.weights, base.weights)
    assert res.t_value == pytest.approx(-base.t_value, rel=1e-8)
    assert res.r_squared == pytest.approx(base.r_squared, rel=1e-9)


def test_permutation_invariance():
    x, y = _xy("n30_skewed_x")
    base = lts_regression(x, y)
    perm = np.random.default_rng(3).permutation(x.size)
    res = lts_regression(x[perm], y[perm])
    assert res.slope == pytest.approx(base.slope, rel=1e-10)
    np.testing.assert_array_equal(res.weights, base.weights[perm])


def test_alpha_changes_h_and_fit():
    x, y = _xy("n22_two_outliers")
    assert lts_mod._h_alpha_n(0.75, 22, 2) == 17
    res = lts_regression(x, y, alpha=0.75)
    assert res.raw_scale != pytest.approx(lts_regression(x, y).raw_scale, rel=1e-6)
    assert res.weights[2] == 0 and res.weights[16] == 0


def test_result_is_immutable():
    x, y = _xy("n15")
    res = lts_regression(x, y)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.slope = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.weights[0] = 5.0


def test_speed_n22():
    x, y = _xy("n22_two_outliers")
    times = timeit.repeat(lambda: lts_regression(x, y), number=1, repeat=20)
    assert statistics.median(times) < 0.05


def test_larger_n_runs_and_finds_outliers():
    rng = np.random.default_rng(7)
    n = 400
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + rng.normal(scale=0.3, size=n)
    y[:40] += 15.0
    res = lts_regression(x, y)
    assert res.slope == pytest.approx(2.0, abs=0.1)
    assert res.weights[:40].sum() == 0


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [lts_regression, ols_regression])
def test_too_few_points(fn):
    with pytest.raises(ValueError, match="at least 3"):
        fn([1.0, 2.0, np.nan], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("fn", [lts_regression, ols_regression])
def test_constant_x(fn):
    with pytest.raises(ValueError, match="constant"):
        fn([2.0] * 10 + [np.nan], list(range(11)))


@pytest.mark.parametrize("fn", [lts_regression, ols_regression])
def test_bad_shapes(fn):
    with pytest.raises(ValueError, match="same length"):
        fn([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        fn(np.ones((3, 2)), np.ones((3, 2)))


def test_lts_needs_more_than_four_points():
    with pytest.raises(ValueError, match="n > 4"):
        lts_regression([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0])
    ols_regression([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0])  # fine for OLS


@pytest.mark.parametrize("alpha", [0.4, 1.0, 1.2])
def test_lts_alpha_range(alpha):
    with pytest.raises(ValueError, match="alpha"):
        lts_regression(np.arange(10.0), np.arange(10.0) ** 2, alpha=alpha)


def test_lts_degenerate_x_majority():
    # more than half of x identical (MAD 0) and the rest tiny: R fails too
    x = np.array([0.0] * 8 + [1e-9, 2e-9, 3e-9])
    with pytest.raises(ValueError, match="no valid subsample"):
        lts_regression(x, np.arange(11.0))


# --------------------------------------------------------------------------
# OLS
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(DATASETS))
def test_ols_matches_r_lm(name):
    ref = DATASETS[name]["ols"]
    x, y = _xy(name)
    res = ols_regression(x, y)
    for field in ["intercept", "slope", "intercept_se", "slope_se", "t_value", "r_squared", "df_resid"]:
        assert_close(getattr(res, field), ref[field], f"{name}.ols.{field}")
    assert_close(res.p_value, ref["p_value"], f"{name}.ols.p_value", atol=0.0)
    assert_close(res.scale, ref["sigma"], f"{name}.ols.sigma")


@pytest.mark.parametrize("name", list(DATASETS))
def test_ols_matches_statsmodels_and_linregress(name):
    x, y = _xy(name)
    ok = np.isfinite(x) & np.isfinite(y)
    res = ols_regression(x, y)
    fit = sm.OLS(y[ok], sm.add_constant(x[ok])).fit()
    lr = stats.linregress(x[ok], y[ok])

    np.testing.assert_allclose([res.intercept, res.slope], fit.params, rtol=1e-9)
    np.testing.assert_allclose([res.intercept_se, res.slope_se], fit.bse, rtol=1e-9)
    assert res.t_value == pytest.approx(fit.tvalues[1], rel=1e-9)
    assert res.p_value == pytest.approx(fit.pvalues[1], rel=1e-8)
    assert res.r_squared == pytest.approx(fit.rsquared, rel=1e-9)
    assert res.df_resid == fit.df_resid
    assert res.scale == pytest.approx(np.sqrt(fit.scale), rel=1e-9)

    assert res.slope == pytest.approx(lr.slope, rel=1e-9)
    assert res.intercept == pytest.approx(lr.intercept, rel=1e-9, abs=1e-12)
    assert res.slope_se == pytest.approx(lr.stderr, rel=1e-9)
    assert res.intercept_se == pytest.approx(lr.intercept_stderr, rel=1e-9)
    assert res.r_squared == pytest.approx(lr.rvalue**2, rel=1e-9)
    assert res.p_value == pytest.approx(lr.pvalue, rel=1e-8)

    assert res.n == ok.sum() and res.n_eff == ok.sum()
    np.testing.assert_array_equal(res.weights, np.ones(ok.sum()))
    assert res.raw_slope is None and res.raw_scale is None
