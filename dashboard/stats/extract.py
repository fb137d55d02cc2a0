"""Per-participant values of a cluster: SPM first eigenvariate and plain mean.

The eigenvariate follows SPM12 ``spm_regions.m`` with "no adjustment" (and identity
whitening, i.e. equal variances assumed): rows of ``Y`` are every image of the
second-level design, columns the cluster's surviving voxels, with no centring.  With
``Y = U S V'``, ``d = sign(sum(V[:, 0]))`` and the eigenvariate is
``d * U[:, 0] * S[0] / sqrt(n_voxels)``, which equals the voxel mean when every voxel
shares one profile.  The rows of the requested condition are then returned.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ValueType = Literal["eigenvariate", "mean"]
VALUE_TYPES: tuple[ValueType, ...] = ("eigenvariate", "mean")


def first_eigenvariate(y: np.ndarray) -> np.ndarray:
    """SPM first eigenvariate of ``y`` (``n_images x n_voxels``), one value per row.

    Uses the smaller of ``y y'`` / ``y' y`` as SPM does; the result is the same as
    from the thin SVD.  Sign: positive sum of the first right singular vector.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] == 0:
        raise ValueError(f"need an images x voxels matrix with at least one voxel, got shape {y.shape}")
    m, n = y.shape
    if m > n:
        s, v = np.linalg.eigh(y.T @ y)
        v1 = v[:, -1]
        s1 = s[-1]
        u1 = y @ v1 / np.sqrt(s1)
    else:
        s, u = np.linalg.eigh(y @ y.T)
        u1 = u[:, -1]
        s1 = s[-1]
        v1 = y.T @ u1 / np.sqrt(s1)
    d = np.sign(v1.sum()) or 1.0
    return np.asarray(d * u1 * np.sqrt(s1 / n))


def cluster_values(
    data: np.ndarray,
    voxel_index: np.ndarray,
    condition: int,
    value: ValueType = "eigenvariate",
) -> np.ndarray:
    """Per-participant value of a cluster in one condition.

    Parameters
    ----------
    data
        ``(n_participants, n_conditions, n_voxels)`` images of the model (the current
        participant subset).
    voxel_index
        Indices (into the voxel axis) of the cluster's surviving voxels.
    condition
        Index of the condition whose rows are returned.
    value
        ``"eigenvariate"`` (SPM, computed over every image of the design, all
        conditions) or ``"mean"`` (mean over the cluster's voxels).
    """
    voxel_index = np.asarray(voxel_index)
    if voxel_index.size == 0:
        raise ValueError("the cluster has no voxels")
    if value == "mean":
        return np.asarray(data[:, condition, :][:, voxel_index].astype(np.float64).mean(axis=1))
    if value != "eigenvariate":
        raise ValueError(f"unknown value type {value!r}; choose one of {', '.join(VALUE_TYPES)}")
    n, n_cond, _ = data.shape
    y = data[:, :, voxel_index].reshape(n * n_cond, voxel_index.size)  # participant-major rows
    ev = first_eigenvariate(y).reshape(n, n_cond)
    return ev[:, condition]
