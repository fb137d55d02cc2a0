"""Write a results folder in the format :mod:`dashboard.results` reads.

Used by the sample generator and by the tests that build small real studies.  Output
is byte-deterministic for the same inputs: nibabel writes gzip with a zero mtime, JSON
is written with sorted keys, TSVs with fixed float formatting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from dashboard.results import GROUP_DIR, MASK_NAME, TABLES_DIR, group_map_name, participant_image_name, sidecar_path


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def write_tsv(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep="\t", index=False, na_rep="n/a", float_format="%.6g", lineterminator="\n")


def write_image(path: Path, data: np.ndarray, affine: np.ndarray, *, dtype: type = np.float32, t_df: float | None = None, quantum: float | None = None) -> None:
    """Write a NIfTI-1 image.

    ``dtype=np.int16`` stores scaled integers: with ``quantum`` the slope is that step
    (data already on that grid are stored exactly), else the full int16 range is used.
    NaN is stored as 0 (outside the mask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    if np.dtype(dtype) == np.int16:
        finite = np.where(np.isfinite(data), data, 0.0)
        peak = float(np.abs(finite).max()) or 1.0
        slope = quantum if quantum else peak / 32000.0
        if peak / slope > 32767:
            raise ValueError(f"{path.name}: values up to {peak:g} do not fit int16 with step {slope:g}")
        raw = np.round(finite / slope).astype(np.int16)
        img = nib.Nifti1Image(raw, affine)
        img.header.set_slope_inter(slope, 0.0)
    else:
        img = nib.Nifti1Image(data.astype(dtype), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=4)  # 4 = MNI152
    img.header.set_sform(affine, code=4)
    if t_df is not None:
        img.header.set_intent("t test", (float(t_df),))
    with _compresslevel(9):
        nib.save(img, str(path))


@contextmanager
def _compresslevel(level: int) -> Iterator[None]:
    """nibabel gzips at level 1 by default; the sample ships at 9 (smaller, same bytes
    every run: nibabel writes gzip headers with mtime 0)."""
    from nibabel.openers import Opener

    old = Opener.default_compresslevel
    Opener.default_compresslevel = level
    try:
        yield
    finally:
        Opener.default_compresslevel = old


def write_group_maps(out: Path, group_maps: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]], affine: np.ndarray) -> None:
    """Group T maps (float32) with their JSON sidecars."""
    for contrast, (tmap, sidecar) in group_maps.items():
        path = Path(out) / group_map_name(contrast)
        write_image(path, tmap, affine, dtype=np.float32, t_df=sidecar.get("DegreesOfFreedom"))
        write_json(sidecar_path(path), dict(sidecar))


def write_results_folder(
    out: Path,
    *,
    description: Mapping[str, Any],
    design: Mapping[str, Any],
    participants: pd.DataFrame,
    participant_columns: Mapping[str, Any],
    affine: np.ndarray,
    mask: np.ndarray | None = None,
    participant_images: Mapping[tuple[str, str, str], np.ndarray] | None = None,
    group_maps: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]] | None = None,
    tables: Mapping[str, tuple[pd.DataFrame, Mapping[str, Any] | None]] | None = None,
    image_dtype: type = np.float32,
    quantum: float | None = None,
) -> None:
    """Write every part of a results folder below ``out`` (created if needed).

    ``participant_images`` maps (participant_id, session, cue) to a 3D array;
    ``group_maps`` maps a contrast id to (3D T map, sidecar dict).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "dataset_description.json", dict(description))
    write_json(out / "design.json", dict(design))
    write_tsv(out / "participants.tsv", participants)
    write_json(out / "participants.json", dict(participant_columns))
    if mask is not None:
        write_image(out / GROUP_DIR / MASK_NAME, mask.astype(np.uint8), affine, dtype=np.uint8)
    for (pid, session, cue), data in (participant_images or {}).items():
        write_image(out / participant_image_name(pid, session, cue), data, affine, dtype=image_dtype, quantum=quantum)
    write_group_maps(out, group_maps or {}, affine)
    for name, (df, meta) in (tables or {}).items():
        write_tsv(out / TABLES_DIR / f"{name}.tsv", df)
        if meta:
            write_json(out / TABLES_DIR / f"{name}.json", dict(meta))
