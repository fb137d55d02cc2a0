"""Small real results folders (real NIfTI files) for tests, built with the package's writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from dashboard.design import CONDITIONS, CONTRASTS, cue_design
from dashboard.stats.models import fit_group_model
from dashboard.writer import write_results_folder

TINY_SHAPE = (7, 8, 9)  # unequal on purpose: catches axis mix-ups
TINY_AFFINE = np.array([[-3.0, 0, 0, 9], [0, 3, 0, -12], [0, 0, 3, -12], [0, 0, 0, 1]])


def tiny_participant_data(n: int = 6, shape: tuple[int, int, int] = TINY_SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(data (n, 4, *shape) float32 smooth noise with effects, brain mask)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    data = rng.normal(size=(n, 4, *shape))
    data = ndimage.gaussian_filter(data, sigma=(0, 0, 1, 1, 1))
    data[:, 0, 2:4, 2:5, 3:6] += 1.5  # cocaine cue under placebo: a blob
    data[:, :, ~mask] = np.nan
    return data.astype(np.float32), mask


def write_tiny_study(out: Path, n: int = 6, *, seed: int = 0, with_images: bool = True, with_mask: bool = True) -> Path:
    """A complete results folder: n participants x 4 conditions + group T maps."""
    data, mask = tiny_participant_data(n, seed=seed)
    ids = [f"sub-{i + 1:02d}" for i in range(n)]
    rng = np.random.default_rng(seed + 1)
    participants = pd.DataFrame(
        {
            "participant_id": ids,
            "age": np.round(rng.uniform(20, 45, n), 1),
            "sex": ["M", "F"] * (n // 2) + ["M"] * (n % 2),
            "cocaine_duration_years": np.round(rng.uniform(1, 15, n), 1),
        }
    )
    columns = {
        "age": {"Description": "Age at the first session", "Units": "years"},
        "sex": {"Description": "Sex", "Levels": {"M": "male", "F": "female"}},
        "cocaine_duration_years": {"Description": "Duration of cocaine use", "Units": "years"},
    }
    flat = data[:, :, mask]
    fit = fit_group_model(flat, [c["id"] for c in CONDITIONS], "cells")
    group = {}
    for c in CONTRASTS:
        t = np.full(mask.shape, np.nan, np.float32)
        t[mask] = fit.t_map(c["weights"])
        group[c["id"]] = (t, {"StatisticType": "T", "DegreesOfFreedom": fit.df, "Model": "cells", "ContrastWeights": c["weights"], "Description": c["label"]})
    images = {}
    if with_images:
        for i, pid in enumerate(ids):
            for j, cond in enumerate(CONDITIONS):
                images[(pid, cond["session"], cond["cue"])] = data[i, j]
    write_results_folder(
        out,
        description={"Name": "tiny test study", "BIDSVersion": "1.9.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "tests"}]},
        design={**cue_design(), "ViewDefaults": {"Covariate": "cocaine_duration_years"}},
        participants=participants,
        participant_columns=columns,
        affine=TINY_AFFINE,
        mask=mask if with_mask else None,
        participant_images=images,
        group_maps=group,
    )
    return out


def folder_stamps(root: Path) -> list[tuple[str, int]]:
    """Every entry under ``root`` with its modification time: equal before and after a
    run when nothing was written into a results folder."""
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))
