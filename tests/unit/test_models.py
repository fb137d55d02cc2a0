"""Group models against an independent computation (statsmodels OLS) at sampled voxels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from dashboard.design import CONDITIONS, CONTRASTS
from dashboard.stats.models import fit_group_model, model_df

COND = [c["id"] for c in CONDITIONS]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    n, v = 22, 50
    subj = rng.normal(0, 1.0, size=(n, 1, v))  # participant effects
    cells = rng.normal(0, 0.5, size=(1, 4, v))
    return (subj + cells + rng.normal(0, 1, size=(n, 4, v))).astype(np.float32)


def _statsmodels_t(y: np.ndarray, n: int, weights: dict, subjects: bool) -> tuple[float, float]:
    """T and df of a contrast from an explicit design matrix, fitted by statsmodels."""
    rows = []
    for i in range(n):
        for j in range(4):
            cell = np.eye(4)[j]
            subj = np.eye(n)[i][1:] if subjects else np.zeros(0)  # n-1 participant dummies
            rows.append(np.concatenate([cell, subj]))
    x = np.array(rows)
    res = sm.OLS(y.astype(np.float64), x).fit()
    c = np.zeros(x.shape[1])
    c[:4] = [weights.get(k, 0) for k in COND]
    tt = res.t_test(c)
    return float(np.asarray(tt.tvalue).ravel()[0]), float(res.df_resid)


@pytest.mark.parametrize("model", ["cells", "subjects"])
@pytest.mark.parametrize("contrast", CONTRASTS, ids=[c["id"] for c in CONTRASTS])
def test_gm001_cells_and_subjects_match_statsmodels(data, model, contrast):
    fit = fit_group_model(data, COND, model)
    t = fit.t_map(contrast["weights"])
    n = data.shape[0]
    for v in (0, 7, 23, 49):
        t_ref, df_ref = _statsmodels_t(data[:, :, v].reshape(-1), n, contrast["weights"], model == "subjects")
        assert fit.df == df_ref
        assert t[v] == pytest.approx(t_ref, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("contrast", CONTRASTS, ids=[c["id"] for c in CONTRASTS])
def test_gm002_paired_matches_scipy_one_sample(data, contrast):
    fit = fit_group_model(data, COND, "paired")
    t = fit.t_map(contrast["weights"])
    w = np.array([contrast["weights"].get(k, 0) for k in COND], dtype=float)
    d = (data.astype(np.float64) * w[None, :, None]).sum(axis=1)
    ref = stats.ttest_1samp(d, 0.0, axis=0)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-6)
    assert fit.df == ref.df[0] == 21


def test_gm003_published_degrees_of_freedom():
    assert model_df("cells", 22) == 84
    assert model_df("subjects", 22) == 63
    assert model_df("paired", 22) == 21


@pytest.mark.parametrize("n", [3, 5, 17])
def test_gm004_subsets_work(data, n):
    sub = data[:n]
    for model in ("cells", "subjects", "paired"):
        fit = fit_group_model(sub, COND, model)
        assert fit.df == model_df(model, n)
        assert np.isfinite(fit.t_map(CONTRASTS[2]["weights"])).all()
    t_ref, _ = _statsmodels_t(sub[:, :, 3].reshape(-1), n, CONTRASTS[0]["weights"], False)
    assert fit_group_model(sub, COND, "cells").t_map(CONTRASTS[0]["weights"])[3] == pytest.approx(t_ref, rel=1e-6)


def test_gm005_too_few_participants_and_bad_model(data):
    with pytest.raises(ValueError, match="at least 3 participants"):
        fit_group_model(data[:2], COND, "cells")
    with pytest.raises(ValueError, match="unknown model"):
        fit_group_model(data, COND, "mixed")  # type: ignore[arg-type]


def test_gm006_zero_variance_voxel_is_nan(data):
    d = data.copy()
    d[:, :, 5] = 1.0
    t = fit_group_model(d, COND, "cells").t_map(CONTRASTS[0]["weights"])
    assert np.isnan(t[5]) and np.isfinite(t[4])


def test_gm007_residuals_shapes(data):
    fit = fit_group_model(data, COND, "subjects")
    r = fit.residuals()
    assert r.shape == (88, data.shape[2])
    np.testing.assert_allclose((r.astype(np.float64) ** 2).sum(0) / fit.df, fit.sigma2, rtol=1e-4)
    paired = fit_group_model(data, COND, "paired")
    assert paired.residuals(CONTRASTS[0]["weights"]).shape == (22, data.shape[2])
    with pytest.raises(ValueError):
        paired.residuals()
