"""Results-folder format: file names, loading and validation.

A results folder is a BIDS-derivatives-style directory (see README, "Results folder
format")::

    dataset_description.json        DatasetType "derivative", GeneratedBy
    design.json                     conditions and contrasts (weights over conditions)
    participants.tsv / .json        one row per participant, column descriptions + units
    sub-<id>/ses-<ses>/func/sub-<id>_ses-<ses>_task-<task>_contrast-<cue>_stat-effect_statmap.nii.gz
    group/task-<task>_contrast-<c>_stat-t_statmap.nii.gz (+ .json sidecar)
    group/task-<task>_desc-brain_mask.nii.gz      (optional)
    tables/<name>.tsv (+ .json)                   (optional)

The loader never writes anything below the results folder: every file is opened
read-only, and nothing (caches, indexes) is created there.  Problems are collected as
:class:`Problem` (file + one-line message) rather than raised one at a time, so a user
sees every problem of a folder at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboard.nifti import ImageError, ImageHeader, load_nifti, read_header, read_volume, read_volumes

__all__ = ["Problem", "Study", "StudyError", "group_map_name", "load_nifti", "load_study", "participant_image_name"]

TASK = "cue"
GROUP_DIR = "group"
TABLES_DIR = "tables"
MASK_NAME = f"task-{TASK}_desc-brain_mask.nii.gz"
AFFINE_TOLERANCE = 1e-3  # mm; affines closer than this count as the same grid

_PARTICIPANT_IMAGE = re.compile(
    r"^(?P<sub>sub-[A-Za-z0-9]+)_ses-(?P<ses>[A-Za-z0-9]+)_task-(?P<task>[A-Za-z0-9]+)"
    r"_contrast-(?P<cue>[A-Za-z0-9]+)_stat-effect_statmap\.nii(\.gz)?$"
)
_GROUP_MAP = re.compile(
    r"^task-(?P<task>[A-Za-z0-9]+)_contrast-(?P<contrast>[A-Za-z0-9]+)_stat-(?P<stat>[A-Za-z]+)"
    r"_statmap\.nii(\.gz)?$"
)


def participant_image_name(participant_id: str, session: str, cue: str) -> str:
    """Relative path of a first-level effect map (participant x session x cue)."""
    return (
        f"{participant_id}/ses-{session}/func/"
        f"{participant_id}_ses-{session}_task-{TASK}_contrast-{cue}_stat-effect_statmap.nii.gz"
    )


def group_map_name(contrast: str, stat: str = "t") -> str:
    """Relative path of a group statistic map."""
    return f"{GROUP_DIR}/task-{TASK}_contrast-{contrast}_stat-{stat}_statmap.nii.gz"


def sidecar_path(image_path: Path) -> Path:
    """JSON sidecar of a ``.nii``/``.nii.gz`` image."""
    name = image_path.name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else name[: -len(".nii")]
    return image_path.with_name(stem + ".json")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a results folder: the file (relative) and what is wrong."""

    file: str
    message: str

    def __str__(self) -> str:
        """``file: message`` on one line, whatever a file name or value holds: control
        characters (newlines, terminal escapes) are shown escaped, never sent."""
        text = f"{self.file}: {self.message}"
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class StudyError(Exception):
    """A results folder cannot be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Condition:
    """A cell of the design: one cue type in one session (e.g. ``cocaine_placebo``)."""

    id: str
    cue: str
    session: str
    label: str


@dataclass(frozen=True)
class Contrast:
    """A group contrast as weights over conditions (e.g. placebo: cocaine - neutral)."""

    id: str
    label: str
    weights: dict[str, float]


@dataclass(frozen=True)
class GroupMap:
    """A stored group statistic map and what its sidecar says about it."""

    contrast: str
    path: Path
    statistic: str  # SPM's STAT: "T", "F" or "Z"
    df: float  # error degrees of freedom (inf for Z)
    model: str | None
    description: str
    weights: dict[str, float]
    smoothness: dict[str, Any] | None
    df_effect: float = 1.0  # numerator df of an F map


@dataclass(frozen=True)
class DesignRows:
    """An analysis package's own design (an SPM second level): one row per input image.

    ``participants[i]`` is the participant of row ``i`` (several rows per participant in
    a within-subject design); ``contrasts`` the package's weights over ``columns`` per
    contrast id (a vector for T, a matrix with one column per row of an F contrast).
    A participant subset is the design's rows of those participants, refitted.
    """

    paths: tuple[Path, ...]
    participants: tuple[str, ...]
    x: np.ndarray  # (n_rows, n_columns)
    columns: tuple[str, ...]
    contrasts: dict[str, np.ndarray]
    conditions: tuple[str, ...] = ()  # the design's condition columns (0/1 indicators, no subject columns)
    row_conditions: tuple[int | None, ...] = ()  # each row's condition (index into conditions), None if none
    volumes: tuple[int, ...] = ()  # with one 4D file for every row (FSL's filtered_func_data): each row's volume


# a subject column of a package's design (SPM: "subject_{3}", "Subject_{3}"): not a condition
SUBJECT_COLUMN = re.compile(r"^subject_?\{?(\d+)\}?$", re.IGNORECASE)


def design_conditions(columns: list[str], x: np.ndarray) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    """The design's condition columns (0/1 indicators that are not subject columns, one
    per row at most: cells of a factorial, groups, the mean of a one-sample design) and
    each row's condition."""
    candidates = [j for j, name in enumerate(columns) if not SUBJECT_COLUMN.match(name)
                  and np.isin(x[:, j], (0.0, 1.0)).all() and x[:, j].any()]
    if (x[:, candidates].sum(axis=1) > 1).any():
        return (), tuple(None for _ in range(x.shape[0]))
    rows = tuple(next((k for k, j in enumerate(candidates) if x[i, j] == 1), None) for i in range(x.shape[0]))
    return tuple(columns[j] for j in candidates), rows


