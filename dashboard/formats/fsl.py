"""An FSL group FEAT folder (``*.gfeat`` with ``cope<N>.feat/``), or one ``cope<N>.feat``.

Each ``cope<N>.feat`` holds the higher-level model of one lower-level contrast; each of
its higher-level contrasts ``M`` (``design.con``: ``/ContrastName<M>``) is a map
``stats/zstat<M>.nii.gz``.  The maps are FSL's Z statistics, so tables use Gaussian
random-field theory, with FSL's own smoothness estimate (``stats/smoothness``, written by
``smoothest``: ``RESELS`` = voxels per resel = the product of the FWHMs in voxels, so the
FWHM is taken as isotropic, ``RESELS^(1/3)``; ``VOLUME`` = search volume in voxels) and
the resel counts of the cope's ``mask.nii.gz`` at that FWHM.  The table uses SPM's
listing rules (maxima, distances, FDR) on FSL's Z map; the reader says so in its notes.
Without ``stats/smoothness`` the table has no RFT columns.

With a single cope, its lower-level copes (``filtered_func_data``, one volume per row of
``design.mat``) are the participants' values: a participant subset refits ``design.mat``'s
rows by ordinary least squares (a T map; FEAT's FLAME would weigh them differently), and
``regress`` uses them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dashboard.nifti import ImageError, read_header, read_volume
from dashboard.results import (
    Contrast,
    DesignRows,
    GroupMap,
    Problem,
    Study,
    StudyError,
    check_group_images,
    design_conditions,
    package_study,
    relative_name,
)

if TYPE_CHECKING:
    from dashboard.formats import OpenOptions

_COPE_DIR = re.compile(r"^cope(\d+)\.feat$")
_ZSTAT = re.compile(r"^zstat(\d+)\.nii(\.gz)?$")


def _feats(root: Path) -> list[tuple[int, Path]]:
    """(lower-level cope number, folder) of each cope feat of a gfeat, or the feat itself."""
    if (root / "stats").is_dir() and _COPE_DIR.match(root.name):
        return [(int(_COPE_DIR.match(root.name)[1]), root)]  # type: ignore[index]
    found = [(int(m[1]), p) for p in root.iterdir() if (m := _COPE_DIR.match(p.name)) and (p / "stats").is_dir()]
    return sorted(found)


def detect(root: Path) -> bool:
    return bool(_feats(root))


def read_fsl_text(path: Path, root: Path, problems: list[Problem]) -> dict[str, list[str]] | None:
    """An FSL key/value text file (``design.con``, ``stats/smoothness``): ``/Key value`` or
    ``KEY value`` lines, up to a ``/Matrix`` line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(relative_name(path, root), f"cannot be read as text ({type(exc).__name__})"))
        return None
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip().startswith("/Matrix"):
            break
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0].lstrip("/")] = parts[1].split()
    return out


def _contrast_names(feat: Path, root: Path, problems: list[Problem]) -> dict[int, str]:
    """``/ContrastName<M> <name>`` lines of the feat's design.con (names may hold spaces)."""
    con = feat / "design.con"
    if not con.is_file():
        return {}
    try:
        text = con.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(relative_name(con, root), f"cannot be read as text ({type(exc).__name__})"))
        return {}
    return {int(m[1]): m[2].strip() for line in text.splitlines() if (m := re.match(r"^/ContrastName(\d+)\s+(.*)$", line))}


def smoothness_from_fsl(path: Path, mask: np.ndarray, root: Path, problems: list[Problem]) -> dict[str, Any] | None:
    """The sidecar-style smoothness (FWHMVoxels, Resels, SearchVolumeVoxels) of an FSL
    ``stats/smoothness`` file with the resel counts of ``mask``."""
    from dashboard.stats import rft

    fields = read_fsl_text(path, root, problems)
    if fields is None:
        return None
    rel = relative_name(path, root)
    try:
        resels = float(fields["RESELS"][0])
        volume = int(float(fields["VOLUME"][0]))
    except (KeyError, IndexError, ValueError):
        problems.append(Problem(rel, "needs RESELS and VOLUME lines (as FSL's smoothest writes them)"))
        return None
    if not (math.isfinite(resels) and resels > 0 and volume > 0):
        problems.append(Problem(rel, f"RESELS {resels:g} and VOLUME {volume} must be positive"))
        return None
    fwhm = resels ** (1 / 3)
    return {"FWHMVoxels": [fwhm] * 3, "Resels": list(rft.resel_counts(mask, (fwhm, fwhm, fwhm))), "SearchVolumeVoxels": volume}


