"""A plain folder of statistic maps (as downloaded from NeuroVault or written by nilearn).

Every ``*.nii`` / ``*.nii.gz`` at the top of the folder is one group map, except a mask
(``mask.nii[.gz]`` or a name ending in ``_mask``), which becomes the analysis mask.  Each
map's statistic comes from, in this order:

1. a JSON sidecar beside it (``<stem>.json``): ``StatisticType`` ``"T"``, ``"Z"`` or
   ``"F"``, ``DegreesOfFreedom`` (error df of a T; ``[effect, error]`` for an F),
   optional ``Description`` and ``Smoothness`` (as the project's sidecars; RFT
   p-values only with it);
2. its name: BIDS ``stat-t`` / ``stat-z`` / ``stat-F``, SPM ``spmT_*`` / ``spmF_*``,
   FSL ``tstat*`` / ``zstat*`` / ``zfstat*`` (a z map) / ``fstat*``, nilearn-style
   ``*z_map*`` / ``*zmap*`` / ``*z_score*`` / ``*t_map*`` / ``*tmap*``;
3. ``--stat t|z`` (and ``--df N`` for a T) on the command line.

A T or F map needs its df (sidecar or ``--df``); a Z map needs none.  There are no
participants: the group-level views and tables work, participant features say why
they do not.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dashboard.results import (
    Contrast,
    GroupMap,
    Problem,
    Study,
    StudyError,
    check_group_images,
    finite_number,
    package_study,
    read_json_object,
    shown,
    sidecar_path,
    smoothness_problem,
)

if TYPE_CHECKING:
    from dashboard.formats import OpenOptions

_NIFTI = re.compile(r"\.nii(\.gz)?$")
_MASK = re.compile(r"(^|[_-])mask$|^mask$", re.IGNORECASE)
# name rules: (pattern on the lower-cased stem, statistic)
_NAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(^|_)stat-t(_|$)"), "T"),
    (re.compile(r"(^|_)stat-z(_|$)"), "Z"),
    (re.compile(r"(^|_)stat-f(_|$)"), "F"),
    (re.compile(r"^spmt_\d+"), "T"),
    (re.compile(r"^spmf_\d+"), "F"),
    (re.compile(r"^zfstat\d*"), "Z"),
    (re.compile(r"^zstat\d*"), "Z"),
    (re.compile(r"^tstat\d*"), "T"),
    (re.compile(r"^fstat\d*"), "F"),
    (re.compile(r"(^|[_-])z_?(map|score)s?($|[_-])"), "Z"),
    (re.compile(r"(^|[_-])t_?maps?($|[_-])"), "T"),
)


def _stem(path: Path) -> str:
    return _NIFTI.sub("", path.name)


def detect(root: Path) -> bool:
    """A folder with NIfTI maps at its top and no other layout's marker file."""
    return any(_NIFTI.search(p.name) for p in root.iterdir() if not p.name.startswith("."))


def statistic_from_name(name: str) -> str | None:
    """The statistic a file name announces ("T", "Z", "F"), or None."""
    stem = _NIFTI.sub("", name).lower()
    for pattern, stat in _NAME_RULES:
        if pattern.search(stem):
            return stat
    return None


def _contrast_id(stem: str, taken: set[str]) -> str:
    """A BIDS-label id (letters and digits) for a map, unique in the folder."""
    base = re.sub(r"[^A-Za-z0-9]", "", stem) or "map"
    cid, n = base, 2
    while cid in taken:
        cid, n = f"{base}{n}", n + 1
    return cid


def _statistic(path: Path, side: dict[str, Any] | None, options: OpenOptions, rel: str,
               problems: list[Problem]) -> tuple[str, float, float] | None:
    """(statistic, error df, effect df) of one map, or None after recording why not."""
    stat = None
    if side is not None and "StatisticType" in side:
        value = side["StatisticType"]
        stat = value.upper() if isinstance(value, str) and value.upper() in ("T", "Z", "F") else None
        if stat is None:
            problems.append(Problem(rel, f'StatisticType must be "T", "Z" or "F", got {shown(value)}'))
            return None
    stat = stat or statistic_from_name(path.name) or (options.stat.upper() if options.stat else None)
    if stat is None:
        problems.append(Problem(rel, "statistic unknown: add a sidecar with StatisticType, name it *_stat-t_* or *_stat-z_*, "
                                     "or pass --stat t|z (and --df N for a T)"))
        return None
    if stat == "Z":
        return "Z", math.inf, 1.0
    raw = side.get("DegreesOfFreedom") if side is not None else None
    if raw is None and options.df is not None:
        raw = options.df
    if stat == "T":
        df = finite_number(raw)
        if df is None or df < 1:
            why = "no df" if raw is None else f"df {shown(raw)} is not a finite number >= 1"
            problems.append(Problem(rel, f"a T map needs its error df ({why}): add DegreesOfFreedom to a sidecar or pass --df N"))
            return None
        return "T", df, 1.0
    pair = raw if isinstance(raw, list) and len(raw) == 2 else None
    dfs = [finite_number(v) for v in pair] if pair is not None else [None]
    if pair is None or any(v is None or v <= 0 for v in dfs):
        problems.append(Problem(rel, f"an F map needs DegreesOfFreedom [effect df, error df] in its sidecar, got {shown(raw)}"))
        return None
    return "F", float(dfs[1]), float(dfs[0])  # type: ignore[arg-type]


def load(root: Path, options: OpenOptions, *, check_data: bool = True) -> Study:
    """Read a folder of statistic maps; :class:`StudyError` with every problem found."""
    problems: list[Problem] = []
    files = sorted(p for p in root.iterdir() if _NIFTI.search(p.name) and not p.name.startswith("."))
    masks = [p for p in files if _MASK.search(_stem(p))]
    if len(masks) > 1:
        problems.append(Problem(masks[1].name, f"a second mask beside {masks[0].name}: keep one"))
    mask_path = masks[0] if masks else None
    group_maps: dict[str, GroupMap] = {}
    contrasts: list[Contrast] = []
    for path in files:
        if path in masks:
            continue
        side_path = sidecar_path(path)
        side = read_json_object(side_path, root, problems, required=False)
        if side_path.exists() and side is None:
            continue
        found = _statistic(path, side, options, path.name, problems)
        if found is None:
            continue
        stat, df, df_effect = found
        smoothness = side.get("Smoothness") if side else None
        if smoothness is not None:
            problem = smoothness_problem(smoothness)
            if problem:
                problems.append(Problem(side_path.name, f"Smoothness: {problem}"))
                continue
        description = side.get("Description") if side else None
        label = description if isinstance(description, str) and description else _stem(path)
        cid = _contrast_id(_stem(path), set(group_maps))
        group_maps[cid] = GroupMap(contrast=cid, path=path, statistic=stat, df=df, model=None, description=label,
                                   weights={}, smoothness=smoothness, df_effect=df_effect)
        contrasts.append(Contrast(id=cid, label=label, weights={}))
    grid = check_group_images([gm.path for gm in group_maps.values()], mask_path, root, problems, check_data=check_data)
    if not group_maps and not problems:
        problems.append(Problem(str(root), "no statistic maps besides the mask"))
    if problems:
        raise StudyError(problems)
    assert grid is not None
    return package_study(root, "statistic maps", contrasts, group_maps, grid, mask_path)
