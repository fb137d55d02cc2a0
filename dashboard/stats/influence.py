"""How much each participant drives a simple regression ``y = a + b x``.

OLS definitions as statsmodels' ``OLSInfluence``: leverage ``h_i`` (hat matrix
diagonal), Cook's distance ``D_i = e_i^2 h_i / (p s^2 (1 - h_i)^2)``, DFBETAS of the
slope ``(b - b_(i)) / (s_(i) sqrt((X'X)^-1_bb))`` with ``s_(i)`` the leave-one-out
residual SD; and the jackknife: the slope and R^2 refitted without each participant.
For LTS the leave-one-out slope is a refit of LTS without that participant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dashboard.stats.lts import lts_regression


@dataclass(frozen=True)
class Influence:
    """Per-participant influence on the fit (arrays in input order; NaN where unused)."""

    loo_slope: NDArray[np.float64]
    loo_r_squared: NDArray[np.float64]
    cooks_distance: NDArray[np.float64]
    dfbetas_slope: NDArray[np.float64]
    leverage: NDArray[np.float64]
    lts_loo_slope: NDArray[np.float64]
    slope: float  # OLS slope with every participant
    r_squared: float  # OLS R^2 with every participant

    @property
    def most_influential(self) -> int:
        """Index of the participant whose removal changes the OLS slope most."""
        return int(np.nanargmax(np.abs(self.loo_slope - self.slope)))


def _ols(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, float]:
    """(slope, R^2) of y on x with an intercept."""
    xc, yc = x - x.mean(), y - y.mean()
    slope = float((xc @ yc) / (xc @ xc))
    resid = yc - slope * xc
    return slope, float(1 - (resid @ resid) / (yc @ yc))


def influence(x: NDArray[np.floating], y: NDArray[np.floating], *, with_lts: bool = True) -> Influence:
    """Influence of every point (pairs with a NaN are not used and get NaN)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    used = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    n = used.size
    if n < 4:
        raise ValueError(f"influence needs at least 4 participants with values, got {n}")
    xu, yu = x[used], y[used]
    design = np.c_[np.ones(n), xu]
    xtx_inv = np.linalg.inv(design.T @ design)
    beta = xtx_inv @ design.T @ yu
    resid = yu - design @ beta
    hat = np.einsum("ij,jk,ik->i", design, xtx_inv, design)
    p = 2
    s2 = float(resid @ resid) / (n - p)
    cooks = resid**2 * hat / (p * s2 * (1 - hat) ** 2)
    s2_loo = ((n - p) * s2 - resid**2 / (1 - hat)) / (n - p - 1)
    # b - b_(i) = (X'X)^-1 x_i e_i / (1 - h_i)
    delta = (design @ xtx_inv.T) * (resid / (1 - hat))[:, None]
    dfbetas = delta[:, 1] / np.sqrt(s2_loo * xtx_inv[1, 1])
    loo = np.array([_ols(np.delete(xu, i), np.delete(yu, i)) for i in range(n)])
    slope, r_squared = _ols(xu.astype(np.float64), yu.astype(np.float64))
    lts_loo = np.full(n, np.nan)
    if with_lts:
        for i in range(n):
            lts_loo[i] = lts_regression(np.delete(xu, i), np.delete(yu, i)).slope

    def full(values: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.full(x.size, np.nan)
        out[used] = values
        return out

    return Influence(loo_slope=full(loo[:, 0]), loo_r_squared=full(loo[:, 1]), cooks_distance=full(cooks),
                     dfbetas_slope=full(dfbetas), leverage=full(hat), lts_loo_slope=full(lts_loo),
                     slope=slope, r_squared=r_squared)
