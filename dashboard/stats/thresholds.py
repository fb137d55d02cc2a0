"""Conversions between T, uncorrected p and Z, SPM conventions.

- p uncorrected of a T value: one-sided upper tail ``P(T_df > t)``.
- Z: ``Phi^-1(1 - P_t(T; df))`` computed from the tail (``norm.isf(t.sf(T, df))``),
  as SPM's ``spm_t2z`` aims for; reported as +Inf when the tail probability is below
  10 x machine epsilon (where SPM also stops being exact).
- Voxel threshold from p uncorrected: ``u = t.isf(p, df)`` (df 84, p 0.001: 3.19).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

TINY_P = 10 * np.finfo(float).eps


def t_threshold(p_unc: float, df: float) -> float:
    """T value whose one-sided upper-tail probability at ``df`` is ``p_unc``."""
    if not 0 < p_unc < 1:
        raise ValueError(f"p must be in (0, 1), got {p_unc}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return float(stats.t.isf(p_unc, df))


def p_uncorrected(t: float | np.ndarray, df: float) -> np.ndarray:
    """One-sided uncorrected p of T values."""
    return np.asarray(stats.t.sf(np.asarray(t, dtype=float), df))


def z_from_t(t: float | np.ndarray, df: float) -> np.ndarray:
    """Z with the same upper-tail probability as T at ``df`` (Inf below 10 eps)."""
    p = stats.t.sf(np.asarray(t, dtype=float), df)
    z = stats.norm.isf(p)
    return np.where(p < TINY_P, np.inf, z)
