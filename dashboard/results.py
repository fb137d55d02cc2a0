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

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

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
        return f"{self.file}: {self.message}"


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
    statistic: str  # "T"
    df: float  # error degrees of freedom
    model: str | None
    description: str
    weights: dict[str, float]
    smoothness: dict[str, Any] | None


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

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    # -- data ---------------------------------------------------------------------
    @cached_property
    def mask(self) -> np.ndarray:
        """Boolean in-brain mask: the mask image if present, else voxels finite and
        non-zero in every group map (SPM writes NaN outside its analysis mask)."""
        if self.mask_path is not None:
            return _read_volume(self.mask_path) > 0
        mask = np.ones(self.shape, dtype=bool)
        for gm in self.group_maps.values():
            data = _read_volume(gm.path)
            mask &= np.isfinite(data) & (data != 0)
        return mask

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
            self._group_cache[contrast_id] = self.masked(_read_volume(gm.path))
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
                    out[i, j] = self.masked(_read_volume(path))
                except Exception as exc:  # noqa: BLE001 - reported, not swallowed
                    problems.append(Problem(_rel(path, self.root), _describe_read_error(exc)))
                    continue
                n_bad = int((~np.isfinite(out[i, j])).sum())
                if n_bad:
                    problems.append(Problem(_rel(path, self.root), f"{n_bad} non-finite values inside the brain mask"))
        if problems:
            raise StudyError(problems)
        return out


# ----------------------------------------------------------------------------------
# reading helpers
# ----------------------------------------------------------------------------------
def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_nifti(path: Path | str, *, mmap: bool = True) -> nib.Nifti1Image:
    """``nib.load`` for the NIfTI files of a results folder (and the atlases).

    ``nib.load`` is typed as returning any image format; this says which one (a
    NIfTI-2 image is a :class:`nibabel.Nifti1Image` too) and refuses the others.
    """
    img = nib.load(str(path), mmap=mmap)
    if not isinstance(img, nib.Nifti1Image):
        raise TypeError(f"{path}: not a NIfTI image ({type(img).__name__})")
    return img


def _read_volume(path: Path) -> np.ndarray:
    """Read a 3D image (a 4D one with a single volume is squeezed) as float32."""
    img = load_nifti(path)
    data = np.asarray(img.dataobj, dtype=np.float32)  # applies scl_slope/scl_inter
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    return data


def _describe_read_error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, EOFError) or "end-of-stream" in text or "truncated" in text.lower():
        return f"truncated or corrupt image data ({text})"
    return f"cannot read image data ({type(exc).__name__}: {text})"


