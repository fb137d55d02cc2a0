"""SPM12-convention cluster table (clusters and local maxima) for a 3D statistic map.

The rules follow SPM12 (``spm_getSPM.m``, ``spm_clusters.m``/``spm_bwlabel.c``,
``spm_max.m``/``spm_get_lm.c`` and ``spm_list.m``):

* **Height threshold** -- supra-threshold voxels are those with ``stat > u``
  (strictly greater; ``spm_getSPM``: ``Q = find(Z > u)``). NaN (outside the mask)
  is never supra-threshold. For a negative contrast the caller passes ``-stat``.
* **Clusters** -- 18-connectivity (faces and edges, not corners; ``spm_bwlabel(vol,18)``).
  Clusters with ``>= extent`` voxels are kept (``if length(j) >= k``).
* **Local maxima** -- a supra-threshold voxel that is ``>=`` every supra-threshold
  voxel among its 18 neighbours (``spm_get_lm``: a voxel is rejected only if a
  neighbour ``v[i] > cv``, so ties/plateaus are all maxima; non-supra-threshold
  voxels are zero in the volume it searches and therefore never win).
* **Listing** (``spm_list('Table')``) -- clusters in descending order of their
  highest maximum; within a cluster the maxima in descending order of the statistic,
  a maximum being listed only if its Euclidean distance (mm) to *every* maximum
  already listed for that cluster is ``> min_distance_mm`` (``Dis``, default 8) and
  fewer than ``max_peaks_per_cluster`` (``Num``, default 3, main peak included)
  rows have been listed for it.

Ties. SPM breaks exact ties by the order of its voxel list (MATLAB's ``max``/``sort``
keep the first), i.e. column-major voxel order, which depends on how the image is
stored on disk. Here ties are broken in *physical* (mm) space so that the same map
stored with flipped axes (LAS vs RAS) yields the identical table: equal statistic
values are ordered by ascending z, then ascending y, then descending x -- the same
order SPM produces for its usual storage (``M = diag(-vx, vy, vz)``, x decreasing
with the first voxel index, column-major scan). Clusters whose highest maxima are
exactly equal are ordered by that same rule applied to their highest maxima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = ["ClusterResult", "find_clusters", "TABLE_COLUMNS"]

#: Columns of :attr:`ClusterResult.table`, in order.
TABLE_COLUMNS = ["cluster_id", "k", "peak_t", "x", "y", "z", "i", "j", "k_vox", "is_main_peak"]

# 18-connectivity: the 6 face neighbours and the 12 edge neighbours (plus the centre).
_CONN18 = ndimage.generate_binary_structure(3, 2)
_OFFSETS18 = [tuple(int(v) for v in off) for off in np.argwhere(_CONN18) - 1 if np.any(off != 0)]  # the 18 neighbours

# Decimals used to compare mm coordinates when breaking ties (guards against
# floating-point noise in the affine product; coordinates are reported unrounded).
_TIE_DECIMALS = 6


@dataclass(frozen=True)
class ClusterResult:
    """Result of :func:`find_clusters`.

    table:
        One row per listed maximum, clusters by rank (``cluster_id`` 1-based), the main
        peak first. Columns ``cluster_id`` (int), ``k`` (voxels in the cluster),
        ``peak_t`` (statistic at the maximum), ``x``, ``y``, ``z`` (mm, from the
        affine), ``i``, ``j``, ``k_vox`` (voxel indices into ``stat``) and
        ``is_main_peak`` (bool).
    labels:
        int32 volume of the shape of ``stat``: 0 = background (including
        supra-threshold clusters smaller than ``extent``), n = voxels of cluster
        ``cluster_id == n``.
    threshold:
        the height threshold ``u`` (voxels with ``stat > u`` are supra-threshold).
    extent:
        the extent threshold (clusters with ``>= extent`` voxels are kept).
    """

    table: pd.DataFrame
    labels: np.ndarray
    threshold: float
    extent: int

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cluster_id": pd.Series([], dtype=np.int64),
            "k": pd.Series([], dtype=np.int64),
            "peak_t": pd.Series([], dtype=np.float64),
            "x": pd.Series([], dtype=np.float64),
            "y": pd.Series([], dtype=np.float64),
            "z": pd.Series([], dtype=np.float64),
            "i": pd.Series([], dtype=np.int64),
            "j": pd.Series([], dtype=np.int64),
            "k_vox": pd.Series([], dtype=np.int64),
            "is_main_peak": pd.Series([], dtype=bool),
        },
        columns=TABLE_COLUMNS,
    )


def find_clusters(
    stat: np.ndarray,
    affine: np.ndarray,
    threshold: float,
    *,
    extent: int = 10,
    max_peaks_per_cluster: int = 3,
    min_distance_mm: float = 8.0,
) -> ClusterResult:
    """SPM12-style cluster table of a 3D statistic map.

    Parameters
    ----------
    stat:
        3D statistic map (T values); NaN marks voxels outside the mask.
    affine:
        4x4 voxel-to-mm (MNI) affine of ``stat``.
    threshold:
        height threshold ``u`` in statistic units; voxels with ``stat > u`` survive.
    extent:
        extent threshold ``k``: clusters with fewer voxels are dropped.
    max_peaks_per_cluster:
        at most this many rows per cluster, main peak included (SPM ``Num`` = 3).
    min_distance_mm:
        a further maximum is listed only if it is more than this many mm from every
        maximum already listed in its cluster (SPM ``Dis`` = 8).
    """
    stat = np.asarray(stat, dtype=np.float64)
    if stat.ndim != 3:
        raise ValueError(f"stat must be a 3D array, got shape {stat.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
    threshold = float(threshold)
    if np.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    extent = int(extent)
    if extent < 0:
        raise ValueError("extent must be >= 0")
    if max_peaks_per_cluster < 1:
        raise ValueError("max_peaks_per_cluster must be >= 1")
    min_distance_mm = float(min_distance_mm)
    if not min_distance_mm >= 0:
        raise ValueError("min_distance_mm must be >= 0")

    # Height threshold (NaN > u is False, so the mask is respected).
    with np.errstate(invalid="ignore"):
        supra = stat > threshold

    # 18-connected components and extent threshold.
    comp, n_comp = ndimage.label(supra, structure=_CONN18)
    sizes = np.bincount(comp.ravel(), minlength=n_comp + 1)
    keep = sizes >= extent
    keep[0] = False

    labels = np.zeros(stat.shape, dtype=np.int32)
    if not keep.any():
        return ClusterResult(_empty_table(), labels, threshold, extent)

    # Local maxima: >= all supra-threshold 18-neighbours (ties kept). Non-supra voxels
    # (and NaN) become -inf so they never beat a supra-threshold voxel.
    # Tested only at the voxels of kept clusters, against their 18 neighbours gathered by
    # offset: the same as a maximum filter over the whole volume (a neighbour of a
    # cluster voxel above the threshold is in the same cluster), at a fraction of its cost.
    # Beyond the grid's edge an offset is clipped back onto it: that lands on the voxel
    # itself or on another of its 18 neighbours, so the maximum is unchanged (no padded copy).
    candidates = np.argwhere(keep[comp])  # C order, as np.argwhere(is_max) would list them
    vals = np.where(supra, stat, -np.inf)
    ci, cj, ck = (candidates[:, a] for a in range(3))
    here = vals[ci, cj, ck]
    neigh_max = np.full(here.shape, -np.inf)
    top = [n - 1 for n in stat.shape]
    for di, dj, dk in _OFFSETS18:
        ni = ci + di if di == 0 else np.clip(ci + di, 0, top[0])
        nj = cj + dj if dj == 0 else np.clip(cj + dj, 0, top[1])
        nk = ck + dk if dk == 0 else np.clip(ck + dk, 0, top[2])
        np.maximum(neigh_max, vals[ni, nj, nk], out=neigh_max)
    is_max = here >= neigh_max

    ijk = candidates[is_max]  # (m, 3)
    t = here[is_max]
    cl = comp[tuple(ijk.T)]
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]

    # Global order: descending T, ties by ascending z, ascending y, descending x (mm).
    key = np.round(xyz, _TIE_DECIMALS)
    order = np.lexsort((-key[:, 0], key[:, 1], key[:, 2], -t))
    ijk, t, cl, xyz = ijk[order], t[order], cl[order], xyz[order]

    # Cluster rank = order of first appearance in the sorted maxima list, i.e. by
    # highest peak. Stable sort by rank keeps the within-cluster T order.
    uniq_cl, first = np.unique(cl, return_index=True)
    ranked = uniq_cl[np.argsort(first, kind="stable")]
    rank_of = np.zeros(n_comp + 1, dtype=np.int64)
    rank_of[ranked] = np.arange(1, ranked.size + 1)
    rank = rank_of[cl]
    grp = np.argsort(rank, kind="stable")
    ijk, t, rank, xyz = ijk[grp], t[grp], rank[grp], xyz[grp]

    labels = rank_of.astype(np.int32)[comp]  # 0 for background and dropped clusters

    # Greedy distance filter per cluster (spm_list: min distance to listed > Dis).
    bounds = np.flatnonzero(np.diff(rank)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [rank.size]))
    num = max_peaks_per_cluster
    rows: list[int] = []
    main: list[bool] = []
    for s, e in zip(starts, ends, strict=False):
        rows.append(s)
        main.append(True)
        if num == 1:
            continue
        listed = [xyz[s]]
        cand = xyz[s + 1 : e]
        for off in range(cand.shape[0]):
            p = cand[off]
            dist = np.sqrt(np.sum((np.asarray(listed) - p) ** 2, axis=1))
            if dist.min() > min_distance_mm:
                listed.append(p)
                rows.append(s + 1 + off)
                main.append(False)
                if len(listed) >= num:
                    break

    sel = np.asarray(rows, dtype=np.int64)
    cid = rank[sel]
    table = pd.DataFrame(
        {
            "cluster_id": cid.astype(np.int64),
            "k": sizes[ranked][cid - 1].astype(np.int64),
            "peak_t": t[sel].astype(np.float64),
            "x": xyz[sel, 0],
            "y": xyz[sel, 1],
            "z": xyz[sel, 2],
            "i": ijk[sel, 0].astype(np.int64),
            "j": ijk[sel, 1].astype(np.int64),
            "k_vox": ijk[sel, 2].astype(np.int64),
            "is_main_peak": np.asarray(main, dtype=bool),
        },
        columns=TABLE_COLUMNS,
    )
    return ClusterResult(table, labels, threshold, extent)
