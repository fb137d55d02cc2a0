"""Cross-contrast correspondence: which clusters of one contrast are (partly) the same
clusters as those of the others, at one threshold.

For every listed cluster of the chosen contrast (each direction), and every listed
cluster of every other contrast (each direction) that shares at least one voxel with it:
the voxels in common, the Dice coefficient ``2 |A & B| / (|A| + |B|)`` and the distance
between the two clusters' main peaks (mm).  Clusters are the cluster table's (height and
extent thresholds applied), so the numbers are those of the tables the user sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.analysis import Analysis, Direction, Threshold

COLUMNS = ["cluster_id", "direction", "k", "x", "y", "z", "other_contrast", "other_direction", "other_cluster_id", "other_k",
           "other_x", "other_y", "other_z", "common_voxels", "dice", "peak_distance_mm"]


def _clusters(analysis: Analysis, contrast: str, threshold: Threshold, extent: int, participants: tuple[str, ...] | None,
              model: str) -> list[tuple[Direction, int, int, np.ndarray, np.ndarray]]:
    """(direction, table cluster id, k, boolean volume, main peak mm) of every listed cluster."""
    stat = analysis.study.group_maps.get(contrast)
    directions: tuple[Direction, ...] = ("pos",) if stat is not None and stat.statistic == "F" else ("pos", "neg")
    table = analysis.clusters(contrast, directions=directions, threshold=threshold, extent=extent, participants=participants,
                              model=model, label_atlas=None, with_rft=False)  # type: ignore[arg-type]
    out = []
    for direction in directions:
        labels = table.labels[direction]
        mains = table.table[(table.table["direction"] == direction) & table.table["is_main_peak"]]
        for _, row in mains.iterrows():
            peak = np.array([row["x"], row["y"], row["z"]], float)
            ijk = tuple(np.rint(np.linalg.solve(analysis.study.affine, [*peak, 1.0])[:3]).astype(int))
            label = labels[ijk]
            if label:
                out.append((direction, int(row["cluster_id"]), int(row["k"]), labels == label, peak))
    return out


def correspondence(analysis: Analysis, contrast: str, *, threshold: Threshold | None = None, extent: int = 10,
                   participants: tuple[str, ...] | None = None, model: str = "cells") -> pd.DataFrame:
    """One row per (cluster of ``contrast``, overlapping cluster of another contrast);
    a cluster that overlaps nothing has one row with empty ``other_*`` fields."""
    threshold = threshold or Threshold()
    mine = _clusters(analysis, contrast, threshold, extent, participants, model)
    others = {c.id: _clusters(analysis, c.id, threshold, extent, participants, model) for c in analysis.study.contrasts if c.id != contrast}
    rows: list[dict[str, object]] = []
    for direction, cid, k, vol, peak in mine:
        base = {"cluster_id": cid, "direction": direction, "k": k, "x": peak[0], "y": peak[1], "z": peak[2]}
        found = False
        for other, clusters in others.items():
            for o_dir, o_id, o_k, o_vol, o_peak in clusters:
                common = int((vol & o_vol).sum())
                if common:
                    found = True
                    rows.append({**base, "other_contrast": other, "other_direction": o_dir, "other_cluster_id": o_id, "other_k": o_k,
                                 "other_x": o_peak[0], "other_y": o_peak[1], "other_z": o_peak[2], "common_voxels": common,
                                 "dice": 2 * common / int(vol.sum() + o_vol.sum()), "peak_distance_mm": float(np.linalg.norm(peak - o_peak))})
        if not found:
            rows.append(base)
    return pd.DataFrame(rows, columns=COLUMNS)
