"""Deterministic generator of the synthetic sample study (``cue-dashboard make-sample``).

The sample imitates the *published summary statistics* of the N-AC cue-reactivity
study (``dashboard/data/*.tsv``, copied from the study's shared folder); it is not
participant data.  Everything is drawn from one seeded ``numpy`` generator, so the same
seed gives the same files (see the end of this docstring for other machines).

How the images are built (all on SPM's 2 mm MNI grid, 79 x 95 x 79, LAS, where every
even MNI coordinate is a voxel centre):

1. Noise: per participant a smooth random effect shared by the four cells plus smooth
   image noise per cell (Gaussian white noise smoothed to 6 mm FWHM), inside the
   MNI152 brain mask that nilearn ships.
2. Planted clusters (published peaks, illustrative prefrontal/insula clusters of the
   placebo map): a target T field per contrast, a Gaussian blob per cluster whose peak
   T and width give the published T and extent.  Inside a blob's support the cell
   signal is set so that the group T map of the ``cells`` model *equals* the target
   (signal = target x standard error - noise contrast), so peaks sit exactly on the
   published coordinates.  Each blob casts a sub-threshold "shadow" on the other
   session so that the interaction map shows no cluster the paper does not report.
3. The interaction cluster (right SFG, 14 64 14): a rank-one pattern over
   participants x cells whose cocaine-under-placebo values are designed so that the
   SPM first eigenvariate regressed on duration of cocaine use with LTS gives the
   published line; calibrated by fixed-point iteration using the app's own model,
   cluster, eigenvariate and LTS code.
4. Large noise-only clusters are damped until no unplanned cluster exceeds 30 voxels.
5. Images are quantised (int16, step 0.01) and the group T maps are computed from the
   quantised images with :func:`dashboard.stats.models.fit_group_model`, so recomputing
   them from the stored images reproduces the stored maps (to half of ``T_QUANTUM``).

What is written is quantised, so that another machine, whose BLAS or summation order
changes the last bits of a model fit, writes the same bytes: participant images on the
int16 grid ``QUANTUM``, group T maps rounded to ``T_QUANTUM`` before the float32 cast,
smoothness sidecar values to 6 significant digits, participant variables to a few
decimals.  Residual risk: a value within the cross-platform noise (about 1e-14) of a
rounding midpoint can still land on the neighbouring grid point, i.e. one step off;
``test_sm012`` therefore compares what comes out of floating-point arithmetic with a
tolerance of one step, and the rest byte for byte.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from scipy import ndimage, stats

from dashboard.design import CONDITIONS, CONTRASTS, cue_design
from dashboard.results import load_study
from dashboard.stats.clusters import find_clusters
from dashboard.stats.extract import cluster_values
from dashboard.stats.lts import lts_regression
from dashboard.stats.models import fit_group_model
from dashboard.stats.rft import estimate_smoothness, smoothness_to_sidecar
from dashboard.stats.thresholds import t_threshold
from dashboard.writer import write_group_maps, write_results_folder

DEFAULT_SEED = 20181204
N_PARTICIPANTS = 22
SPM_SHAPE = (79, 95, 79)
SPM_AFFINE = np.array([[-2.0, 0, 0, 78], [0, 2, 0, -112], [0, 0, 2, -70], [0, 0, 0, 1]])
FWHM_MM = 6.0
DF_CELLS = N_PARTICIPANTS * 4 - 4  # 84
P_UNC = 0.001
EXTENT = 10
QUANTUM = 0.01  # storage step of participant images (int16; noise SD is about 1)
# Storage step of the group T maps.  The float64 T of a model fit differs between
# machines in the last bits (3.6e-15 seen, from BLAS / summation order), which a float32
# cast can carry into the written bytes.  Rounding to 1e-4 first puts every stored value
# on a grid ten orders of magnitude coarser than that noise, yet far finer than anything
# published or tested: published T have 2 decimals and are matched to +-0.15, the
# p < 0.001 height is 3.19 (a voxel within 5e-5 of it is the only one whose cluster
# membership the rounding can change), and float32 resolves the grid (ulp <= 1e-6 for
# |T| < 16).  Recomputing a map from the stored images gives the stored one to within
# T_QUANTUM / 2 (+ float32 rounding).  Residual risk: a T within ~1e-14 of a rounding
# midpoint (k + 1/2) * 1e-4 can round the other way on another machine, one step off;
# for the 3 x 235366 stored values that is about a 1e-4 chance per run; test_sm012 allows it.
T_DECIMALS = 4
T_QUANTUM = 10.0**-T_DECIMALS
MAX_UNPLANNED_K = 30
class _Headline(TypedDict):
    peak: tuple[int, int, int]
    intercept: float
    slope: float
    r_squared: float

# What the app shows first and filters on, written into design.json (the app itself
# knows no study's columns): the published headline and the sample's main covariates.
VIEW_DEFAULTS = {
    "Contrast": "placebo",
    "Condition": "cocaine_placebo",
    "Covariate": "cocaine_duration_years",
    "QuickFilters": ["sex", "route", "urine_cocaine_before_placebo", "urine_cocaine_before_nac", "age", "cocaine_duration_years"],
}


HEADLINE: _Headline = {"peak": (14, 64, 14), "intercept": -0.44, "slope": 0.13, "r_squared": 0.42}
# The published R^2 0.42 and p < 0.001 cannot both hold for the LTS summary once a
# participant is down-weighted (n_eff 21, df 19: p < 0.001 needs R^2 >= 0.4425), so the
# sample aims at R^2 0.4465: inside the published value's rounding-and-reading margin
# (0.42 +- 0.03) with p < 0.001.
DESIGN_R_SQUARED = 0.4465
DURATION = "cocaine_duration_years"
COND_IDS = tuple(c["id"] for c in CONDITIONS)

SYNTHETIC_NOTE = (
    "Synthetic sample data generated by cue-dashboard make-sample to imitate the published "
    "summary statistics of a placebo-controlled cross-over fMRI trial of N-acetylcysteine in "
    "cocaine use disorder. It is not participant data."
)

_PUBLISHED_KEY = {
    "placebo_cocaine_gt_neutral": ("placebo", 1),
    "placebo_neutral_gt_cocaine": ("placebo", -1),
    "nac_cocaine_gt_neutral": ("nac", 1),
    "nac_neutral_gt_cocaine": ("nac", -1),
    "interaction_placebo_gt_nac": ("interaction", 1),
}

# STUDY.md names these placebo clusters without coordinates: placed here, marked illustrative.
_ILLUSTRATIVE = [
    ((-46, 8, 28), "Precentral gyrus; inferior frontal gyrus", "L", 60, 4.3),
    ((48, 10, 28), "Precentral gyrus; inferior frontal gyrus", "R", 55, 4.2),
    ((50, 30, 4), "Inferior frontal gyrus; middle frontal gyrus", "R", 45, 4.1),
    ((-22, 36, 46), "Superior frontal gyrus (lateral)", "L", 40, 4.0),
    ((-8, 26, 60), "Superior frontal gyrus (dorsal)", "L/R", 45, 4.1),
    ((2, 60, -6), "Medial frontal pole", "L/R", 40, 4.0),
    ((-38, -16, 8), "Insula (posterior)", "L", 35, 3.9),
    ((44, -8, 2), "Insula (posterior)", "R", 35, 3.9),
]


def data_file(name: str) -> Path:
    """A data file shipped in the package (published tables, characteristics)."""
    return Path(str(resources.files("dashboard") / "data" / name))


# ----------------------------------------------------------------------------------
# participants
# ----------------------------------------------------------------------------------
def _match_moments(raw: np.ndarray, mean: float, sd: float, lo: float | None = None) -> np.ndarray:
    """Monotone transform of ``raw`` with exactly the given mean and SD (ddof=1).

    Affine when that keeps every value >= ``lo``; otherwise ``lo + s * r**g`` with the
    power ``g`` found by bisection (keeps skewed variables skewed and non-negative).
    """
    z = (raw - raw.mean()) / raw.std(ddof=1)
    out = mean + sd * z
    if lo is None or out.min() >= lo:
        return np.asarray(out, dtype=float)
    r = raw - raw.min()
    r = r / r.max()

    def cv(g: float) -> float:
        x = r**g
        return float(x.std(ddof=1) / x.mean())

    target = sd / (mean - lo)
    g_lo, g_hi = 0.05, 20.0
    for _ in range(200):
        g = 0.5 * (g_lo + g_hi)
        if cv(g) < target:
            g_lo = g
        else:
            g_hi = g
    x = r**g
    return np.asarray(lo + x * (mean - lo) / x.mean(), dtype=float)


def _fixed_extremes(rng: np.random.Generator, n: int, mean: float, sd: float, lo: float, hi: float, skew: bool) -> np.ndarray:
    """n values whose min is ``lo`` and max ``hi`` exactly, with the given mean/SD."""
    total = n * mean
    ss = (n - 1) * sd**2 + n * mean**2
    m = n - 2
    inner_mean = (total - lo - hi) / m
    inner_var = (ss - lo**2 - hi**2) / m - inner_mean**2
    inner_sd = np.sqrt(inner_var * m / (m - 1))
    raw = rng.lognormal(0, 0.8, m) if skew else rng.normal(0, 1, m)
    inner = _match_moments(raw, inner_mean, inner_sd, lo=lo)
    if inner.min() < lo or inner.max() > hi:
        inner = np.clip(inner, lo, hi)
    values = np.concatenate([[lo, hi], inner])
    return values[rng.permutation(n)]


def _counts(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Boolean vector with exactly k True, at random places."""
    out = np.zeros(n, bool)
    out[rng.choice(n, size=k, replace=False)] = True
    return out