def _read_json(path: Path, root: Path, problems: list[Problem], required: bool = True) -> dict[str, Any] | None:
    if not path.exists():
        if required:
            problems.append(Problem(_rel(path, root), "missing"))
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(Problem(_rel(path, root), f"not valid JSON ({exc})"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(_rel(path, root), "must hold a JSON object"))
        return None
    return value


@dataclass
class _Header:
    shape: tuple[int, ...]
    affine: np.ndarray


def _read_header(path: Path, root: Path, problems: list[Problem]) -> _Header | None:
    """Header of an image, or None after recording why it cannot be used."""
    try:
        img = load_nifti(path)
    except Exception as exc:  # noqa: BLE001
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(Problem(_rel(path, root), f"not a readable NIfTI image ({text})"))
        return None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        problems.append(Problem(_rel(path, root), f"expected a 3D image, got shape {shape}"))
        return None
    return _Header(shape, np.asarray(img.affine, dtype=float))


def _check_data(path: Path, root: Path, problems: list[Problem]) -> None:
    """Read the voxel data once: catches truncated/corrupt files and infinities.

    NaN is allowed (SPM writes NaN outside its analysis mask); +-Inf is not.
    """
    try:
        data = _read_volume(path)
    except Exception as exc:  # noqa: BLE001
        problems.append(Problem(_rel(path, root), _describe_read_error(exc)))
        return
    n_inf = int(np.isinf(data).sum())
    if n_inf:
        problems.append(Problem(_rel(path, root), f"contains {n_inf} infinite values (NaN marks outside-mask; Inf is an error)"))
    if not np.isfinite(data).any():
        problems.append(Problem(_rel(path, root), "has no finite voxels"))


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
        Also read every image's voxel data once to find truncated/corrupt files and
        infinite values (about a second for 22 x 4 images at 2 mm).  Headers (shape,
        grid) are always checked.
    defer_participant_data
        With ``check_data``: read only the group maps and mask now; participant images
        are checked when first read (:attr:`Study.participant_data` raises
        :class:`StudyError` naming each bad file).  The app uses this so that start-up
        reads each image once.

    Raises
    ------
    StudyError
        With one :class:`Problem` per thing wrong.
    """
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        raise StudyError([Problem(str(root), "not a directory")])

    description = _read_json(root / "dataset_description.json", root, problems) or {}
    if description and description.get("DatasetType") != "derivative":
        problems.append(Problem("dataset_description.json", 'DatasetType must be "derivative"'))
    design = _read_json(root / "design.json", root, problems) or {}
    conditions, contrasts = _parse_design(design, problems)

    participants, columns = _read_participants(root, problems)

    # -- participant images -------------------------------------------------------
    image_paths: dict[tuple[str, str], Path] = {}
    cond_by_key = {(c.cue, c.session): c.id for c in conditions}
    for path in sorted(root.glob("sub-*/ses-*/func/*_statmap.nii*")):
        m = _PARTICIPANT_IMAGE.match(path.name)
        if not m:
            problems.append(Problem(_rel(path, root), "file name does not follow sub-<id>_ses-<ses>_task-<task>_contrast-<cue>_stat-effect_statmap.nii.gz"))
            continue
        cond_id = cond_by_key.get((m["cue"], m["ses"]))
        if cond_id is None and not conditions:
            continue  # design.json itself is missing or broken: reported once above
        if cond_id is None:
            problems.append(Problem(_rel(path, root), f"cue {m['cue']!r} in session {m['ses']!r} is not a condition of design.json"))
            continue
        image_paths[(m["sub"], cond_id)] = path

    if image_paths:
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
    if participants is None:
        participants = pd.DataFrame(index=pd.Index([], name="participant_id"))

    # -- group maps ---------------------------------------------------------------
    group_maps: dict[str, GroupMap] = {}
    group_dir = root / GROUP_DIR
    contrast_ids = {c.id for c in contrasts}
    for path in sorted(group_dir.glob("*_statmap.nii*")) if group_dir.is_dir() else []:
        m = _GROUP_MAP.match(path.name)
        if not m:
            problems.append(Problem(_rel(path, root), "file name does not follow task-<task>_contrast-<id>_stat-t_statmap.nii.gz"))
            continue
        if m["contrast"] not in contrast_ids and not contrasts:
            continue  # design.json itself is missing or broken: reported once above
        if m["contrast"] not in contrast_ids:
            problems.append(Problem(_rel(path, root), f"contrast {m['contrast']!r} is not defined in design.json"))
            continue
        side = _read_json(sidecar_path(path), root, problems)
        if side is None:
            continue
        gm = _parse_sidecar(path, m["contrast"], side, root, problems)
        if gm is not None:
            group_maps[gm.contrast] = gm
    if not group_maps and not image_paths and conditions:
        problems.append(Problem(".", "no group maps (group/*_statmap.nii.gz) and no participant images: nothing to show"))

    # -- grids ----------------------------------------------------------------------
    mask_path: Path | None = group_dir / MASK_NAME if (group_dir / MASK_NAME).exists() else None
    images = ([mask_path] if mask_path else []) + [gm.path for gm in group_maps.values()] + list(image_paths.values())
    reference: tuple[Path, _Header] | None = None
    bad: set[Path] = set()
    for path in images:
        header = _read_header(path, root, problems)
        if header is None:
            bad.add(path)
            continue
        if reference is None:
            reference = (path, header)
            continue
        ref_path, ref = reference
        if header.shape != ref.shape:
            problems.append(Problem(_rel(path, root), f"grid {header.shape} differs from {_rel(ref_path, root)} {ref.shape}"))
            bad.add(path)
        elif not np.allclose(header.affine, ref.affine, atol=AFFINE_TOLERANCE):
            problems.append(Problem(_rel(path, root), f"affine differs from {_rel(ref_path, root)} (images must share one grid)"))
            bad.add(path)
    if check_data:
        deferred = set(image_paths.values()) if defer_participant_data else set()
        for path in images:
            if path not in bad and path not in deferred:
                _check_data(path, root, problems)

    tables = _read_tables(root, problems)

    if problems:
        raise StudyError(problems)
    assert reference is not None
    return Study(
        root=root,
        description=description,
        design=design,
        conditions=conditions,
        contrasts=contrasts,
        participants=participants,
        participant_columns=columns,
        group_maps=group_maps,
        image_paths=image_paths,
        shape=reference[1].shape,  # type: ignore[arg-type]
        affine=reference[1].affine,
        mask_path=mask_path,
        tables=tables,
    )


def _parse_design(design: dict[str, Any], problems: list[Problem]) -> tuple[tuple[Condition, ...], tuple[Contrast, ...]]:
    if not design:
        return (), ()
    conditions: list[Condition] = []
    for i, c in enumerate(design.get("Conditions", [])):
        try:
            conditions.append(Condition(id=str(c["id"]), cue=str(c["cue"]), session=str(c["session"]), label=str(c.get("label", c["id"]))))
        except (KeyError, TypeError):
            problems.append(Problem("design.json", f"Conditions[{i}] needs id, cue and session"))
    if not conditions:
        problems.append(Problem("design.json", "no Conditions"))
    ids = {c.id for c in conditions}
    contrasts: list[Contrast] = []
    for i, c in enumerate(design.get("Contrasts", [])):
        try:
            weights = {str(k): float(v) for k, v in dict(c["weights"]).items()}
            contrast = Contrast(id=str(c["id"]), label=str(c.get("label", c["id"])), weights=weights)
        except (KeyError, TypeError, ValueError):
            problems.append(Problem("design.json", f"Contrasts[{i}] needs id and numeric weights"))
            continue
        unknown = set(weights) - ids
        if unknown:
            problems.append(Problem("design.json", f"contrast {contrast.id!r} weights unknown conditions {sorted(unknown)}"))
            continue
        contrasts.append(contrast)
    return tuple(conditions), tuple(contrasts)


def _read_participants(root: Path, problems: list[Problem]) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    path = root / "participants.tsv"
    if not path.exists():
        return None, {}
    try:
        df = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype=str)
    except Exception as exc:  # noqa: BLE001
        problems.append(Problem("participants.tsv", f"cannot be read as a tab-separated table ({exc})"))
        return None, {}
    if "participant_id" not in df.columns:
        problems.append(Problem("participants.tsv", f"no participant_id column (columns: {', '.join(df.columns[:6])})"))
        return None, {}
    dup = df["participant_id"][df["participant_id"].duplicated()].unique()
    if len(dup):
        problems.append(Problem("participants.tsv", f"duplicate participant_id {', '.join(dup)}"))
        return None, {}
    columns = _read_json(root / "participants.json", root, problems, required=False) or {}
    df = df.set_index("participant_id")
    for col in df.columns:
        spec = columns.get(col, {}) if isinstance(columns.get(col), dict) else {}
        numeric_declared = "Units" in spec and "Levels" not in spec
        converted = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & converted.isna()
        if numeric_declared and bad.any():
            first = df.index[bad][0]
            problems.append(Problem("participants.tsv", f"column {col!r} is numeric (Units {spec['Units']!r}) but {first} has {df.at[first, col]!r}"))
        elif not bad.any() and df[col].notna().any():
            df[col] = converted
    return df, columns


def _parse_sidecar(path: Path, contrast: str, side: dict[str, Any], root: Path, problems: list[Problem]) -> GroupMap | None:
    rel = _rel(sidecar_path(path), root)
    df = side.get("DegreesOfFreedom")
    if df is None:
        problems.append(Problem(rel, "no DegreesOfFreedom (error df of the statistic)"))
        return None
    try:
        df = float(df)
    except (TypeError, ValueError):
        problems.append(Problem(rel, f"DegreesOfFreedom {df!r} is not a number"))
        return None
    if not df > 0:
        problems.append(Problem(rel, f"DegreesOfFreedom must be positive, got {df}"))
        return None
    stat = str(side.get("StatisticType", ""))
    if stat.upper() != "T":
        problems.append(Problem(rel, f"StatisticType must be \"T\", got {stat!r}"))
        return None
    return GroupMap(
        contrast=contrast,
        path=path,
        statistic="T",
        df=df,
        model=side.get("Model"),
        description=str(side.get("Description", "")),
        weights={str(k): float(v) for k, v in dict(side.get("ContrastWeights", {})).items()},
        smoothness=side.get("Smoothness"),
    )


def _read_tables(root: Path, problems: list[Problem]) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    tdir = root / TABLES_DIR
    if not tdir.is_dir():
        return tables
    for path in sorted(tdir.glob("*.tsv")):
        try:
            tables[path.stem] = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
        except Exception as exc:  # noqa: BLE001
            problems.append(Problem(_rel(path, root), f"cannot be read as a tab-separated table ({exc})"))
    return tables