def read_fsl_matrix(path: Path, root: Path, problems: list[Problem]) -> np.ndarray | None:
    """The numbers after ``/Matrix`` of an FSL design file (design.mat, design.con), rows x columns."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(relative_name(path, root), f"cannot be read as text ({type(exc).__name__})"))
        return None
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("/Matrix")) + 1
        rows = [[float(v) for v in line.split()] for line in lines[start:] if line.strip()]
        matrix = np.array(rows, dtype=float)
    except (StopIteration, ValueError):
        problems.append(Problem(relative_name(path, root), "has no /Matrix of numbers"))
        return None
    if matrix.ndim != 2 or not matrix.size or not np.isfinite(matrix).all():
        problems.append(Problem(relative_name(path, root), "its /Matrix is not a rectangular table of finite numbers"))
        return None
    return matrix


def _design_rows(feat: Path, contrast_ids: dict[int, str], root: Path, problems: list[Problem]) -> DesignRows | None:
    """The higher-level design of one cope feat: ``design.mat`` rows, the lower-level copes
    of ``filtered_func_data`` (one volume per row; FSL keeps no participant ids, so
    participants are named ``input <i>``) and ``design.con`` contrasts."""
    data, mat, con = feat / "filtered_func_data.nii.gz", feat / "design.mat", feat / "design.con"
    if not (data.is_file() and mat.is_file() and con.is_file()):
        return None
    x = read_fsl_matrix(mat, root, problems)
    c = read_fsl_matrix(con, root, problems)
    if x is None or c is None:
        return None
    try:
        n_volumes = read_header(data, volumes=True).n_volumes
    except ImageError as exc:
        problems.append(Problem(relative_name(data, root), str(exc)))
        return None
    if n_volumes != x.shape[0] or c.shape[1] != x.shape[1]:
        problems.append(Problem(relative_name(feat, root), f"design.mat has {x.shape[0]} rows and {x.shape[1]} EVs, "
                                                           f"filtered_func_data {n_volumes} volumes, design.con {c.shape[1]} columns"))
        return None
    width = len(str(x.shape[0]))
    ids = tuple(f"input {i + 1:0{width}d}" for i in range(x.shape[0]))
    columns = tuple(f"EV{j + 1}" for j in range(x.shape[1]))
    conditions, row_conditions = design_conditions(list(columns), x)
    return DesignRows(paths=(data,), participants=ids, x=x, columns=columns,
                      contrasts={cid: c[number - 1] for number, cid in contrast_ids.items() if number <= c.shape[0]},
                      conditions=conditions, row_conditions=row_conditions, volumes=tuple(range(x.shape[0])))


def load(root: Path, options: OpenOptions, *, check_data: bool = True, defer_participant_data: bool = False) -> Study:
    """Read an FSL group FEAT folder; :class:`StudyError` with every problem found."""
    del options, defer_participant_data
    problems: list[Problem] = []
    contrasts: list[Contrast] = []
    group_maps: dict[str, GroupMap] = {}
    feats = _feats(root)
    mask_path = feats[0][1] / "mask.nii.gz" if feats else None
    if mask_path is None or not mask_path.is_file():
        raise StudyError([Problem(relative_name(mask_path, root) if mask_path else str(root), "missing: FEAT writes the analysis mask there")])
    try:
        mask = read_volume(mask_path) > 0
    except ImageError as exc:
        raise StudyError([Problem(relative_name(mask_path, root), str(exc))]) from None
    notes = ["FSL:          Z maps listed with SPM's rules (maxima 8 mm apart, FDR and FWE by Gaussian-field RFT) "
             "using FSL's smoothness estimate (RESELS as an isotropic FWHM)"]
    for cope, feat in feats:
        names = _contrast_names(feat, root, problems)
        smooth_file = feat / "stats" / "smoothness"
        smoothness = smoothness_from_fsl(smooth_file, mask, root, problems) if smooth_file.is_file() else None
        if smoothness is None and not smooth_file.is_file():
            notes.append(f"{relative_name(smooth_file, root)} missing: no RFT p-values for cope {cope}")
        zstats = sorted((int(m[1]), p) for p in (feat / "stats").iterdir() if (m := _ZSTAT.match(p.name)))
        if not zstats:
            problems.append(Problem(relative_name(feat / "stats", root), "holds no zstat<N>.nii.gz"))
        for number, path in zstats:
            name = names.get(number, f"zstat{number}")
            label = name if len(feats) == 1 else f"cope {cope}: {name}"
            cid = f"cope{cope}zstat{number}"
            contrasts.append(Contrast(id=cid, label=label, weights={}))
            group_maps[cid] = GroupMap(contrast=cid, path=path, statistic="Z", df=math.inf, model=None,
                                       description=f"FSL FEAT cope {cope}, contrast {number}: {name} (Z)", weights={},
                                       smoothness=smoothness)
    design_rows = None
    participants = pd.DataFrame(index=pd.Index([], name="participant_id"))
    if len(feats) == 1:  # one cope: its design and inputs are the study's (several copes each have their own)
        cope, feat = feats[0]
        numbers = {int(cid.split("zstat")[1]): cid for cid in group_maps}
        design_rows = _design_rows(feat, numbers, root, problems)
        if design_rows is not None:
            participants = pd.DataFrame(index=pd.Index(list(design_rows.participants), name="participant_id"))
            notes.append(f"participants: {len(participants)} lower-level inputs (filtered_func_data); a subset is refitted "
                         "by ordinary least squares (T), whatever FEAT's own estimation (e.g. FLAME) was")
    grid = check_group_images([gm.path for gm in group_maps.values()], mask_path, root, problems, check_data=check_data)
    if problems:
        raise StudyError(problems)
    assert grid is not None
    return package_study(root, "FSL group FEAT", contrasts, group_maps, grid, mask_path, participants=participants, notes=notes,
                         design_rows=design_rows)