def _zero_inflated(rng: np.random.Generator, n: int, mean: float, sd: float, n_users: int) -> np.ndarray:
    """Mostly zeros (non-users) and a skewed positive tail, mean/SD as published."""
    out = np.zeros(n)
    users = rng.choice(n, size=n_users, replace=False)
    # for the users alone: mean_u, sd_u such that the whole vector has mean, sd
    total = n * mean
    ss = (n - 1) * sd**2 + n * mean**2
    mu = total / n_users
    var_u = ss / n_users - mu**2
    sd_u = np.sqrt(max(var_u, 1e-12) * n_users / max(n_users - 1, 1))
    out[users] = _match_moments(rng.lognormal(0, 1.0, n_users), mu, sd_u, lo=0.0)
    return out


def _orthogonal_noise(rng: np.random.Generator, against: list[np.ndarray], n: int) -> np.ndarray:
    """Standard-normal-like vector with zero sample correlation with ``against``."""
    x = np.column_stack([np.ones(n), *against])
    z = rng.normal(size=n)
    z = z - x @ np.linalg.lstsq(x, z, rcond=None)[0]
    return np.asarray(z / z.std(ddof=1), dtype=float)


@dataclass
class SampleParticipants:
    table: pd.DataFrame
    columns: dict[str, Any]
    headline_values: np.ndarray  # designed cocaine-under-placebo cluster values
    outliers: np.ndarray  # indices of the participants LTS should down-weight


