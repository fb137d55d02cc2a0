"""dashboard.stats.glm against statsmodels OLS (independent), rank-deficient designs included."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from dashboard.stats.glm import fit_design


def _design(rng, n_subjects=8):
    """Cells x 2 plus a subject factor: rank-deficient (subjects sum to the cells)."""
    cells = np.kron(np.ones((n_subjects, 1)), np.eye(2))
    subjects = np.kron(np.eye(n_subjects), np.ones((2, 1)))
    return np.hstack([cells, subjects])


def test_glm001_t_and_f_match_statsmodels():
    rng = np.random.default_rng(3)
    x = _design(rng)
    y = rng.normal(size=(x.shape[0], 5)) + x[:, :1] * 0.8
    fit = fit_design(y, x)
    assert fit.rank == x.shape[1] - 1 and fit.df == x.shape[0] - fit.rank
    c = np.zeros(x.shape[1])
    c[:2] = [1, -1]
    # statsmodels on a full-rank reparameterisation: intercept-free cells + subjects minus one
    xr = np.hstack([x[:, :2], x[:, 2:-1] - x[:, -1:]])
    for v in range(y.shape[1]):
        res = sm.OLS(y[:, v], xr).fit()
        cr = np.zeros(xr.shape[1])
        cr[:2] = [1, -1]
        assert fit.t_map(c)[v] == pytest.approx(float(res.t_test(cr).tvalue.squeeze()), rel=1e-9)
        # cells differ, or subjects 1 and 2 differ (both estimable; a cell mean alone is not)
        sr = np.zeros(xr.shape[1])
        sr[2:4] = [1, -1]
        f_ref = res.f_test(np.vstack([cr, sr]))
        cm = np.zeros((x.shape[1], 2))
        cm[:2, 0] = [1, -1]
        cm[2:4, 1] = [1, -1]
        f, rank = fit.f_map(cm)
        assert rank == 2 and f[v] == pytest.approx(float(f_ref.fvalue), rel=1e-9)


def test_glm002_not_estimable_and_no_df_are_refused():
    rng = np.random.default_rng(0)
    x = _design(rng)
    fit = fit_design(rng.normal(size=(x.shape[0], 3)), x)
    c = np.zeros(x.shape[1])
    c[2] = 1  # one subject's effect alone is not estimable with the cells in the model
    with pytest.raises(ValueError, match="not estimable"):
        fit.t_map(c)
    with pytest.raises(ValueError, match="not estimable"):
        fit.f_map(c)
    c[3] = -1  # subject 1 - subject 2 is
    assert np.isfinite(fit.t_map(c)).all()
    with pytest.raises(ValueError, match="no residual degrees of freedom"):
        fit_design(np.ones((3, 2)), np.eye(3))
