"""Regression influence (dashboard/stats/influence.py) against statsmodels' OLSInfluence
and a plain leave-one-out refit loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import OLSInfluence

from dashboard.cli import main
from dashboard.stats.influence import influence
from dashboard.stats.lts import lts_regression
from tests.bad_inputs import SAMPLE


def test_in001_ols_influence_is_statsmodels():
    rng = np.random.default_rng(7)
    x = rng.uniform(1, 15, 22)
    y = 0.1 * x + rng.normal(0, 0.5, 22)
    y[3] += 3.0  # an outlier
    x_nan, y_nan = np.append(x, np.nan), np.append(y, 1.0)  # a participant without a covariate value is not used
    got = influence(x_nan, y_nan)
    ref = OLSInfluence(sm.OLS(y, sm.add_constant(x)).fit())
    np.testing.assert_allclose(got.cooks_distance[:-1], ref.cooks_distance[0], rtol=1e-10)
    np.testing.assert_allclose(got.dfbetas_slope[:-1], ref.dfbetas[:, 1], rtol=1e-10)
    np.testing.assert_allclose(got.leverage[:-1], ref.hat_matrix_diag, rtol=1e-10)
    assert np.isnan(got.cooks_distance[-1])
    for i in range(22):  # the jackknife, refitted with statsmodels
        keep = np.arange(22) != i
        fit = sm.OLS(y[keep], sm.add_constant(x[keep])).fit()
        assert got.loo_slope[i] == pytest.approx(fit.params[1], rel=1e-10)
        assert got.loo_r_squared[i] == pytest.approx(fit.rsquared, rel=1e-10)
        assert got.lts_loo_slope[i] == pytest.approx(lts_regression(x[keep], y[keep]).slope, rel=1e-12)
    assert got.most_influential == 3


def test_in002_cli_on_the_headline_cluster(capsys):
    assert main(["influence", str(SAMPLE), "--contrast", "interaction", "--peak", "14,64,14", "--condition", "cocaine_placebo",
                 "--covariate", "cocaine_duration_years", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["participants"]) == 22 and out["most_influential"] in {p["participant_id"] for p in out["participants"]}
    assert {"loo_slope", "loo_r_squared", "cooks_distance", "dfbetas_slope", "leverage", "lts_loo_slope"} <= set(out["participants"][0])