def make_participants(rng: np.random.Generator) -> SampleParticipants:
    """participants.tsv content with every variable of sample_characteristics.tsv."""
    n = N_PARTICIPANTS
    ids = [f"sub-{i + 1:02d}" for i in range(n)]
    sex = np.array(["M"] * 16 + ["F"] * 6)[rng.permutation(n)]
    age = np.round(_fixed_extremes(rng, n, 30.72, 6.07, 19.2, 45.8, skew=False), 1)
    order = np.array(["placebo_first"] * 11 + ["nac_first"] * 11)[rng.permutation(n)]
    route = np.where(_counts(rng, n, 3), "inhaled", "nasal")
    urine_pla = np.where(_counts(rng, n, 8), "positive", "negative")
    urine_nac = np.where(_counts(rng, n, 11), "positive", "negative")

    # duration of use: skewed, with the long-use participants that LTS down-weights
    duration = np.round(_match_moments(rng.gamma(2.5, 1.0, n), 6.53, 3.96, lo=0.5), 1)
    grams = np.round(_fixed_extremes(rng, n, 5.68, 10.92, 1.0, 52.5, skew=True), 2)
    uses = np.clip(np.round(_fixed_extremes(rng, n, 3.16, 1.81, 0.0, 7.0, skew=False) * 2) / 2, 0, 7)
    cumulative = np.round(_match_moments(np.log1p(duration * grams * 52) + rng.normal(0, 0.6, n), 1989.92, 2528.32, lo=20.0), 0)

    # headline: designed cocaine-under-placebo cluster values (before calibration)
    outliers = np.argsort(duration)[-1:]  # the longest user: off the line
    values = _headline_values(rng, duration, outliers)

    # OCCUS and craving: unrelated to the cluster values by design (as published)
    occus = np.round(np.clip(20.65 + 7.89 * _orthogonal_noise(rng, [values, duration], n), 0, 56), 0)
    craving_trait = _orthogonal_noise(rng, [values], n)
    vas = {}
    targets = {("placebo", "before"): (3.41, 0.57), ("placebo", "after"): (4.27, 0.65), ("nac", "before"): (3.91, 0.65), ("nac", "after"): (4.92, 0.62)}
    for (ses, when), (m, se) in targets.items():
        raw = 0.8 * craving_trait + 0.6 * rng.normal(size=n)
        col = np.clip(_match_moments(raw, m, se * np.sqrt(n - 1), lo=0.0), 0, 10)
        vas[f"vas_craving_{ses}_{when}"] = np.round(col, 1)
    missing = int(rng.integers(n))
    vas["vas_craving_nac_after"][missing] = np.nan  # one missing rating, as published (N = 21)

    table = pd.DataFrame(
        {
            "participant_id": ids,
            "age": age,
            "sex": sex,
            "session_order": order,
            "route": route,
            "urine_cocaine_before_placebo": urine_pla,
            "urine_cocaine_before_nac": urine_nac,
            "occus": occus,
            DURATION: duration,
            "cocaine_grams_per_week": grams,
            "cocaine_uses_per_week": uses,
            "cocaine_cumulative_grams": cumulative,
        }
    )
    for name, _unit, mean, sd, users in [
        ("alcohol_grams_per_week", "g/week", 310.65, 581.97, 17),
        ("cigarettes_per_week", "count/week", 97.91, 72.97, 19),
        ("cannabis_grams_per_week", "g/week", 1.96, 5.96, 6),
        ("amphetamine_grams_per_week", "g/week", 0.17, 0.58, 3),
        ("mdma_mg_per_week", "mg/week", 22.80, 44.22, 7),
        ("opioid_grams_per_week", "g/week", 0.02, 0.05, 3),
        ("ghb_ml_per_week", "ml/week", 0.01, 0.03, 2),
        ("hallucinogen_trips_per_week", "trips/week", 0.17, 0.64, 2),
        ("ketamine_grams_per_week", "g/week", 0.03, 0.07, 4),
    ]:
        table[name] = np.round(_zero_inflated(rng, n, mean, sd, users), 3)
    for name, col in vas.items():
        table[name] = col

    columns = _participant_columns()
    return SampleParticipants(table=table, columns=columns, headline_values=values, outliers=outliers)


