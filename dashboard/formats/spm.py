"""An SPM12 second-level folder: ``SPM.mat`` and the images SPM wrote beside it.

What is read, as SPM's results viewer uses it (``spm_getSPM``), with no re-estimation:

- contrasts from ``SPM.xCon``: name, ``STAT`` (T or F), weights ``c`` over the design's
  columns (``SPM.xX.name``), the statistic image ``Vspm`` (``spmT_*`` / ``spmF_*``) and,
  for an F, its effect df ``eidf``;
- the error df ``SPM.xX.erdf`` (not an integer: 84.000000000000085, used as it is);
- smoothness and search volume from ``SPM.xVol``: ``FWHM`` (voxels), the resel counts
  ``R`` and the voxel count ``S``; the analysis mask from ``mask.nii`` (``spmT`` images
  hold 0, not NaN, outside it, and in-mask voxels can be exactly 0).

The design's input images (``SPM.xY.P``, absolute paths of the machine that estimated
it) are found as written, else relative to the folder, else by their tail under
``--first-level-root`` (:func:`resolve_scan`); ``validate`` refits the design from them
(:mod:`dashboard.stats.glm`) and reports how closely SPM's spmT/spmF are reproduced.
Participant features in the views do not use them yet.

``SPM.mat`` is read with :func:`scipy.io.loadmat` (MATLAB v5/v6/v7 files, SPM's default).
A v7.3 (HDF5) file gets a one-line error saying how to re-save it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dashboard.nifti import read_volume
from dashboard.results import (
    SUBJECT_COLUMN,
    Contrast,
    DesignRows,
    GroupMap,
    Problem,
    Study,
    StudyError,
    check_group_images,
    design_conditions,
    package_study,
)

if TYPE_CHECKING:
    from dashboard.formats import OpenOptions

SPM_MAT = "SPM.mat"
MASK = "mask.nii"
MAX_LISTED = 5  # missing design images listed by validate


def detect(root: Path) -> bool:
    return (root / SPM_MAT).is_file()


def read_spm_mat(path: Path) -> Any:
    """The ``SPM`` struct of an SPM.mat (scipy ``mat_struct``); StudyError if unreadable."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    name = path.name
    try:
        with path.open("rb") as f:
            head = f.read(128)
        if b"MATLAB 7.3" in head or head[:8] == b"\x89HDF\r\n\x1a\n":
            raise StudyError([Problem(name, "is a MATLAB v7.3 (HDF5) file, which is not read; re-save it in MATLAB with "
                                            "load('SPM.mat'); save('SPM.mat', 'SPM', '-v7')")])
        mat = loadmat(str(path), squeeze_me=True, struct_as_record=False, verify_compressed_data_integrity=True)
    except StudyError:
        raise
    except (MatReadError, ValueError, OSError, EOFError, NotImplementedError, TypeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError([Problem(name, f"cannot be read as a MATLAB file ({text})")]) from None
    if "SPM" not in mat:
        raise StudyError([Problem(name, f"holds no SPM structure (variables: {', '.join(k for k in mat if not k.startswith('__'))})")])
    return mat["SPM"]


def _field(obj: Any, name: str, where: str) -> Any:
    if not hasattr(obj, name):
        raise StudyError([Problem(SPM_MAT, f"{where}.{name} is missing (not an estimated SPM model?)")])
    return getattr(obj, name)


def _strings(value: Any) -> list[str]:
    """A MATLAB cellstr / char array as a list of str."""
    arr = np.atleast_1d(value)
    return [str(v) for v in arr.ravel()]


def _weights(c: Any, names: list[str]) -> dict[str, float]:
    """A T contrast's weights over the design's columns (F contrasts: empty)."""
    arr = np.asarray(c, dtype=float)
    if arr.ndim != 1 or arr.size != len(names):
        return {}
    return {n: float(w) for n, w in zip(names, arr, strict=True) if w != 0}


def _parts(text: str) -> list[str]:
    """Components of a path written on any machine (POSIX or Windows separators)."""
    return [p for p in re.split(r"[\\/]+", text) if p and not re.fullmatch(r"[A-Za-z]:", p)]


def resolve_scan(written: str, swd: str, root: Path, first_level_root: Path | None) -> Path | None:
    """Where one ``SPM.xY.P`` entry is on this machine: the path as written, else the same
    path relative to the folder (``SPM.swd`` is where the model was estimated, ``root``
    where it is now), else its longest tail found under ``first_level_root``."""
    path = written.rsplit(",", 1)[0] if re.search(r",\d+$", written) else written
    if Path(path).is_file():
        return Path(path)
    parts, home = _parts(path), _parts(swd)
    common = 0
    while common < min(len(parts), len(home)) and parts[common] == home[common]:
        common += 1
    if common:
        candidate = root.joinpath(*([".."] * (len(home) - common)), *parts[common:])
        if candidate.is_file():
            return candidate
    if first_level_root is not None:
        for start in range(len(parts)):
            candidate = first_level_root.joinpath(*parts[start:])
            if candidate.is_file():
                return candidate
    return None


def refit_note(study: Study, whitening: np.ndarray | None) -> str:
    """Refit the design from its input images (the rows :meth:`Study.design_data` reads, as
    every refit does) and compare with SPM's own statistic images: the largest absolute
    difference over the mask, as one summary line."""
    from dashboard.stats.glm import fit_design

    dr = study.design_rows
    assert dr is not None
    fit = fit_design(study.design_data(), dr.x, whitening)
    worst = 0.0
    for cid, weights in dr.contrasts.items():
        ours = fit.t_map(weights) if study.group_maps[cid].statistic == "T" else fit.f_map(weights)[0]
        worst = max(worst, float(np.nanmax(np.abs(ours - study.group_map(cid)))))
    return (f"refit:        the design refitted from its {len(dr.paths)} images reproduces SPM's spmT/spmF "
            f"to {worst:.1e} (largest absolute difference in the mask)")


_SUBJECT_IN_PATH = re.compile(r"(?:^|[\\/_])(sub-[A-Za-z0-9]+)(?=[\\/_.]|$)")


def row_participants(written: list[str], columns: list[str], x: np.ndarray) -> list[str]:
    """The participant of each design row: the BIDS ``sub-<label>`` in its image path,
    else the design's subject column it loads on (``subject_{k}``), else the row itself
    (``image <i>``: each image a participant of its own)."""
    from_paths = [m[1] if (m := _SUBJECT_IN_PATH.search(p)) else None for p in written]
    if all(from_paths):
        return [p for p in from_paths if p is not None]
    subject_cols = [(j, m[1]) for j, name in enumerate(columns) if (m := SUBJECT_COLUMN.match(name))]
    if subject_cols:
        out = []
        for i in range(x.shape[0]):
            hits = [k for j, k in subject_cols if x[i, j] != 0]
            out.append(f"subject {hits[0]}" if len(hits) == 1 else f"image {i + 1}")
        return out
    return [f"image {i + 1}" for i in range(x.shape[0])]


def _weight_array(c: Any, n_columns: int, stat: str) -> np.ndarray:
    """``xCon.c`` as a vector over the columns (T) or a columns x rows matrix (F); loadmat
    squeezes a one-column design's weights to a scalar."""
    arr = np.asarray(c, dtype=float).reshape(n_columns, -1)
    return arr[:, 0] if str(stat) == "T" else arr


def _participants_table(spm: Any, ids: list[str]) -> pd.DataFrame:
    """One row per participant (first-seen order) with the design's covariates
    (``SPM.xC``) that take one value per participant."""
    order = list(dict.fromkeys(ids))
    table = pd.DataFrame(index=pd.Index(order, name="participant_id"))
    for cov in np.atleast_1d(getattr(spm, "xC", [])):
        values = np.asarray(getattr(cov, "rc", []), dtype=float).ravel()
        name = str(getattr(cov, "rcname", "")) or "covariate"
        if values.size != len(ids):
            continue
        per = pd.Series(values).groupby(pd.Series(ids)).agg(["min", "max"])
        if (per["min"] == per["max"]).all():
            table[name] = per.loc[order, "min"].to_numpy()
    return table


def _add_participants_tsv(root: Path, table: pd.DataFrame, problems: list[Problem],
                          given: Path | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """A participants table adds its columns: ``given`` (``--participants-table``) or a
    ``participants.tsv`` (+ .json) beside SPM.mat.  Rows are matched by ``participant_id``
    (the project's reader and checks), or, in a table without that column and with one row
    per participant, by order (the order of the participants' first images in SPM.xY.P).
    The design's covariates win a name clash; ids not in the design are reported."""
    from dashboard.results import read_participants, read_tsv

    path = given or root / "participants.tsv"
    if not path.exists():
        if given is not None:
            problems.append(Problem(str(given), "missing"))
        return {}, table
    folder, rel = path.parent, path.name
    header = path.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    if header and "participant_id" not in header[0].split("\t"):
        by_order = read_tsv(path, folder, problems, dtype=str)
        if by_order is None:
            return {}, table
        if len(by_order) != len(table):
            problems.append(Problem(rel, f"has no participant_id column and {len(by_order)} rows for the design's {len(table)} "
                                               "participants: rows can be matched neither by id nor by order"))
            return {}, table
        by_order.index = table.index
        extra: pd.DataFrame | None = by_order.copy()
        for col in by_order.columns:  # numbers where a column holds only numbers (and n/a)
            numbers = pd.to_numeric(by_order[col], errors="coerce")
            if numbers.notna().sum() == by_order[col].notna().sum():
                extra[col] = numbers  # type: ignore[index]
        columns: dict[str, Any] = {}
    else:
        extra, columns, _ = read_participants(root, problems, path)
    if extra is None:
        return {}, table
    unknown = sorted(set(extra.index) - set(table.index))
    if unknown:
        problems.append(Problem(rel, f"{len(unknown)} participant(s) not in the design's images, e.g. {unknown[0]}"))
    merged = table.join(extra[[c for c in extra.columns if c not in table.columns]], how="left")
    return columns, merged


def load(root: Path, options: OpenOptions, *, check_data: bool = True, defer_participant_data: bool = False) -> Study:
    """Read an SPM12 second-level folder; :class:`StudyError` with every problem found."""
    spm = read_spm_mat(root / SPM_MAT)
    xx = _field(spm, "xX", "SPM")
    xvol = _field(spm, "xVol", "SPM")
    erdf = float(_field(xx, "erdf", "SPM.xX"))
    names = _strings(_field(xx, "name", "SPM.xX"))
    if not math.isfinite(erdf) or erdf <= 0:
        raise StudyError([Problem(SPM_MAT, f"SPM.xX.erdf is {erdf:g}: the model has no error degrees of freedom")])
    smoothness = {
        "FWHMVoxels": [float(v) for v in np.atleast_1d(_field(xvol, "FWHM", "SPM.xVol"))],
        "Resels": [float(v) for v in np.atleast_1d(_field(xvol, "R", "SPM.xVol"))],
        "SearchVolumeVoxels": int(_field(xvol, "S", "SPM.xVol")),
    }
    xcon = np.atleast_1d(getattr(spm, "xCon", []))
    problems: list[Problem] = []
    contrasts: list[Contrast] = []
    group_maps: dict[str, GroupMap] = {}
    for i, con in enumerate(xcon, start=1):
        try:
            stat = str(con.STAT)
            label = str(con.name)
            fname = str(con.Vspm.fname) if hasattr(con.Vspm, "fname") else ""
        except AttributeError:
            problems.append(Problem(SPM_MAT, f"SPM.xCon({i}) lacks STAT, name or an estimated image (Vspm)"))
            continue
        if stat not in ("T", "F"):
            problems.append(Problem(SPM_MAT, f"SPM.xCon({i}) {label!r} has STAT {stat!r}; only T and F contrasts are read"))
            continue
        if not fname:
            continue  # defined but never estimated: SPM shows it only after computing it
        path = root / Path(fname).name
        if not path.is_file():
            problems.append(Problem(Path(fname).name, f"missing: the image of contrast {i} ({label!r}) in SPM.xCon"))
            continue
        cid = str(i)
        eidf = float(con.eidf) if stat == "F" else 1.0
        contrasts.append(Contrast(id=cid, label=label, weights=_weights(con.c, names) if stat == "T" else {}))
        group_maps[cid] = GroupMap(contrast=cid, path=path, statistic=stat, df=erdf, model=None,
                                   description=f"SPM12 contrast {i}: {label} ({stat})", weights=contrasts[-1].weights,
                                   smoothness=smoothness, df_effect=eidf)
    if not contrasts and not problems:
        problems.append(Problem(SPM_MAT, "no estimated contrasts in SPM.xCon: define one in SPM's results viewer first"))
    mask_path = root / MASK
    if not mask_path.is_file():
        problems.append(Problem(MASK, "missing: SPM writes the analysis mask beside SPM.mat"))
    grid = check_group_images([gm.path for gm in group_maps.values()], mask_path if mask_path.is_file() else None, root, problems,
                              check_data=check_data)
    dim = tuple(int(v) for v in np.atleast_1d(getattr(xvol, "DIM", [])))
    if grid is not None and dim and dim != grid[0]:
        problems.append(Problem(SPM_MAT, f"SPM.xVol.DIM {dim} differs from the images' grid {grid[0]}"))
    if check_data and grid is not None and not problems:  # the search volume SPM used is the mask's
        in_mask = int((read_volume(mask_path) > 0).sum())
        if in_mask != smoothness["SearchVolumeVoxels"]:
            problems.append(Problem(MASK, f"has {in_mask} voxels > 0, SPM.xVol.S says {smoothness['SearchVolumeVoxels']}"))
    written = _strings(getattr(getattr(spm, "xY", None), "P", []))
    swd = str(getattr(spm, "swd", ""))
    found = [resolve_scan(p, swd, root, options.first_level_root) for p in written]
    missing = [w for w, f in zip(written, found, strict=True) if f is None]
    notes = [f"images:       {len(written) - len(missing)} of {len(written)} design images (SPM.xY.P) found"
             + ("; participant features are off until they are (give --first-level-root DIR)" if missing else "")]
    notes += [f"  not found:  {m}" for m in missing[:MAX_LISTED]]
    if len(missing) > MAX_LISTED:
        notes.append(f"  ... and {len(missing) - MAX_LISTED} more")
    design_rows = None
    columns: dict[str, Any] = {}
    participants = pd.DataFrame(index=pd.Index([], name="participant_id"))
    x = np.asarray(xx.X, dtype=float).reshape(len(written), -1) if written else np.zeros((0, len(names)))
    if written and not missing and x.shape[1] == len(names):
        ids = row_participants(written, names, x)
        conditions, row_conditions = design_conditions(names, x)
        design_rows = DesignRows(paths=tuple(f for f in found if f is not None), participants=tuple(ids), x=x, columns=tuple(names),
                                 conditions=conditions, row_conditions=row_conditions,
                                 contrasts={str(i): _weight_array(con.c, len(names), con.STAT) for i, con in enumerate(xcon, start=1)
                                            if str(i) in group_maps})
        participants = _participants_table(spm, ids)
        columns, participants = _add_participants_tsv(root, participants, problems, options.participants_table)
        notes.append(f"participants: {len(participants)} ({'from the image paths' if ids[0].startswith('sub-') else 'from the design'})"
                     + (f"; covariates {', '.join(participants.columns)}" if len(participants.columns) else ""))
    if problems:
        raise StudyError(problems)
    assert grid is not None
    study = package_study(root, "SPM12 second level (SPM.mat)", contrasts, group_maps, grid, mask_path, participants=participants,
                          columns=columns, notes=notes, design_rows=design_rows, design={"DesignColumns": names},
                          extra={"SPM": str(getattr(spm, "SPMid", "")).strip()})
    if check_data and not defer_participant_data and design_rows is not None:
        w = xx.W.toarray() if hasattr(xx.W, "toarray") else np.asarray(xx.W, dtype=float)
        study.notes = (*study.notes, refit_note(study, None if np.allclose(w, np.eye(len(written))) else w))
    return study
