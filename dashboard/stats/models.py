"""Second-level (group) models fitted to per-participant condition images.

Three models, all vectorised over in-brain voxels, all giving one T map per contrast
with a stated error degrees of freedom:

``cells`` (default, as published)
    One mean per cell (4 cells = cue x session), pooled error over all images, no
    participant effects: df = n_images - 4 (84 for 22 participants).  This is SPM's
    flexible factorial with only the cell factor, which the published T/Z pairs imply.
``subjects``
    Cells + participant effects (two-way additive model): df = n_images - 4 - (n - 1)
    (63 for 22 participants).
``paired``
    One-sample t-test on per-participant contrast images (sum of weights x cell
    images): df = n - 1 (21).

Contrasts are weights over condition ids (e.g. placebo = cocaine_placebo -
neutral_placebo); T = c'b / sqrt(sigma^2 c'(X'X)^+ c), the classical OLS t statistic
assuming independent, equal-variance errors (SPM's non-sphericity correction is not
modelled).  Every participant must have an image for every condition (the loader
checks this), so the designs are balanced and have closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ModelName = Literal["cells", "subjects", "paired"]
MODELS: tuple[ModelName, ...] = ("cells", "subjects", "paired")
MODEL_LABELS: dict[str, str] = {
    "cells": "Cell means, pooled error (as published)",
    "subjects": "Cells + participant effects",
    "paired": "Paired: one-sample t on contrast images",
}
MIN_PARTICIPANTS = 3
_CHUNK = 40_000  # voxels per block: bounds float64 temporaries to ~30 MB


def model_df(model: ModelName, n_participants: int, n_conditions: int = 4) -> int:
    """Error degrees of freedom of a model for ``n_participants`` with all conditions."""
    n_images = n_participants * n_conditions
    if model == "cells":
        return n_images - n_conditions
    if model == "subjects":
        return n_images - n_conditions - (n_participants - 1)
    if model == "paired":
        return n_participants - 1
    raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


@dataclass(frozen=True)
class GroupFit:
    """A fitted group model: cell means and error variance per voxel.

    Attributes
    ----------
    model, df
        Model name and its error degrees of freedom.
    cell_means
        ``(n_conditions, n_voxels)`` float64 cell means (for ``paired``: also kept, for
        display; inference uses the contrast images).
    sigma2
        ``(n_voxels,)`` residual variance RSS/df (``cells``, ``subjects``); ``None`` for
        ``paired``, whose variance depends on the contrast.
    """

    model: ModelName
    df: int
    n_participants: int
    condition_ids: tuple[str, ...]
    cell_means: np.ndarray
    sigma2: np.ndarray | None
    data: np.ndarray  # (n, n_conditions, n_voxels) float32: the images the model saw

    def contrast_vector(self, weights: dict[str, float]) -> np.ndarray:
        unknown = set(weights) - set(self.condition_ids)
        if unknown:
            raise KeyError(f"contrast weights unknown conditions {sorted(unknown)}")
        return np.array([float(weights.get(c, 0.0)) for c in self.condition_ids])

    def t_map(self, weights: dict[str, float]) -> np.ndarray:
        """T statistic of a contrast at every voxel (float64; NaN where variance is 0)."""
        c = self.contrast_vector(weights)
        n = self.n_participants
        if self.model == "paired":
            return _one_sample_t(self.data, c)
        effect = c @ self.cell_means
        if self.model == "cells":
            var_factor = float((c**2).sum() / n)  # c'(X'X)^-1 c, X = cell indicators
        else:  # subjects: additive two-way model, balanced: same factor for sum-zero c
            if abs(c.sum()) > 1e-12:
                raise ValueError("the 'subjects' model estimates contrasts whose weights sum to 0 only")
            var_factor = float((c**2).sum() / n)
        se = np.sqrt(self.sigma2 * var_factor)  # type: ignore[operator]
        with np.errstate(divide="ignore", invalid="ignore"):
            t: np.ndarray = effect / se
        t[~np.isfinite(t)] = np.nan
        return t

    def residuals(self, weights: dict[str, float] | None = None) -> np.ndarray:
        """Model residuals as ``(n_rows, n_voxels)`` float32, for smoothness estimation.

        ``cells``/``subjects``: one row per image, participant-major order (participant
        0 all conditions, participant 1, ...).  ``paired``: one row per participant, the
        contrast image minus its mean, so ``weights`` is required.
        """
        if self.model == "paired":
            if weights is None:
                raise ValueError("paired-model residuals depend on the contrast: pass its weights")
            c = self.contrast_vector(weights).astype(np.float32)
            d = np.tensordot(self.data, c, axes=([1], [0]))
            return np.asarray(d - d.mean(axis=0, keepdims=True), dtype=np.float32)
        res = self.data - self.cell_means.astype(np.float32)[None]
        if self.model == "subjects":
            res -= res.mean(axis=1, keepdims=True)
        return res.reshape(-1, res.shape[-1])


def fit_group_model(data: np.ndarray, condition_ids: tuple[str, ...] | list[str], model: ModelName = "cells") -> GroupFit:
    """Fit a group model to ``data`` of shape ``(n_participants, n_conditions, n_voxels)``.

    Raises
    ------
    ValueError
        Unknown model, or fewer than 3 participants.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    n, n_cond, n_vox = data.shape
    if n < MIN_PARTICIPANTS:
        raise ValueError(f"a group model needs at least {MIN_PARTICIPANTS} participants, got {n}")
    df = model_df(model, n, n_cond)
    cell_means = data.mean(axis=0, dtype=np.float64)
    sigma2: np.ndarray | None = None
    if model != "paired":
        rss = np.empty(n_vox)
        for lo in range(0, n_vox, _CHUNK):
            block = data[:, :, lo : lo + _CHUNK].astype(np.float64)
            block -= cell_means[None, :, lo : lo + _CHUNK]
            if model == "subjects":
                block -= block.mean(axis=1, keepdims=True)
            rss[lo : lo + _CHUNK] = np.einsum("ijk,ijk->k", block, block)
        sigma2 = rss / df
    return GroupFit(model, df, n, tuple(condition_ids), cell_means, sigma2, data)


def _one_sample_t(data: np.ndarray, c: np.ndarray) -> np.ndarray:
    """One-sample t over participants of the contrast images sum_j c_j Y_ij."""
    n, _, n_vox = data.shape
    mean = np.empty(n_vox)
    sd = np.empty(n_vox)
    for lo in range(0, n_vox, _CHUNK):
        d = np.tensordot(data[:, :, lo : lo + _CHUNK].astype(np.float64), c, axes=([1], [0]))
        mean[lo : lo + _CHUNK] = d.mean(axis=0)
        sd[lo : lo + _CHUNK] = d.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t: np.ndarray = mean / (sd / np.sqrt(n))
    t[~np.isfinite(t)] = np.nan
    return t