def _headline_values(rng: np.random.Generator, duration: np.ndarray, outliers: np.ndarray, attempts: int = 500) -> np.ndarray:
    """Cocaine-under-placebo cluster values on the published LTS line.

    Inliers: the line plus evenly spread residuals orthogonal to (1, duration) and
    scaled to the published R^2, so OLS on the inliers gives exactly the published
    intercept, slope and R^2; outliers: the longest users, far below the line.  LTS
    chooses its own inliers (raw and final), so arrangements of the residuals are
    drawn until ``lts_regression`` down-weights exactly the designed outliers and
    returns the designed line.
    """
    n = duration.size
    inl = np.setdiff1d(np.arange(n), outliers)
    x_in = np.column_stack([np.ones(inl.size), duration[inl]])
    ss_model = HEADLINE["slope"] ** 2 * ((duration[inl] - duration[inl].mean()) ** 2).sum()
    ss_resid = ss_model * (1 - DESIGN_R_SQUARED) / DESIGN_R_SQUARED
    resid_sd = np.sqrt(ss_resid / (inl.size - 2))
    expected = np.ones(n)
    expected[outliers] = 0
    for _ in range(attempts):
        z = rng.permutation(np.linspace(-1.0, 1.0, inl.size))
        z -= x_in @ np.linalg.lstsq(x_in, z, rcond=None)[0]
        values = HEADLINE["intercept"] + HEADLINE["slope"] * duration
        values[inl] += z * np.sqrt(ss_resid / (z**2).sum())
        values[outliers] -= 5.0 * resid_sd  # long use, low reactivity
        fit = lts_regression(duration, values)
        if (
            np.array_equal(fit.weights, expected)
            and abs(fit.intercept - HEADLINE["intercept"]) < 1e-6
            and abs(fit.slope - HEADLINE["slope"]) < 1e-6
            and abs(fit.r_squared - DESIGN_R_SQUARED) < 1e-6
        ):
            return np.asarray(values, dtype=float)
    raise RuntimeError("no residual arrangement reproduced the designed LTS fit")


def _participant_columns() -> dict[str, Any]:
    """participants.json: description and units (numeric) or levels (categorical)."""
    chars = pd.read_csv(data_file("sample_characteristics.tsv"), sep="\t").set_index("variable")
    def unit(var: str, default: str) -> str:
        return str(chars.loc[var, "unit"]) if var in chars.index else default
    cols: dict[str, Any] = {
        "participant_id": {"Description": "Participant label (synthetic)"},
        "age": {"Description": "Age at inclusion", "Units": "years"},
        "sex": {"Description": "Sex", "Levels": {"M": "male", "F": "female"}},
        "session_order": {"Description": "Counter-balanced order of the two sessions", "Levels": {"placebo_first": "placebo session first", "nac_first": "N-AC session first"}},
        "route": {"Description": "Main route of cocaine use", "Levels": {"nasal": "intranasal", "inhaled": "smoked / inhaled"}},
        "urine_cocaine_before_placebo": {"Description": "Urine screen for cocaine metabolites before the placebo session", "Levels": {"positive": "positive", "negative": "negative"}},
        "urine_cocaine_before_nac": {"Description": "Urine screen for cocaine metabolites before the N-AC session", "Levels": {"positive": "positive", "negative": "negative"}},
        "occus": {"Description": "Obsessive-compulsive cocaine use scale (general craving in past weeks)", "Units": "score (0-56)"},
        DURATION: {"Description": "Duration of cocaine use", "Units": unit("cocaine_duration_years", "years")},
        "cocaine_grams_per_week": {"Description": "Cocaine use, last 6 months", "Units": "g/week"},
        "cocaine_uses_per_week": {"Description": "Cocaine use occasions", "Units": "uses/week"},
        "cocaine_cumulative_grams": {"Description": "Cumulative lifetime cocaine use", "Units": "g"},
    }
    for var in ["alcohol_grams_per_week", "cigarettes_per_week", "cannabis_grams_per_week", "amphetamine_grams_per_week", "mdma_mg_per_week", "opioid_grams_per_week", "ghb_ml_per_week", "hallucinogen_trips_per_week", "ketamine_grams_per_week"]:
        cols[var] = {"Description": var.replace("_", " ").replace(" per week", "") + " use", "Units": unit(var, "per week")}
    for ses, label in (("placebo", "placebo"), ("nac", "N-AC")):
        for when in ("before", "after"):
            cols[f"vas_craving_{ses}_{when}"] = {"Description": f"Craving (visual analogue scale) {when} the cue task, {label} session", "Units": "VAS (0-10)"}
    return cols