@dataclass
class Study:
    """A loaded results folder.

    Images are read lazily: group maps and participant images are only read (and
    masked to in-brain voxels) when first asked for, then kept in memory.
    """

    root: Path
    description: dict[str, Any]
    design: dict[str, Any]
    conditions: tuple[Condition, ...]
    contrasts: tuple[Contrast, ...]
    participants: pd.DataFrame  # index: participant_id
    participant_columns: dict[str, Any]  # participants.json
    group_maps: dict[str, GroupMap]
    image_paths: dict[tuple[str, str], Path]  # (participant_id, condition_id) -> path
    shape: tuple[int, int, int]
    affine: np.ndarray
    mask_path: Path | None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what validate adds to its summary (e.g. an SPM refit check)
    design_rows: DesignRows | None = None  # a package's own design with its input images (SPM)
    _group_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # -- identity -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.description.get("Name", self.root.name))

    @property
    def synthetic(self) -> bool:
        """True when dataset_description.json declares the data synthetic."""
        return bool(self.description.get("Synthetic", False))

    @property
    def has_participant_images(self) -> bool:
        return bool(self.image_paths)

    def identity(self) -> str:
        """What results computed from this study depend on besides their own settings: the
        folder and its participant (or design input) images' modification times (read now: a folder changed
        on disk gets another identity), as a hash for cache keys."""
        images = [*self.image_paths.values(), *(self.design_rows.paths if self.design_rows is not None else ())]
        # resolved paths: the same folder opened as a relative or absolute path (a server and
        # its Celery workers) has one identity
        stamps = sorted({(str(p.resolve()), p.stat().st_mtime_ns) for p in images if p.exists()})
        text = "|".join([str(self.root.resolve()), *(f"{p}:{t}" for p, t in stamps)])
        return hashlib.sha1(text.encode()).hexdigest()

    @property
    def view_defaults(self) -> dict[str, Any]:
        """design.json's ``ViewDefaults``: what the app shows first (``Contrast``,
        ``Condition``, ``Covariate``) and filters on (``QuickFilters``); {} if none."""
        value = self.design.get("ViewDefaults") if isinstance(self.design, dict) else None
        return value if isinstance(value, dict) else {}

    @property
    def can_refit(self) -> bool:
        """True when group maps can be recomputed for a participant subset: the project's
        participant images, or a package design whose input images were all found."""
        return self.has_participant_images or self.design_rows is not None

    def design_data(self) -> np.ndarray:
        """The design's input images as ``(n_rows, n_voxels)`` float32 in-mask values
        (read once, then kept)."""
        if self.design_rows is None:
            raise StudyError([Problem(str(self.root), "this folder has no design with input images")])
        if "__design__" not in self._group_cache and self.design_rows.volumes:
            path = self.design_rows.paths[0]
            try:
                data = read_volumes(path)
            except ImageError as exc:
                raise StudyError([Problem(relative_name(path, self.root), str(exc))]) from None
            if data.shape[:3] != self.shape:
                raise StudyError([Problem(relative_name(path, self.root), f"grid {data.shape[:3]} differs from the study grid {self.shape}")])
            self._group_cache["__design__"] = np.stack([data[..., v][self.mask] for v in self.design_rows.volumes]).astype(np.float32)
        if "__design__" not in self._group_cache:
            rows = np.empty((len(self.design_rows.paths), self.n_voxels), np.float32)
            for i, path in enumerate(self.design_rows.paths):
                data = self._read(path)
                if data.shape != self.shape:
                    raise StudyError([Problem(str(path), f"grid {data.shape} differs from the study grid {self.shape}")])
                rows[i] = self.masked(data)
            self._group_cache["__design__"] = rows
        return self._group_cache["__design__"]

    @property
    def participant_ids(self) -> list[str]:
        return list(self.participants.index)

    @property
    def condition_ids(self) -> list[str]:
        return [c.id for c in self.conditions]

    def contrast(self, contrast_id: str) -> Contrast:
        for c in self.contrasts:
            if c.id == contrast_id:
                return c
        raise KeyError(f"unknown contrast {contrast_id!r}; known: {[c.id for c in self.contrasts]}")

    def resolve_contrast(self, text: str) -> str:
        """The id of the contrast a user names: its id, its 1-based number (as SPM and FSL
        number contrasts) or its label (case-insensitive).  KeyError when none fits."""
        ids = [c.id for c in self.contrasts]
        if text in ids:
            return text
        if text.isdigit() and 1 <= int(text) <= len(ids):
            return ids[int(text) - 1]
        by_label = [c.id for c in self.contrasts if c.label.casefold() == text.strip().casefold()]
        if len(by_label) == 1:
            return by_label[0]
        known = ", ".join(f"{i + 1} {c.id}" + (f" ({c.label})" if c.label != c.id else "") for i, c in enumerate(self.contrasts))
        raise KeyError(f"unknown contrast {text!r}; known: {known}")

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    # -- data ---------------------------------------------------------------------
    @cached_property
    def mask(self) -> np.ndarray:
        """Boolean in-brain mask: the mask image if present, else voxels finite and
        non-zero in every group map (SPM writes NaN outside its analysis mask)."""
        if self.mask_path is not None:
            return self._read(self.mask_path) > 0
        mask = np.ones(self.shape, dtype=bool)
        for gm in self.group_maps.values():
            data = self._read(gm.path)
            mask &= np.isfinite(data) & (data != 0)
        return mask

    def _read(self, path: Path) -> np.ndarray:
        """An image of the folder; :class:`StudyError` naming the file when it cannot be
        read (a folder loaded with ``check_data=False`` has had its headers checked only)."""
        try:
            return read_volume(path)
        except ImageError as exc:
            raise StudyError([Problem(relative_name(path, self.root), str(exc))]) from None

    @cached_property
    def n_voxels(self) -> int:
        return int(self.mask.sum())

    def masked(self, volume: np.ndarray) -> np.ndarray:
        """In-brain voxels of a 3D volume as a vector (C order of ``np.nonzero(mask)``)."""
        return np.asarray(volume[self.mask])

    def unmask(self, vector: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Vector of in-brain voxels back to a 3D volume, ``fill`` outside the mask."""
        out = np.full(self.shape, fill, dtype=np.result_type(vector.dtype, np.float32))
        out[self.mask] = vector
        return out

    def group_map(self, contrast_id: str) -> np.ndarray:
        """Stored group statistic of a contrast, in-brain voxels only (float32)."""
        gm = self.group_maps.get(contrast_id)
        if gm is None:
            raise KeyError(f"no stored group map for contrast {contrast_id!r}")
        if contrast_id not in self._group_cache:
            self._group_cache[contrast_id] = self.masked(self._read(gm.path))
        return self._group_cache[contrast_id]

    @cached_property
    def participant_data(self) -> np.ndarray:
        """All first-level effect maps as ``(n_participants, n_conditions, n_voxels)``
        float32, in the order of :attr:`participant_ids` and :attr:`condition_ids`.

        Raises :class:`StudyError` when the folder has no participant images, or when an
        image turns out unreadable on reading.
        """
        if not self.has_participant_images:
            raise StudyError([Problem(".", "this results folder has no participant images")])
        out = np.empty((len(self.participant_ids), len(self.conditions), self.n_voxels), np.float32)
        problems: list[Problem] = []
        for i, pid in enumerate(self.participant_ids):
            for j, cond in enumerate(self.condition_ids):
                path = self.image_paths[(pid, cond)]
                try:
                    data = read_volume(path)
                except ImageError as exc:
                    problems.append(Problem(relative_name(path, self.root), str(exc)))
                    continue
                message = participant_image_problem(data, self.mask)
                if message:
                    problems.append(Problem(relative_name(path, self.root), message))
                    continue
                out[i, j] = self.masked(data)
        if problems:
            raise StudyError(problems)
        return out


# ----------------------------------------------------------------------------------
# reading helpers
# ----------------------------------------------------------------------------------
BIDS_LABEL = re.compile(r"^[A-Za-z0-9]+$")
PARTICIPANT_ID = re.compile(r"^sub-[A-Za-z0-9]+$")
CONDITION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_TEXT_BYTES = 16 * 2**20  # metadata files (JSON, TSV) larger than this are refused
MAX_JSON_DEPTH = 64


def relative_name(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def shown(value: Any, limit: int = 40) -> str:
    """A value from a file, quoted for a message (control characters escaped, cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def participant_image_problem(data: np.ndarray, brain: np.ndarray | None) -> str | None:
    """What is wrong with a participant image's voxel values, or None: infinite
    values anywhere, or any non-finite value inside the brain mask (the model needs
    every participant at every in-brain voxel).  ``validate`` and the app's first
    read of the images (:attr:`Study.participant_data`) both ask this."""
    n_inf = int(np.isinf(data).sum())
    if n_inf:
        return f"contains {n_inf} infinite values (NaN marks outside-mask; Inf is an error)"
    n_bad = int((~np.isfinite(data[brain])).sum()) if brain is not None else 0
    return f"{n_bad} non-finite values inside the brain mask" if n_bad else None


def _read_text(path: Path, root: Path, problems: list[Problem]) -> str | None:
    """A metadata file as UTF-8 text, or None after recording why it cannot be."""
    rel = relative_name(path, root)
    if not path.is_file():
        problems.append(Problem(rel, "not a regular file"))
        return None
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        problems.append(Problem(rel, f"is {size / 1e6:.1f} MB; metadata files over {MAX_TEXT_BYTES // 2**20} MB are refused"))
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(rel, f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8"))
        return None
    return text.removeprefix("\ufeff")


def _json_depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [v for x in level if isinstance(x, (dict, list)) for v in (x.values() if isinstance(x, dict) else x)]
    return depth - 1


def read_json_object(path: Path, root: Path, problems: list[Problem], required: bool = True) -> dict[str, Any] | None:
    rel = relative_name(path, root)
    if not path.exists():
        if required:
            problems.append(Problem(rel, "missing"))
        return None
    text = _read_text(path, root, problems)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(rel, f"not valid JSON ({exc})"))
        return None
    except RecursionError:
        problems.append(Problem(rel, "not usable JSON (nested too deeply)"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(rel, f"must hold a JSON object, not {json_type(value)}"))
        return None
    if _json_depth(value) > MAX_JSON_DEPTH:
        problems.append(Problem(rel, f"nested more than {MAX_JSON_DEPTH} levels deep"))
        return None
    return value


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def read_tsv(path: Path, root: Path, problems: list[Problem], dtype: type | None = None) -> pd.DataFrame | None:
    """A BIDS TSV file ("n/a" -> missing; ``dtype=str`` for text only), checked to be rectangular with a
    header of unique, non-empty column names (pandas would pad short rows with missing
    values and rename duplicate columns without a word)."""
    rel = relative_name(path, root)
    text = _read_text(path, root, problems)
    if text is None:
        return None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        problems.append(Problem(rel, "is empty (no header line)"))
        return None
    header = lines[0].split("\t")
    if any(not h.strip() for h in header):
        problems.append(Problem(rel, f"header line has an empty column name (columns: {', '.join(map(shown, header[:6]))})"))
        return None
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        problems.append(Problem(rel, f"duplicate column names {', '.join(map(shown, dup))}"))
        return None
    for number, line in enumerate(lines[1:], start=2):
        n = len(line.split("\t"))
        if n != len(header):
            problems.append(Problem(rel, f"line {number} has {n} tab-separated fields, the header has {len(header)}"))
            return None
    return pd.read_csv(io.StringIO(text), sep="\t", dtype=dtype, na_values=["n/a"], keep_default_na=False, quoting=csv.QUOTE_NONE)


# ----------------------------------------------------------------------------------
# images: headers first (grids, sizes, types), then data
# ----------------------------------------------------------------------------------
def _study_grid(headers: dict[Path, ImageHeader]) -> tuple[tuple[int, int, int], np.ndarray] | None:
    """The grid most images share (shape and affine, within AFFINE_TOLERANCE): the
    study grid.  An image on another grid is then the one blamed, not the others."""
    groups: list[tuple[tuple[int, int, int], np.ndarray, int]] = []
    for h in headers.values():
        for i, (shape, affine, n) in enumerate(groups):
            if shape == h.shape and np.allclose(affine, h.affine, atol=AFFINE_TOLERANCE):
                groups[i] = (shape, affine, n + 1)
                break
        else:
            groups.append((h.shape, h.affine, 1))
    if not groups:
        return None
    shape, affine, _ = max(groups, key=lambda g: g[2])  # ties: the first, i.e. the group maps' grid
    return shape, affine


def check_grids(headers: dict[Path, ImageHeader], root: Path, problems: list[Problem]) -> tuple[tuple[int, int, int], np.ndarray] | None:
    grid = _study_grid(headers)
    if grid is None:
        return None
    shape, affine = grid
    n_on_grid = sum(h.shape == shape and np.allclose(h.affine, affine, atol=AFFINE_TOLERANCE) for h in headers.values())
    where = f"the study grid {shape} of {n_on_grid} other images" if n_on_grid > 1 else f"the study grid {shape}"
    for path, h in list(headers.items()):
        if h.shape != shape:
            problems.append(Problem(relative_name(path, root), f"grid {h.shape} differs from {where}"))
            del headers[path]
        elif not np.allclose(h.affine, affine, atol=AFFINE_TOLERANCE):
            shift = float(np.abs(h.affine - affine).max())
            problems.append(Problem(relative_name(path, root), f"affine differs from {where} by up to {shift:.3g} mm (images must share one grid)"))
            del headers[path]
    return grid


def check_image_data(path: Path, header: ImageHeader, root: Path, problems: list[Problem]) -> np.ndarray | None:
    """Read the voxel data once: catches truncated/corrupt files and infinities.

    NaN is allowed (SPM writes NaN outside its analysis mask); +-Inf is not.
    """
    try:
        data = read_volume(path, header)
    except ImageError as exc:
        problems.append(Problem(relative_name(path, root), str(exc)))
        return None
    n_inf = int(np.isinf(data).sum())
    if n_inf:
        problems.append(Problem(relative_name(path, root), f"contains {n_inf} infinite values (NaN marks outside-mask; Inf is an error)"))
        return None
    if not np.isfinite(data).any():
        problems.append(Problem(relative_name(path, root), "has no finite voxels"))
        return None
    return data


def check_group_images(paths: list[Path], mask_path: Path | None, root: Path, problems: list[Problem], *,
                       check_data: bool) -> tuple[tuple[int, int, int], np.ndarray] | None:
    """An analysis package's group maps and mask (SPM, FSL, plain maps): every header
    (type, size, grid), then with ``check_data`` every image's voxel data once; the
    study grid, or None when no header could be read."""
    headers: dict[Path, ImageHeader] = {}
    for path in [*paths, *([mask_path] if mask_path is not None else [])]:
        try:
            headers[path] = read_header(path)
        except ImageError as exc:
            problems.append(Problem(relative_name(path, root), str(exc)))
    grid = check_grids(headers, root, problems)
    if check_data:
        for path in list(headers):
            data = check_image_data(path, headers[path], root, problems)
            if data is not None and path == mask_path and not (data > 0).any():
                problems.append(Problem(relative_name(path, root), "the brain mask has no voxels > 0"))
    return grid


def package_study(root: Path, source: str, contrasts: list[Contrast], group_maps: dict[str, GroupMap],
                  grid: tuple[tuple[int, int, int], np.ndarray], mask_path: Path | None, *, participants: pd.DataFrame | None = None,
                  columns: dict[str, Any] | None = None, notes: list[str] | tuple[str, ...] = (), design_rows: DesignRows | None = None,
                  design: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Study:
    """The :class:`Study` of an analysis package's folder: group maps (no conditions of the
    project's layout), named after the folder, its format in ``SourceFormat``."""
    return Study(
        root=root,
        description={"Name": root.name, "DatasetType": "derivative", "SourceFormat": source, **(extra or {})},
        design=design or {},
        conditions=(),
        contrasts=tuple(contrasts),
        participants=participants if participants is not None else pd.DataFrame(index=pd.Index([], name="participant_id")),
        participant_columns=columns or {},
        group_maps=group_maps,
        image_paths={},
        shape=grid[0],
        affine=np.asarray(grid[1]),
        mask_path=mask_path,
        notes=tuple(notes),
        design_rows=design_rows,
    )


# ----------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------
def load_study(root: str | Path, *, check_data: bool = True, defer_participant_data: bool = False) -> Study:
    """Load and validate a results folder.

    Parameters
    ----------
    root
        The results folder (read-only; nothing is written there).
    check_data
        Also read every image's voxel data once to find truncated/corrupt files,
        infinite values, and participant images with non-finite values inside the
        brain mask (about a second for 22 x 4 images at 2 mm).  Headers (type, size,
        grid) are always checked, before any voxel data is read.
    defer_participant_data
        With ``check_data``: read only the group maps and mask now; participant images
        are checked when first read (:attr:`Study.participant_data` raises
        :class:`StudyError` naming each bad file, with the same messages).  The app
        uses this so that start-up reads each image once.

    Raises
    ------
    StudyError
        With one :class:`Problem` per thing wrong.
    """
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        raise StudyError([Problem(str(root), "not a directory")])

    description = read_json_object(root / "dataset_description.json", root, problems)
    if description is not None:
        _check_description(description, problems)
    design = read_json_object(root / "design.json", root, problems) or {}
    conditions, contrasts = _parse_design(design, problems) if (root / "design.json").exists() and design else ((), ())
    if (root / "design.json").exists() and design == {} and not any(p.file == "design.json" for p in problems):
        problems.append(Problem("design.json", "is empty: it needs Conditions and Contrasts"))

    participants, columns, participants_readable = read_participants(root, problems)

    # -- participant images -------------------------------------------------------
    image_paths: dict[tuple[str, str], Path] = {}
    cond_by_key = {(c.cue, c.session): c.id for c in conditions}
    for path in sorted(root.glob("sub-*/ses-*/func/*_statmap.nii*")):
        m = _PARTICIPANT_IMAGE.match(path.name)
        if not m:
            problems.append(Problem(relative_name(path, root), "file name does not follow sub-<id>_ses-<ses>_task-<task>_contrast-<cue>_stat-effect_statmap.nii.gz"))
            continue
        cond_id = cond_by_key.get((m["cue"], m["ses"]))
        if cond_id is None and not conditions:
            continue  # design.json itself is missing or broken: reported once above
        if cond_id is None:
            problems.append(Problem(relative_name(path, root), f"cue {m['cue']!r} in session {m['ses']!r} is not a condition of design.json"))
            continue
        image_paths[(m["sub"], cond_id)] = path

    if image_paths and participants_readable:
        ids_with_images = {pid for pid, _ in image_paths}
        if participants is None:
            problems.append(Problem("participants.tsv", "missing, but the folder has participant images"))
        else:
            known = set(participants.index)
            for pid in sorted(ids_with_images - known):
                problems.append(Problem(pid, "has images but no row in participants.tsv"))
            for pid in participants.index:
                if pid not in ids_with_images:
                    problems.append(Problem("participants.tsv", f"{pid} has a row but no images"))
                    continue
                for cond in conditions:
                    if (pid, cond.id) not in image_paths:
                        problems.append(Problem(pid, f"missing image for condition {cond.id} ({participant_image_name(pid, cond.session, cond.cue)})"))
    participants_read = participants is not None and participants_readable
    if participants is None:
        participants = pd.DataFrame(index=pd.Index([], name="participant_id"))

    # -- group maps ---------------------------------------------------------------
    group_maps: dict[str, GroupMap] = {}
    group_dir = root / GROUP_DIR
    by_id = {c.id: c for c in contrasts}
    for path in sorted(group_dir.glob("*_statmap.nii*")) if group_dir.is_dir() else []:
        m = _GROUP_MAP.match(path.name)
        if not m:
            problems.append(Problem(relative_name(path, root), "file name does not follow task-<task>_contrast-<id>_stat-t_statmap.nii.gz"))
            continue
        if m["contrast"] not in by_id and not contrasts:
            continue  # design.json itself is missing or broken: reported once above
        if m["contrast"] not in by_id:
            problems.append(Problem(relative_name(path, root), f"contrast {m['contrast']!r} is not defined in design.json"))
            continue
        side = read_json_object(sidecar_path(path), root, problems)
        if side is None:
            continue
        gm = _parse_sidecar(path, by_id[m["contrast"]], side, {c.id for c in conditions}, root, problems)
        if gm is not None:
            group_maps[gm.contrast] = gm
    if not group_maps and not image_paths and conditions and contrasts:
        problems.append(Problem(".", "no group maps (group/*_statmap.nii.gz) and no participant images: nothing to show"))

    # -- headers and grids (no voxel data read yet) ----------------------------------
    mask_path: Path | None = group_dir / MASK_NAME if (group_dir / MASK_NAME).exists() else None
    # group maps first: on a tie the study grid is theirs
    images = [gm.path for gm in group_maps.values()] + list(image_paths.values()) + ([mask_path] if mask_path else [])
    headers: dict[Path, ImageHeader] = {}
    for path in images:
        try:
            header = read_header(path)
        except ImageError as exc:
            problems.append(Problem(relative_name(path, root), str(exc)))
            continue
        if header.unscaled_integers and path != mask_path:
            problems.append(Problem(relative_name(path, root), f"stores {header.dtype.name} values with scl_slope 0, so no scaling is applied "
                                    "(raw integers); rewrite it with its real slope or as float32"))
            continue
        headers[path] = header
    grid = check_grids(headers, root, problems)

    if check_data:
        deferred = set(image_paths.values()) if defer_participant_data else set()
        brain = _check_study_data(mask_path, [gm.path for gm in group_maps.values()], headers, root, problems)
        for path in [p for p in image_paths.values() if p in headers and p not in deferred]:
            try:
                data = read_volume(path, headers[path])
            except ImageError as exc:
                problems.append(Problem(relative_name(path, root), str(exc)))
                continue
            message = participant_image_problem(data, brain)
            if message:
                problems.append(Problem(relative_name(path, root), message))

    tables = _read_tables(root, problems)
    _check_view_defaults(design, conditions, contrasts, participants if participants_read else None, problems)

    if problems:
        raise StudyError(problems)
    assert grid is not None
    return Study(
        root=root,
        description=description or {},
        design=design,
        conditions=conditions,
        contrasts=contrasts,
        participants=participants,
        participant_columns=columns,
        group_maps=group_maps,
        image_paths=image_paths,
        shape=grid[0],
        affine=grid[1],
        mask_path=mask_path,
        tables=tables,
    )


def _check_study_data(mask_path: Path | None, group_paths: list[Path], headers: dict[Path, ImageHeader], root: Path,
                      problems: list[Problem]) -> np.ndarray | None:
    """Read the mask and the group maps once; return the brain mask the study will use
    (as :attr:`Study.mask` builds it), or None when it cannot be built."""
    brain: np.ndarray | None = None
    if mask_path is not None and mask_path in headers:
        data = check_image_data(mask_path, headers[mask_path], root, problems)
        if data is not None:
            brain = data > 0
            if not brain.any():
                problems.append(Problem(relative_name(mask_path, root), "the brain mask has no voxels > 0"))
    derived: np.ndarray | None = None
    for path in [p for p in group_paths if p in headers]:
        data = check_image_data(path, headers[path], root, problems)
        if data is not None:
            inside = np.isfinite(data) & (data != 0)
            derived = inside if derived is None else derived & inside
    return brain if mask_path is not None else derived


def _check_view_defaults(design: dict[str, Any], conditions: tuple[Condition, ...], contrasts: tuple[Contrast, ...],
                         participants: pd.DataFrame | None, problems: list[Problem]) -> None:
    """design.json's optional ``ViewDefaults`` names things the folder has (its columns
    only when participants.tsv could be read: a broken one is reported once, above)."""
    if "ViewDefaults" not in design or not conditions:
        return
    check_view_defaults(design["ViewDefaults"], [c.id for c in contrasts], [c.id for c in conditions], participants, problems, "design.json")


def check_view_defaults(value: Any, contrast_ids: list[str], condition_ids: list[str], participants: pd.DataFrame | None,
                        problems: list[Problem], file: str) -> None:
    """A ``ViewDefaults`` object (design.json's, or a package folder's cue-dashboard.json)
    names the folder's own contrast, condition, numeric covariate and filter columns."""
    if not isinstance(value, dict):
        problems.append(Problem(file, f"ViewDefaults must be an object, not {json_type(value)}"))
        return
    unknown_keys = sorted(set(value) - {"Contrast", "Condition", "Covariate", "QuickFilters"})
    if unknown_keys:
        problems.append(Problem(file, f"ViewDefaults has unknown keys {', '.join(map(shown, unknown_keys))} "
                                      "(known: Contrast, Condition, Covariate, QuickFilters)"))
    known = {"Contrast": contrast_ids, "Condition": condition_ids}
    for key, allowed in known.items():
        if key in value and value[key] not in allowed:
            problems.append(Problem(file, f"ViewDefaults {key} {shown(value[key])} is not one of the folder's: {', '.join(map(str, allowed[:8]))}"))
    if participants is None:
        return
    numeric = [c for c in participants.columns if pd.api.types.is_numeric_dtype(participants[c])]
    if "Covariate" in value and value["Covariate"] not in numeric:
        problems.append(Problem(file, f"ViewDefaults Covariate {shown(value['Covariate'])} is not a numeric participants.tsv column "
                                      f"(numeric: {', '.join(numeric[:6])}{', ...' if len(numeric) > 6 else ''})"))
    filters = value.get("QuickFilters", [])
    if not isinstance(filters, list) or not all(isinstance(c, str) for c in filters):
        problems.append(Problem(file, "ViewDefaults QuickFilters must be a list of participants.tsv column names"))
        return
    unknown = [c for c in filters if c not in participants.columns]
    if unknown:
        problems.append(Problem(file, f"ViewDefaults QuickFilters names columns participants.tsv does not have: {', '.join(map(shown, unknown))}"))


def _check_description(description: dict[str, Any], problems: list[Problem]) -> None:
    rel = "dataset_description.json"
    if "DatasetType" not in description:
        problems.append(Problem(rel, 'no DatasetType (a results folder is a BIDS derivative: "DatasetType": "derivative")'))
    elif description["DatasetType"] != "derivative":
        problems.append(Problem(rel, f'DatasetType must be "derivative", got {shown(description["DatasetType"])}'))
    if "Name" in description and not isinstance(description["Name"], str):
        problems.append(Problem(rel, f"Name must be a string, not {json_type(description['Name'])}"))
    if "Synthetic" in description and not isinstance(description["Synthetic"], bool):
        problems.append(Problem(rel, f"Synthetic must be true or false, not {shown(description['Synthetic'])}"))


def finite_number(value: Any) -> float | None:
    """A JSON number that is finite (not a boolean, string, NaN or Infinity), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if np.isfinite(value) else None


def _parse_weights(value: Any, conditions: set[str] | None, where: str, problems: list[Problem], file: str = "design.json") -> dict[str, float] | None:
    if not isinstance(value, dict) or not value:
        problems.append(Problem(file, f"{where} must be an object of condition: weight, not {json_type(value)}"))
        return None
    weights: dict[str, float] = {}
    for key, w in value.items():
        number = finite_number(w)
        if number is None:
            problems.append(Problem(file, f"{where} weight of {shown(key)} must be a finite number, got {shown(w)}"))
            return None
        weights[str(key)] = number
    unknown = sorted(set(weights) - conditions) if conditions is not None else []
    if unknown:
        problems.append(Problem(file, f"{where} weights unknown conditions {', '.join(map(shown, unknown))}"))
        return None
    if not any(weights.values()):
        problems.append(Problem(file, f"{where} weights are all zero"))
        return None
    return weights


def _parse_design(design: dict[str, Any], problems: list[Problem]) -> tuple[tuple[Condition, ...], tuple[Contrast, ...]]:
    """Conditions and contrasts of design.json, every field checked for type and form
    (ids and BIDS labels are used in file names and as keys; labels are free text)."""
    from dashboard.stats.models import MODELS

    file = "design.json"
    raw_conditions = design.get("Conditions")
    if not isinstance(raw_conditions, list) or not raw_conditions:
        problems.append(Problem(file, f"Conditions must be a non-empty list of objects, not {json_type(raw_conditions) if 'Conditions' in design else 'missing'}"))
        raw_conditions = []
    conditions: list[Condition] = []
    for i, c in enumerate(raw_conditions):
        if not isinstance(c, dict):
            problems.append(Problem(file, f"Conditions[{i}] must be an object with id, cue and session, not {json_type(c)}"))
            continue
        missing = [key for key in ("id", "cue", "session") if not isinstance(c.get(key), str) or not c.get(key)]
        if missing:
            problems.append(Problem(file, f"Conditions[{i}] needs id, cue and session as strings (missing or not a string: {', '.join(missing)})"))
            continue
        values: dict[str, str] = {key: c[key] for key in ("id", "cue", "session")}
        if not CONDITION_ID.match(values["id"]):
            problems.append(Problem(file, f"Conditions[{i}] id {shown(values['id'])} must be letters, digits, '_' or '-' (at most 64)"))
            continue
        bad = [key for key in ("cue", "session") if not BIDS_LABEL.match(values[key])]
        if bad:
            problems.append(Problem(file, f"Conditions[{i}] {bad[0]} {shown(values[bad[0]])} must be a BIDS label (letters and digits only: it is part of file names)"))
            continue
        label = c.get("label", values["id"])
        if not isinstance(label, str):
            problems.append(Problem(file, f"Conditions[{i}] label must be a string, not {json_type(label)}"))
            continue
        conditions.append(Condition(id=values["id"], cue=values["cue"], session=values["session"], label=label))
    ids = [c.id for c in conditions]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(Problem(file, f"condition id {shown(dup)} is defined twice"))
    cells = [(c.cue, c.session) for c in conditions]
    for cue, session in sorted({k for k in cells if cells.count(k) > 1}):
        problems.append(Problem(file, f"cue {cue!r} in session {session!r} is two conditions"))

    # with broken conditions, every contrast would also "weight unknown conditions"
    known: set[str] | None = set(ids) if not any(p.file == file for p in problems) else None
    raw_contrasts = design.get("Contrasts")
    if not isinstance(raw_contrasts, list) or not raw_contrasts:
        problems.append(Problem(file, f"Contrasts must be a non-empty list of objects, not {json_type(raw_contrasts) if 'Contrasts' in design else 'missing'}"))
        raw_contrasts = []
    contrasts: list[Contrast] = []
    for i, c in enumerate(raw_contrasts):
        if not isinstance(c, dict):
            problems.append(Problem(file, f"Contrasts[{i}] must be an object with id and weights, not {json_type(c)}"))
            continue
        cid = c.get("id")
        if not isinstance(cid, str) or not BIDS_LABEL.match(cid):
            problems.append(Problem(file, f"Contrasts[{i}] id {shown(cid)} must be a BIDS label (letters and digits only: it is part of file names)"))
            continue
        label = c.get("label", cid)
        if not isinstance(label, str):
            problems.append(Problem(file, f"Contrasts[{i}] label must be a string, not {json_type(label)}"))
            continue
        weights = _parse_weights(c.get("weights"), known, f"contrast {cid!r}", problems)
        if weights is not None:
            contrasts.append(Contrast(id=cid, label=label, weights=weights))
    cids = [c.id for c in contrasts]
    for dup in sorted({i for i in cids if cids.count(i) > 1}):
        problems.append(Problem(file, f"contrast id {shown(dup)} is defined twice"))
    model = design.get("DefaultModel")
    if model is not None and model not in MODELS:
        problems.append(Problem(file, f"DefaultModel {shown(model)} is not one of {', '.join(MODELS)}"))
    if any(p.file == file for p in problems):
        return (), ()
    return tuple(conditions), tuple(contrasts)


def read_participants(root: Path, problems: list[Problem], path: Path | None = None) -> tuple[pd.DataFrame | None, dict[str, Any], bool]:
    """participants.tsv (+ .json): (table or None, column descriptions, whether the
    file was absent or usable; False when it exists but is broken, which is then
    the one problem reported about it)."""
    path = path or root / "participants.tsv"  # another table (an SPM design's) with its own .json beside it
    tsv, side = relative_name(path, root), path.with_suffix(".json")
    if not path.exists():
        return None, {}, True
    n_before = len(problems)
    df = read_tsv(path, root, problems, dtype=str)
    if df is None:
        return None, {}, False
    if "participant_id" not in df.columns:
        problems.append(Problem(tsv, f"no participant_id column (columns: {', '.join(map(shown, df.columns[:6]))})"))
        return None, {}, False
    pids = df["participant_id"].fillna("")
    refused = [p for p in pids if not PARTICIPANT_ID.match(p)]
    if refused:
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        problems.append(Problem(tsv, f"participant_id must be sub-<letters and digits> (BIDS); refused: {', '.join(map(shown, refused[:3]))}{more}"))
        return None, {}, False
    dup = pids[pids.duplicated()].unique()
    if len(dup):
        problems.append(Problem(tsv, f"duplicate participant_id {', '.join(dup)}"))
        return None, {}, False
    columns = read_json_object(side, root, problems, required=False) or {}
    for col, spec in columns.items():
        if not isinstance(spec, dict):
            problems.append(Problem(relative_name(side, root), f"{shown(col)} must be an object (Description, Units, Levels), not {json_type(spec)}"))
        elif "Levels" in spec and not (isinstance(spec["Levels"], dict) and all(isinstance(v, str) for v in spec["Levels"].values())):
            problems.append(Problem(relative_name(side, root), f"{shown(col)}: Levels must be an object of level: description strings"))
        elif any(k in spec and not isinstance(spec[k], str) for k in ("Description", "Units", "LongName")):
            problems.append(Problem(relative_name(side, root), f"{shown(col)}: Description, LongName and Units must be strings"))
    df = df.set_index("participant_id")
    for col in df.columns:
        spec = columns.get(col, {}) if isinstance(columns.get(col), dict) else {}
        numeric_declared = "Units" in spec and "Levels" not in spec
        converted = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & converted.isna()
        if numeric_declared and bad.any():
            first = df.index[bad][0]
            problems.append(Problem(tsv, f"column {col!r} is numeric (Units {spec['Units']!r}) but {first} has {df.at[first, col]!r}"))
        elif not bad.any() and df[col].notna().any():
            df[col] = converted
    for col in df.select_dtypes("number").columns:
        n_inf = int(np.isinf(df[col]).sum())
        if n_inf:
            problems.append(Problem(tsv, f"column {col!r} has {n_inf} infinite values"))
    return df, columns, len(problems) == n_before


def _parse_sidecar(path: Path, contrast: Contrast, side: dict[str, Any], conditions: set[str], root: Path,
                   problems: list[Problem]) -> GroupMap | None:
    """A group map's JSON sidecar, every field the app uses checked."""
    rel = relative_name(sidecar_path(path), root)
    n_before = len(problems)
    df = side.get("DegreesOfFreedom")
    if df is None:
        problems.append(Problem(rel, "no DegreesOfFreedom (error df of the statistic)"))
        return None
    number = finite_number(df)
    if number is None:
        problems.append(Problem(rel, f"DegreesOfFreedom {shown(df)} is not a finite number"))
        return None
    if number < 1:
        problems.append(Problem(rel, f"DegreesOfFreedom must be at least 1, got {number:g}"))
        return None
    stat = side.get("StatisticType", "")
    if not isinstance(stat, str) or stat.upper() != "T":
        problems.append(Problem(rel, f"StatisticType must be \"T\", got {shown(stat)}"))
        return None
    for key in ("Model", "Description"):
        if key in side and not isinstance(side[key], str):
            problems.append(Problem(rel, f"{key} must be a string, not {json_type(side[key])}"))
    weights: dict[str, float] = {}
    if "ContrastWeights" in side:
        weights = _parse_weights(side["ContrastWeights"], conditions, "ContrastWeights", problems, file=rel) or {}
        if weights and not _proportional(weights, contrast.weights):
            problems.append(Problem(rel, f"ContrastWeights {weights} are not those of contrast {contrast.id!r} in design.json {contrast.weights}"))
    smoothness = side.get("Smoothness")
    if smoothness is not None:
        problem = smoothness_problem(smoothness)
        if problem:
            problems.append(Problem(rel, f"Smoothness: {problem}"))
    if len(problems) > n_before:
        return None
    return GroupMap(
        contrast=contrast.id,
        path=path,
        statistic="T",
        df=number,
        model=side.get("Model"),
        description=str(side.get("Description", "")),
        weights=weights,
        smoothness=smoothness,
    )


def _proportional(a: dict[str, float], b: dict[str, float]) -> bool:
    """The same contrast up to a positive scale (missing conditions weigh 0)."""
    keys = sorted(set(a) | set(b))
    va, vb = np.array([a.get(k, 0.0) for k in keys]), np.array([b.get(k, 0.0) for k in keys])
    scale = np.dot(va, vb) / np.dot(vb, vb)
    return bool(scale > 0 and np.allclose(va, scale * vb, rtol=1e-6, atol=1e-9))


def smoothness_problem(value: Any) -> str | None:
    """What is wrong with a sidecar's Smoothness object (the keys RFT reads), or None."""
    if not isinstance(value, dict):
        return f"must be an object, not {json_type(value)}"
    for key, n in (("FWHMVoxels", 3), ("Resels", 4)):
        v = value.get(key)
        if not isinstance(v, list) or len(v) != n or any(finite_number(x) is None for x in v):
            return f"{key} must be a list of {n} finite numbers, got {shown(v)}"
    if any(x <= 0 for x in value["FWHMVoxels"]):
        return f"FWHMVoxels must be positive, got {value['FWHMVoxels']}"
    if any(x < 0 for x in value["Resels"]) or value["Resels"][0] <= 0:
        return f"Resels must be non-negative with R0 > 0, got {value['Resels']}"
    search = finite_number(value.get("SearchVolumeVoxels"))
    if search is None or search < 1 or search != int(search):
        return f"SearchVolumeVoxels must be a positive whole number, got {shown(value.get('SearchVolumeVoxels'))}"
    return None


def _read_tables(root: Path, problems: list[Problem]) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    tdir = root / TABLES_DIR
    if not tdir.is_dir():
        return tables
    for path in sorted(tdir.glob("*.tsv")):
        df = read_tsv(path, root, problems)
        if df is not None:
            tables[path.stem] = df
    return tables
