"""A general linear model fitted at every voxel, as ``spm_spm`` / ``spm_contrasts`` do
for a second-level design (one row per image, any design matrix).

``fit_design(Y, X, W)``: whiten by ``W`` (SPM's ``xX.W``; identity for the usual
second-level options), least squares through the pseudo-inverse (so rank-deficient
designs such as a flexible factorial with a subject factor work, as in SPM), residual
mean square ``ResMS = RSS / trRV`` with ``trRV = n - rank(X)``.

- T for a contrast vector ``c``: ``c'b / sqrt(ResMS c' Bcov c)``, ``Bcov = pinv(X'X)``
  (SPM's spmT; df = trRV = ``xX.erdf`` when ``V`` is the identity).
- F for a contrast matrix ``C`` (columns are contrast vectors, as ``xCon.c``): the
  extra sum of squares ``h' pinv(C' Bcov C) h / rank`` over ResMS, ``h = C'b``, with
  ``rank`` the effect df (SPM's ``eidf`` when ``V`` is the identity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_RANK_TOL = 1e-10


@dataclass(frozen=True)
class DesignFit:
    """Estimates of one design at every voxel (``(n_voxels,)`` arrays)."""

    beta: NDArray[np.float64]  # (p, v)
    res_ms: NDArray[np.float64]  # (v,)
    bcov: NDArray[np.float64]  # (p, p), pinv(X'X) of the whitened design
    df: float  # residual df, n - rank(X)
    rank: int
    row_space: NDArray[np.float64]  # (p, p) projector pinv(X) X: c is estimable when it keeps c
    residuals: NDArray[np.float64]  # (n, v) whitened residuals (for smoothness estimation)

    def _check_estimable(self, c: NDArray[np.float64]) -> None:
        if not np.allclose(self.row_space @ c, c, atol=1e-8 * max(1.0, float(np.abs(c).max()))):
            raise ValueError("the contrast is not estimable with this design (it weighs a combination the data cannot separate)")

    def t_map(self, c: NDArray[np.float64]) -> NDArray[np.float64]:
        c = np.asarray(c, dtype=float).ravel()
        if c.size != self.beta.shape[0]:
            raise ValueError(f"a contrast over {self.beta.shape[0]} columns needs {self.beta.shape[0]} weights, got {c.size}")
        self._check_estimable(c)
        var = float(c @ self.bcov @ c)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((c @ self.beta) / np.sqrt(self.res_ms * var), dtype=float)

    def f_map(self, contrast: NDArray[np.float64]) -> tuple[NDArray[np.float64], int]:
        """F at every voxel and the effect df (rank of the contrast)."""
        cm = np.asarray(contrast, dtype=float)
        cm = cm.reshape(-1, 1) if cm.ndim == 1 else cm
        if cm.shape[0] != self.beta.shape[0]:
            raise ValueError(f"an F contrast over {self.beta.shape[0]} columns needs {self.beta.shape[0]} rows, got {cm.shape[0]}")
        for column in cm.T:
            self._check_estimable(column)
        h = cm.T @ self.beta  # (q, v)
        middle = cm.T @ self.bcov @ cm
        rank = int(np.linalg.matrix_rank(middle, tol=_RANK_TOL * max(1.0, float(np.abs(middle).max()))))
        if rank == 0:
            raise ValueError("the F contrast is not estimable with this design")
        ess = np.einsum("qv,qr,rv->v", h, np.linalg.pinv(middle, rcond=_RANK_TOL), h)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(ess / rank / self.res_ms, dtype=float), rank


def fit_design(y: NDArray[np.floating], x: NDArray[np.floating], w: NDArray[np.floating] | None = None) -> DesignFit:
    """Fit ``Y (n_images, n_voxels) = X (n_images, p) B`` by least squares after whitening."""
    y64 = np.asarray(y, dtype=np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    if y64.ndim != 2 or x64.ndim != 2 or y64.shape[0] != x64.shape[0]:
        raise ValueError(f"Y {y64.shape} and X {x64.shape} must have one row per image")
    if w is not None:
        w64 = np.asarray(w, dtype=np.float64)
        y64, x64 = w64 @ y64, w64 @ x64
    pinv = np.linalg.pinv(x64, rcond=_RANK_TOL)
    rank = int(np.linalg.matrix_rank(x64, tol=_RANK_TOL * max(x64.shape) * max(1.0, float(np.abs(x64).max()))))
    df = float(x64.shape[0] - rank)
    if df <= 0:
        raise ValueError(f"the design has no residual degrees of freedom ({x64.shape[0]} images, rank {rank})")
    beta = pinv @ y64
    res = y64 - x64 @ beta
    return DesignFit(beta=beta, res_ms=(res**2).sum(axis=0) / df, bcov=pinv @ pinv.T, df=df, rank=rank, row_space=pinv @ x64,
                      residuals=res)