# ----------------------------------------------------------------------------------
# planted clusters
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlantedCluster:
    """A cluster the generator plants: where, how strong, how big, and why."""

    contrast: str  # placebo | nac | interaction
    sign: int  # +1 cocaine > neutral (placebo > N-AC for the interaction), -1 reverse
    xyz: tuple[int, int, int]
    region: str
    hemisphere: str
    t: float  # target peak T at df 84
    k: int  # target extent (voxels at p < 0.001, 18-connectivity)
    origin: str  # "published" or "illustrative"
    published_t: float | None = None
    published_z: float | None = None
    shadow: bool = True  # cast a sub-threshold copy on the other session


def planted_clusters() -> list[PlantedCluster]:
    """Published peaks (T implied by Z where the pair is inconsistent) + illustrative.

    The interaction cluster needs a supra-threshold placebo effect at the same place
    (T_int = (T_placebo - T_nac) / sqrt(2) in the cells model, and 4.57 * sqrt(2) =
    6.46 > 2 x 3.19), which STUDY.md's list of placebo superior frontal clusters allows:
    it is planted as an illustrative placebo cluster without an N-AC shadow.
    """
    pub = pd.read_csv(data_file("published_clusters.tsv"), sep="\t", keep_default_na=False)
    out = []
    for row in pub.to_dict("records"):  # (values are str/int/float: read from a TSV)
        contrast, sign = _PUBLISHED_KEY[str(row["contrast"])]
        t = float(row["T"])
        if "inconsistent" in str(row["note"]):
            t = float(stats.t.isf(stats.norm.sf(float(row["Z"])), DF_CELLS))
        out.append(PlantedCluster(contrast, sign, (int(row["x"]), int(row["y"]), int(row["z"])), str(row["region"]), str(row["hemisphere"]), t,
                                  int(row["k"]), "published", float(row["T"]), float(row["Z"])))
    for xyz, region, hemi, k, t in _ILLUSTRATIVE:
        out.append(PlantedCluster("placebo", 1, xyz, region, hemi, t, k, "illustrative"))
    out.append(PlantedCluster("placebo", 1, HEADLINE["peak"], "Superior frontal gyrus (anterior)", "R", 3.9, 40, "illustrative", shadow=False))
    return out


# ----------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------
def brain_mask() -> np.ndarray:
    """nilearn's MNI152 brain mask (shipped with nilearn) on SPM's 2 mm grid."""
    from nilearn import datasets, image

    m = datasets.load_mni152_brain_mask(resolution=2)
    r = image.resample_img(m, target_affine=SPM_AFFINE, target_shape=SPM_SHAPE, interpolation="nearest", force_resample=True, copy_header=True)
    return np.asarray(r.get_fdata()) > 0


def _smooth_noise(rng: np.random.Generator, n: int, mask: np.ndarray, fwhm_mm: float = FWHM_MM) -> np.ndarray:
    """n smooth unit-variance Gaussian fields (masked voxels only), ``(n, n_vox)`` float32."""
    sigma = fwhm_mm / np.sqrt(8 * np.log(2)) / 2.0  # voxels of 2 mm
    out = np.empty((n, int(mask.sum())), np.float32)
    for i in range(n):
        f = ndimage.gaussian_filter(rng.standard_normal(SPM_SHAPE).astype(np.float32), sigma, mode="constant")
        v = f[mask]
        out[i] = (v - v.mean()) / v.std()
    return out


def _mm_grid(mask: np.ndarray) -> np.ndarray:
    """MNI mm coordinates of the in-mask voxels, ``(n_vox, 3)``."""
    ijk = np.column_stack(np.nonzero(mask))
    return np.asarray(ijk @ SPM_AFFINE[:3, :3].T + SPM_AFFINE[:3, 3], dtype=float)


Sigma = tuple[float, float, float]


def _blob(coords: np.ndarray, xyz: tuple[int, int, int], sigma_mm: Sigma | float) -> np.ndarray:
    """Gaussian bump (peak 1) with per-axis widths in mm."""
    d = (coords - np.asarray(xyz, float)) / np.asarray(sigma_mm, float)
    return np.asarray(np.exp(-0.5 * (d**2).sum(axis=1)), dtype=float)


_ASPECTS = [(a, b, 1.0 / (a * b)) for a in (0.8, 0.9, 1.0, 1.1, 1.25) for b in (0.8, 0.9, 1.0, 1.1, 1.25)]


def _fit_sigma(pc: PlantedCluster, coords: np.ndarray, u: float) -> Sigma:
    """Per-axis blob widths whose supra-threshold part holds ``pc.k`` in-mask voxels.

    A blob's T field is exact inside its support, so its cluster is the set of mask
    voxels inside an ellipsoid: counted directly, for a few aspect ratios (balls on a
    lattice only come in sizes 1, 7, 19, 27, 33, ...), the closest count wins.
    """
    near = coords[np.abs(coords - np.asarray(pc.xyz)).max(axis=1) <= 40]
    d2 = (near - np.asarray(pc.xyz, float)) ** 2
    level = 2 * np.log(pc.t / u)
    scales = np.linspace(1.5, 16.0, 600)
    best: tuple[int, float, Sigma] = (10**9, 0.0, (1.0, 1.0, 1.0))
    for aspect in _ASPECTS:
        a = np.asarray(aspect)
        q = np.sort((d2 / a**2).sum(axis=1))  # inside iff q < level * scale^2
        counts = np.searchsorted(q, level * scales**2)
        i = int(np.abs(counts - pc.k).argmin())
        err, off = int(abs(counts[i] - pc.k)), abs(aspect[0] - 1) + abs(aspect[1] - 1)
        if (err, off) < best[:2]:
            best = (err, off, tuple(float(v) for v in scales[i] * a))  # type: ignore[assignment]
    return best[2]


def _target_fields(planted: list[PlantedCluster], sigmas: dict[int, Sigma], amps: dict[int, float], coords: np.ndarray, u: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Target T fields of the two session contrasts and the weight (0..1) where the
    targets hold.

    Per contrast and sign: the maximum over blobs (own blobs, and 0.6 x the other
    session's blobs as sub-threshold shadows), positive minus negative.  Where an
    interaction blob lies, N-AC's target is placebo's minus sqrt(2) x the interaction
    target, which makes the interaction map (placebo - N-AC) / sqrt(2) exact there.
    """
    n_vox = coords.shape[0]
    pos = {c: np.zeros(n_vox) for c in ("placebo", "nac")}
    neg = {c: np.zeros(n_vox) for c in ("placebo", "nac")}
    support = np.zeros(n_vox)
    interaction = np.zeros(n_vox)
    int_support = np.zeros(n_vox)
    for idx, pc in enumerate(planted):
        g = _blob(coords, pc.xyz, sigmas[idx])
        support = np.maximum(support, g)
        if pc.contrast == "interaction":
            interaction += pc.sign * amps[idx] * g
            int_support = np.maximum(int_support, g)
            continue
        tgt = pos if pc.sign > 0 else neg
        tgt[pc.contrast] = np.maximum(tgt[pc.contrast], amps[idx] * g)
        if pc.shadow:
            other = "nac" if pc.contrast == "placebo" else "placebo"
            tgt[other] = np.maximum(tgt[other], np.minimum(0.6 * pc.t * g, 0.92 * u))
    target = {c: pos[c] - neg[c] for c in ("placebo", "nac")}
    w_int = np.clip((int_support - 0.02) / 0.08, 0.0, 1.0)
    target["nac"] = (1 - w_int) * target["nac"] + w_int * (target["placebo"] - np.sqrt(2) * interaction)
    weight = np.clip((support - 0.02) / 0.08, 0.0, 1.0)  # full above 10 % of a peak
    return target, weight


@dataclass
class SampleImages:
    data: np.ndarray  # (n, 4, n_vox) float32, quantised
    mask: np.ndarray
    report: dict[str, Any]


def _cells_t(data: np.ndarray) -> dict[str, np.ndarray]:
    fit = fit_group_model(data, COND_IDS, "cells")
    return {c["id"]: fit.t_map(c["weights"]) for c in CONTRASTS}


def _unmask(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.full(mask.shape, np.nan)
    out[mask] = v
    return out


def _flat_index(mask: np.ndarray) -> np.ndarray:
    """3D -> position in the masked vector (-1 outside)."""
    idx = np.full(mask.shape, -1, np.int64)
    idx[mask] = np.arange(int(mask.sum()))
    return idx


def _vox_of(xyz: tuple[int, int, int]) -> tuple[int, int, int]:
    ijk = np.linalg.solve(SPM_AFFINE, [*xyz, 1.0])[:3]
    return tuple(int(np.rint(v)) for v in ijk)  # type: ignore[return-value]


def make_images(rng: np.random.Generator, parts: SampleParticipants, *, mask: np.ndarray | None = None, iterations: int = 8, verbose: bool = False) -> SampleImages:
    """Participant effect maps ``(n, 4, n_vox)`` that reproduce the published tables."""
    mask = brain_mask() if mask is None else mask
    n = N_PARTICIPANTS
    coords = _mm_grid(mask)
    flat = _flat_index(mask)
    u = t_threshold(P_UNC, DF_CELLS)
    planted = planted_clusters()
    head = HEADLINE["peak"]

    # 1. noise: participant effect (shared by the cells) + image noise, quieter
    #    around the interaction cluster so that its eigenvariate follows the design
    subject = _smooth_noise(rng, n, mask) * 0.6
    noise = _smooth_noise(rng, n * 4, mask).reshape(n, 4, -1)
    damp_h = (1.0 - 0.75 * _blob(coords, head, 9.0)).astype(np.float32)
    base = (noise + subject[:, None, :]) * damp_h

    # 3. rank-one participant pattern p (participants x cells) over the cluster
    dur = parts.table[DURATION].to_numpy(float)
    v_target = parts.headline_values
    spread = 0.55 * v_target.std(ddof=1)
    p = np.column_stack(
        [
            v_target,
            -0.25 + spread * _orthogonal_noise(rng, [dur, v_target], n),
            -0.45 + spread * _orthogonal_noise(rng, [dur], n),
            0.0 + spread * _orthogonal_noise(rng, [dur], n),
        ]
    )
    h = _blob(coords, head, 7.0)

    sigmas = {i: _fit_sigma(pc, coords, u) for i, pc in enumerate(planted)}
    amps = {i: pc.t for i, pc in enumerate(planted)}
    suppress = np.ones((2, coords.shape[0]))  # damping of each session's noise contrast
    report: dict[str, Any] = {}
    for it in range(iterations):
        data = base + (p[:, :, None] * h[None, None, :]).astype(np.float32)
        fit = fit_group_model(data, COND_IDS, "cells")
        assert fit.sigma2 is not None  # the cells model always has a pooled variance
        se = np.sqrt(fit.sigma2 * 2.0 / n)
        target, w = _target_fields(planted, sigmas, amps, coords, u)
        # exact targets go into the neutral cells, so cocaine-cue rows keep the design
        signal = np.zeros((4, coords.shape[0]), np.float32)
        for s, (c_id, cell) in enumerate((("placebo", 1), ("nac", 3))):
            current = fit.contrast_vector(CONTRASTS[s]["weights"]) @ fit.cell_means
            wanted = w * target[c_id] * se + (1 - w) * suppress[s] * current
            signal[cell] = -(wanted - current)
        data += signal[None]
        tmaps = _cells_t(data)
        # the interaction cluster's eigenvariate -> the designed values
        res = find_clusters(_unmask(tmaps["interaction"], mask), SPM_AFFINE, u, extent=EXTENT)
        lab = res.labels[_vox_of(head)]
        if lab:
            vox = np.nonzero(res.labels[mask] == lab)[0]
            ev = cluster_values(data, vox, 0, "eigenvariate")
            p[:, 0] += (v_target - ev) * 0.9
            fit_h = lts_regression(dur, ev)
            report = {"k": int(vox.size), "peak_t": float(tmaps["interaction"][vox].max()), "intercept": fit_h.intercept, "slope": fit_h.slope, "r_squared": fit_h.r_squared, "p": fit_h.p_value}
            if verbose:
                print(f"iter {it}: " + " ".join(f"{k}={v:.4g}" for k, v in report.items()), flush=True)
        _adjust_amplitudes(planted, amps, tmaps, flat)
        _damp_unplanned(planted, tmaps, mask, u, suppress)

    quantised = np.round(data / QUANTUM) * QUANTUM
    return SampleImages(data=quantised.astype(np.float32), mask=mask, report=report)


def _adjust_amplitudes(planted: list[PlantedCluster], amps: dict[int, float], tmaps: dict[str, np.ndarray], flat: np.ndarray) -> None:
    """Scale each blob so that the map at its peak has the target T (neighbouring blobs
    of the other sign subtract a little)."""
    for i, pc in enumerate(planted):
        observed = pc.sign * tmaps[pc.contrast][flat[_vox_of(pc.xyz)]]
        amps[i] *= float(np.clip(pc.t / max(observed, 0.5), 0.8, 1.25))


def _damp_unplanned(planted: list[PlantedCluster], tmaps: dict[str, np.ndarray], mask: np.ndarray, u: float, suppress: np.ndarray) -> None:
    """Shrink the noise contrast under clusters of more than MAX_UNPLANNED_K - 5 voxels
    that hold no planted peak (interaction clusters: both sessions)."""
    for c_id, rows in (("placebo", (0,)), ("nac", (1,)), ("interaction", (0, 1))):
        for direction in (1, -1):
            res = find_clusters(_unmask(direction * tmaps[c_id], mask), SPM_AFFINE, u, extent=MAX_UNPLANNED_K - 5)
            planted_labels = {int(res.labels[_vox_of(pc.xyz)]) for pc in planted if pc.contrast == c_id and pc.sign == direction}
            for lab in range(1, res.n_clusters + 1):
                if lab in planted_labels:
                    continue
                region = ndimage.binary_dilation(res.labels == lab, iterations=3)[mask]
                for r in rows:
                    suppress[r, region] *= 0.7


# ----------------------------------------------------------------------------------
# the folder
# ----------------------------------------------------------------------------------
def group_maps_from_images(data: np.ndarray, mask: np.ndarray, voxel_size: tuple[float, float, float] = (2.0, 2.0, 2.0)) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Group T maps (cells model) and sidecars, computed with the app's own model code;
    smoothness estimated from the model's residuals (spm_est_smoothness equivalent)."""
    fit = fit_group_model(data, COND_IDS, "cells")
    smooth = estimate_smoothness(fit.residuals(), mask, fit.df, voxel_size)
    out = {}
    for c in CONTRASTS:
        t = np.full(mask.shape, np.nan, np.float32)
        # round in float64, then cast: platform-independent bytes (see T_QUANTUM)
        t[mask] = quantise_t(fit.t_map(c["weights"]))
        sidecar = {
            "StatisticType": "T",
            "DegreesOfFreedom": fit.df,
            "Model": "cells",
            "ModelDescription": "4 cell means (cue x session), pooled error, no participant effects (df = images - 4)",
            "ContrastWeights": dict(c["weights"]),
            "Description": c["label"] + " (synthetic sample)",
            "Smoothness": _rounded(smoothness_to_sidecar(smooth)),
        }
        out[c["id"]] = (t, sidecar)
    return out


def quantise_t(t: np.ndarray) -> np.ndarray:
    """T values (float64) on the ``T_QUANTUM`` grid, still float64 (the caller casts).

    ``+ 0.0`` turns -0.0 (a T in [-5e-5, 0)) into 0.0, so that a T of about 0 whose
    sign is noise cannot change the bytes either.
    """
    return np.round(np.asarray(t, np.float64), T_DECIMALS) + 0.0


def _rounded(obj: Any, digits: int = 6) -> Any:
    """Floats to ``digits`` significant digits: the sidecar then holds the same bytes
    on machines whose floating-point summation order differs in the last bits."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    return obj


def planted_table(planted: list[PlantedCluster]) -> pd.DataFrame:
    """The sample's own table of planted clusters: published or illustrative."""
    return pd.DataFrame(
        [
            {
                "contrast": pc.contrast,
                "direction": "cocaine_gt_neutral" if pc.sign > 0 else "neutral_gt_cocaine",
                "x": pc.xyz[0], "y": pc.xyz[1], "z": pc.xyz[2],
                "region": pc.region, "hemisphere": pc.hemisphere,
                "target_t": round(pc.t, 3), "target_k": pc.k, "origin": pc.origin,
            }
            for pc in planted
        ]
    )


def make_sample(out: str | Path, *, seed: int = DEFAULT_SEED, force: bool = False) -> Path:
    """Generate the synthetic sample study into ``out``.

    Refuses a non-empty ``out`` unless ``force`` (then its content is replaced).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out}: not empty; pass --force to replace its content")
        shutil.rmtree(out)
    rng = np.random.default_rng(seed)
    parts = make_participants(rng)
    images = make_images(rng, parts)
    data, mask = images.data, images.mask
    ids = parts.table["participant_id"].tolist()
    participant_images = {}
    for i, pid in enumerate(ids):
        for j, cond in enumerate(CONDITIONS):
            vol = np.full(mask.shape, np.nan, np.float32)
            vol[mask] = data[i, j]
            participant_images[(pid, cond["session"], cond["cue"])] = vol
    published = pd.read_csv(data_file("published_clusters.tsv"), sep="\t", keep_default_na=False)
    literature = pd.read_csv(data_file("literature_peaks.tsv"), sep="\t", keep_default_na=False)
    description = {
        "Name": "N-AC cue-reactivity study (synthetic sample)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "Synthetic": True,
        "SyntheticNote": SYNTHETIC_NOTE,
        "GeneratedBy": [{"Name": "cue-dashboard make-sample", "Version": _version(), "Description": f"seed {seed}"}],
        "SpatialReference": "MNI152 (SPM12 2 mm grid: 79 x 95 x 79, LAS, origin voxel 40 57 36)",
    }
    write_results_folder(
        out,
        description=description,
        design={**cue_design(), "ViewDefaults": VIEW_DEFAULTS},
        participants=parts.table,
        participant_columns=parts.columns,
        affine=SPM_AFFINE,
        mask=mask,
        participant_images=participant_images,
        image_dtype=np.int16,
        tables={
            "published_clusters": (published, {"Description": "Cluster peaks of the published report (cleaned), MNI mm; T at df 84", "Source": "published report"}),
            "literature_peaks": (literature, {"Description": "Peaks of an earlier cocaine-cue study, MNI mm, for comparison", "Source": "literature"}),
            "sample_planted_clusters": (planted_table(planted_clusters()), {"Description": "Clusters planted in this synthetic sample: 'published' imitate a published row, 'illustrative' stand where the paper names a region without coordinates"}),
        },
        quantum=QUANTUM,
    )
    # group maps from the images exactly as stored (read back), so that recomputing
    # them from the folder reproduces them
    stored = load_study(out, check_data=False)
    group = group_maps_from_images(stored.participant_data, stored.mask, stored.voxel_size)
    write_group_maps(out, group, SPM_AFFINE)
    return out


def _version() -> str:
    from dashboard import __version__

    return __version__
