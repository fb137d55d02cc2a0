"""Claim check: a published peak table held against the maps.

For every row of a peak table (MNI x, y, z and any of T, Z, k, p, region, contrast;
columns recognised by name, :func:`recognise_columns`), at one threshold:

- is the coordinate inside a listed (suprathreshold, k-surviving) cluster of that
  contrast and direction? the cluster's size against the reported k;
- the nearest listed peak (distance in mm, its T and Z), and the map's value at the
  coordinate against the reported T;
- the atlas label at the coordinate against the reported region (shared words);
- whether the reported T and Z agree with each other at the map's df (statcheck-style:
  the Z that the reported T implies, with T's rounding interval, must contain the
  reported Z's rounding interval), and the df they imply.

One verdict per row: ``inconsistent`` (T and Z disagree at the df), ``match`` (a listed
peak within :data:`MATCH_MM` and the coordinate in a cluster), ``near`` (in a cluster, or
a listed peak within :data:`NEAR_MM`), ``not found``; with the reason in words.

Speed: a check computes each contrast's cluster table once and only for the directions
its rows ask for, and keeps what it needs of it (peak rows, the clusters' voxels as flat
indices: a few kB) per Analysis (:data:`CACHED_CLUSTERS`, :func:`clear_cache`), so a
second check at the same settings does not find clusters again; rows are checked with
numpy and scipy's special functions rather than per-row pandas and scipy.stats objects.
The rows are the same, to the bit, as those of the per-row code before (see
``scripts/bench_reviewer.py``).
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from dashboard.results import Study

MATCH_MM = 4.0  # within two voxels of a 2 mm grid (a diagonal neighbour is 3.5 mm)
NEAR_MM = 12.0
VERDICTS = ("match", "near", "not found", "inconsistent")

# column -> names it is recognised by (lower case, spaces/underscores/dashes removed)
_NAMES = {
    "x": ("x", "mnix", "xmm", "coordx"), "y": ("y", "mniy", "ymm", "coordy"), "z": ("z", "mniz", "zmm", "coordz"),
    "t": ("t", "peakt", "tvalue", "tstat", "tscore"), "zscore": ("zscore", "peakz", "zvalue", "zstat", "z_score", "equivz"),
    "k": ("k", "ke", "clustersize", "size", "voxels", "nvoxels", "extent"),
    "p": ("p", "pvalue", "pfwe", "pfwewholebrain", "punc", "pfwecorr"),
    "region": ("region", "label", "area", "anatomy", "structure", "location"),
    "contrast": ("contrast", "con", "effect", "comparison"),
    # last: a column named like this never takes a field above
    "source": ("source", "study", "author", "authors", "firstauthor", "reference", "ref", "paper", "citation", "publication"),
}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.()]+", "", str(name).lower())


#: The fields of a peak table, with the words a column-mapping form shows for them.
FIELDS: dict[str, str] = {
    "x": "MNI x (mm)", "y": "MNI y (mm)", "z": "MNI z (mm)", "t": "T", "zscore": "Z", "k": "cluster size k (voxels)", "p": "p",
    "region": "region", "contrast": "contrast", "source": "source (study)",
}


def _recognise(columns: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = dict(mapping or {})
    used = set(out.values())
    # exact names first: a table with both "z" and "Z" has the coordinate and the Z score
    exact = {"x": ("x", "X"), "y": ("y", "Y"), "z": ("z",), "zscore": ("Z",)}
    for field, names in exact.items():
        hit = next((c for c in columns if c in names and c not in used), None)
        if field not in out and hit is not None:
            out[field] = hit
            used.add(hit)
    for field, names in _NAMES.items():
        if field in out:
            continue
        keys = {_key(n) for n in names}
        hit = next((c for c in columns if _key(c) in keys and c not in used), None)
        if hit is not None:
            out[field] = hit
            used.add(hit)
    return out


def recognise_columns(columns: list[str], mapping: dict[str, str] | None = None) -> dict[str, str]:
    """Which table column holds each field (x, y, z, t, zscore, k, p, region, contrast,
    source: the study a peak of another study comes from).
    ``mapping`` (field -> column) overrides; a coordinate column that cannot be found is
    a ValueError saying which and what was looked for."""
    out = _recognise(columns, mapping)
    missing = [f for f in ("x", "y", "z") if f not in out]
    if missing:
        raise ValueError(f"no column for MNI {', '.join(missing)} (columns: {', '.join(map(str, columns))}); name them x, y, z or map them")
    return out


def column_guess(columns: list[str], mapping: dict[str, str] | None = None) -> dict[str, str | None]:
    """Every field of :data:`FIELDS` -> the column recognised for it (as
    :func:`recognise_columns`, ``mapping`` first), or None; never raises (what a
    column-mapping form starts from)."""
    cols = [str(c) for c in columns]
    known = {f: c for f, c in (mapping or {}).items() if f in FIELDS and c in cols}
    found = _recognise(cols, known)
    return {field: found.get(field) for field in FIELDS}


def z_from_t(t: float, df: float) -> float:
    """The Z with the same upper tail as T at df (exact tails): ``norm.isf(t.sf(t, df))``,
    through the ufuncs scipy.stats calls for them (``-ndtri(stdtr(df, -t))``, the same
    numbers, NaN for df <= 0 as there) without the distribution objects' checks, which
    cost 50 times the computation (implied_df calls this some 30 times per row)."""
    return float(-special.ndtri(special.stdtr(df, -t)))


def implied_df(t: float, z: float) -> float | None:
    """The df at which T and Z have the same tail (None if no finite df gives it:
    |Z| must be below |T|, since the t tail is the heavier one)."""
    if not (math.isfinite(t) and math.isfinite(z)) or t <= 0 or z <= 0 or z >= t:
        return None
    def f(v: float) -> float:  # increasing in v
        return z_from_t(t, v) - z

    lo, hi = 0.5, 1e7
    if f(lo) > 0 or f(hi) < 0:
        return None
    return float(optimize.brentq(f, lo, hi, xtol=1e-6))


def tz_consistent(t: float, z: float, df: float, decimals: int = 2) -> bool:
    """Statcheck-style: T reported to ``decimals`` implies Z in [z(T - h), z(T + h)]
    (h = half a unit of the last digit); consistent when that interval meets the
    reported Z's own rounding interval."""
    h = 0.5 * 10.0 ** (-decimals)
    lo, hi = z_from_t(max(t - h, 0.0), df), z_from_t(t + h, df)
    return lo - h <= z <= hi + h


@dataclass(frozen=True)
class ClaimRow:
    """The check of one table row."""

    verdict: str
    reason: str
    in_cluster: bool
    cluster_k: int | None
    nearest_peak_mm: float | None
    nearest_peak: tuple[float, float, float] | None
    nearest_peak_t: float | None
    nearest_peak_z: float | None
    map_value: float | None
    atlas_label: str
    implied_df: float | None


def _words(text: str) -> set[str]:
    stop = {"gyrus", "left", "right", "l", "r", "and", "of", "the", "cortex", "lobe", "area", "inf", "sup", "mid"}
    return {w for w in re.findall(r"[a-z]+", str(text).lower()) if w not in stop and len(w) > 2}


@dataclass(frozen=True)
class _Listed:
    """The listed peaks of one contrast and direction, as arrays (cluster-table order)."""

    xyz: np.ndarray  # (n, 3) mm
    t: np.ndarray
    z: np.ndarray
    k: np.ndarray
    label: np.ndarray  # the cluster label (of the labels volume) at each peak

    @classmethod
    def of(cls, peaks: pd.DataFrame) -> _Listed:
        return cls(peaks[["x", "y", "z"]].to_numpy(float), peaks["peak_t"].to_numpy(float), peaks["z_score"].to_numpy(float),
                   peaks["k"].to_numpy(), peaks["_label"].to_numpy())


def _voxel(xyz: np.ndarray, affine: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """The nearest voxel of an mm coordinate and whether it lies in the image."""
    ijk = np.rint(np.linalg.solve(affine, [*xyz, 1.0])[:3]).astype(int)
    return tuple(int(i) for i in ijk), all(0 <= i < s for i, s in zip(ijk, shape, strict=True))


def check_row(row: dict[str, Any], *, volume: np.ndarray, labels: np.ndarray, affine: np.ndarray, peaks: pd.DataFrame,
              df: float, atlas_label: str, stat: str = "T") -> ClaimRow:
    """Check one row (``row``: field -> value, from :func:`recognise_columns`) against a
    map (``volume``, NaN outside the mask), its listed clusters (``labels``, 0 outside) and
    listed peaks (``peaks``: x, y, z, peak_t, z_score, cluster k, label)."""
    xyz = np.array([float(row["x"]), float(row["y"]), float(row["z"])])
    ijk, inside = _voxel(xyz, affine, volume.shape)
    value = float(volume[ijk]) if inside else math.nan
    label = int(labels[ijk]) if inside else 0
    return _check(row, xyz, inside=inside, value=value, label=label, listed=_Listed.of(peaks), df=df, atlas_label=atlas_label, stat=stat)


def _check(row: dict[str, Any], xyz: np.ndarray, *, inside: bool, value: float, label: int, listed: _Listed, df: float,
           atlas_label: str, stat: str) -> ClaimRow:
    """:func:`check_row` once the map's value and the cluster label at the coordinate's
    voxel are known."""
    reasons: list[str] = []
    cluster_k = None
    if label:
        in_this = np.flatnonzero(listed.label == label)
        cluster_k = int(listed.k[in_this[0]]) if in_this.size else None
    nearest: tuple[float, int] | None = None
    if len(listed.xyz):
        d = np.sqrt(((listed.xyz - xyz) ** 2).sum(axis=1))
        i = int(np.argmin(d))
        nearest = (float(d[i]), i)
    t_rep = number_or_none(row.get("t"))
    z_rep = number_or_none(row.get("zscore"))
    k_rep = number_or_none(row.get("k"))
    dfi = implied_df(t_rep, z_rep) if t_rep is not None and z_rep is not None else None
    consistent = True
    if stat == "T" and t_rep is not None and z_rep is not None and math.isfinite(df):
        consistent = tz_consistent(t_rep, z_rep, df)
        if not consistent:
            implied = z_from_t(t_rep, df)
            reasons.append(f"T {t_rep:g} and Z {z_rep:g} disagree at df {df:g} (T {t_rep:g} gives Z {implied:.2f}"
                           + (f"; the pair implies df {dfi:.0f}" if dfi is not None else "; no df gives this pair") + ")")
    if not inside or not math.isfinite(value):
        reasons.append("the coordinate is outside the analysis mask" if inside else "the coordinate is outside the image")
    else:
        reasons.append(f"map {stat} {value:.2f}" + (f" (reported {t_rep:g})" if t_rep is not None and stat == "T" else "") + " at the coordinate")
    if label:
        reasons.append(f"inside a listed cluster of {cluster_k} voxels" + (f" (reported k {k_rep:g})" if k_rep is not None else ""))
    else:
        reasons.append("not inside a listed cluster at this threshold")
    best: int | None = None
    if nearest is not None:
        dist, best = nearest
        px, py, pz = listed.xyz[best]
        reasons.append(f"nearest listed peak {dist:.1f} mm away at ({px:g}, {py:g}, {pz:g}), "
                       f"{stat} {listed.t[best]:.2f}, Z {listed.z[best]:.2f}")
    region = str(row.get("region") or "")
    if region and atlas_label:
        shared = _words(region) & _words(atlas_label)
        reasons.append(f"atlas label {atlas_label}" + (" agrees with" if shared else " differs from") + f" reported {region!r}")
    if not consistent:
        verdict = "inconsistent"
    elif label and nearest is not None and nearest[0] <= MATCH_MM:
        verdict = "match"
    elif label or (nearest is not None and nearest[0] <= NEAR_MM):
        verdict = "near"
    else:
        verdict = "not found"
    return ClaimRow(
        verdict=verdict, reason="; ".join(reasons), in_cluster=bool(label), cluster_k=cluster_k,
        nearest_peak_mm=nearest[0] if nearest is not None else None,
        nearest_peak=(float(listed.xyz[best, 0]), float(listed.xyz[best, 1]), float(listed.xyz[best, 2])) if best is not None else None,
        nearest_peak_t=float(listed.t[best]) if best is not None else None,
        nearest_peak_z=float(listed.z[best]) if best is not None and math.isfinite(listed.z[best]) else None,
        map_value=value if math.isfinite(value) else None, atlas_label=atlas_label, implied_df=dfi,
    )


def number_or_none(value: Any) -> float | None:
    """A cell as a finite float, None for anything else (text, empty, NaN, infinite)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def summary(rows: list[ClaimRow]) -> str:
    """One line: how many rows were reproduced, near, not found, inconsistent."""
    n = len(rows)
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    return (f"{counts['match']} of {n} peaks reproduced within {MATCH_MM:g} mm inside a listed cluster; "
            f"{counts['near']} near, {counts['not found']} not found, {counts['inconsistent']} with T and Z inconsistent")


def contrast_of(text: str, study: Study) -> str:
    """The study contrast a table's contrast cell names: its id, number or label, else the
    one contrast id that is a word of it (``placebo_cocaine_gt_neutral`` -> ``placebo``)."""
    try:
        return study.resolve_contrast(str(text))
    except KeyError:
        pass
    words = re.split(r"[^A-Za-z0-9]+", str(text))
    hits: list[str] = [c.id for c in study.contrasts if c.id in words]
    if len(hits) == 1:
        return hits[0]
    if hits and words and words[0] in hits:
        return words[0]
    raise ValueError(f"contrast {text!r} is none of the folder's ({', '.join(c.id for c in study.contrasts)}): give --contrast")


def direction_of(text: str, study: Study, contrast: str) -> str:
    """``neg`` when a table's contrast cell says "B gt A" (or "B > A") of a contrast whose
    positive side is A (words matched against the weighted conditions' cues, sessions and
    labels), else ``pos``."""
    m = re.search(r"([A-Za-z0-9]+)[\s_]*(?:gt|>|vs\.?|versus)[\s_]*([A-Za-z0-9]+)", str(text), re.IGNORECASE)
    if not m or not study.conditions:
        return "pos"
    a, b = m[1].lower(), m[2].lower()
    weights = study.contrast(contrast).weights
    names = {c.id: {c.cue.lower(), c.session.lower(), *re.findall(r"[a-z0-9]+", c.label.lower())} for c in study.conditions}
    plus = set().union(*(names[c] for c, w in weights.items() if w > 0 and c in names))
    minus = set().union(*(names[c] for c, w in weights.items() if w < 0 and c in names))
    if a in minus - plus and b in plus - minus:
        return "neg"
    return "pos"


def peak_tables(study: Study) -> list[str]:
    """The folder's tables that hold MNI coordinates (what a claim check can take), those
    whose every row names one of the study's contrasts first (its own published tables)."""
    own, other = [], []
    for name, table in study.tables.items():
        try:
            cols = recognise_columns(list(table.columns))
        except ValueError:
            continue
        try:
            if "contrast" not in cols:
                raise ValueError("no contrast column")
            for text in table[cols["contrast"]]:
                contrast_of(str(text), study)
            own.append(name)
        except ValueError:
            other.append(name)
    return own + other


def check_table(analysis: Any, table: pd.DataFrame, *, contrast: str | None = None, direction: str | None = None,
                threshold: Any = None, extent: int = 10, mapping: dict[str, str] | None = None, model: str = "cells",
                participants: tuple[str, ...] | None = None, fallback_contrast: str | None = None) -> tuple[pd.DataFrame, str]:
    """Check every row of a peak table (input order kept) against the study's maps: the
    rows with ``verdict``, ``reason`` and what was measured, and the summary line.

    Each contrast's map is read once per call, each (contrast, direction)'s listed
    clusters once per Analysis and settings (see :func:`_listed_clusters`)."""
    from dashboard import atlas
    from dashboard.analysis import Threshold

    threshold = threshold or Threshold()
    cols = recognise_columns(list(table.columns), mapping)
    study = analysis.study
    maps: dict[str, np.ndarray] = {}
    listed: dict[tuple[str, str], _Clusters] = {}
    out_rows: list[dict[str, Any]] = []
    checks: list[ClaimRow] = []
    for _, raw in table.iterrows():
        fields = {f: raw[c] for f, c in cols.items()}
        try:
            cid = contrast or contrast_of(str(fields.get("contrast", "")), study)
        except ValueError:
            if fallback_contrast is None:
                raise
            cid = fallback_contrast  # e.g. literature peaks of other studies: held against the contrast in view
        sign = direction or direction_of(str(fields.get("contrast", "")), study, cid)
        if cid not in maps:
            maps[cid] = analysis.t_volume(cid, model, participants)[0]
        if (cid, sign) not in listed:
            listed[cid, sign] = _listed_clusters(analysis, cid, sign, threshold=threshold, extent=extent, model=model,
                                                 participants=participants)
        found = listed[cid, sign]
        xyz = np.array([float(fields["x"]), float(fields["y"]), float(fields["z"])])
        ijk, inside = _voxel(xyz, study.affine, study.shape)
        value = float(maps[cid][ijk]) if inside else math.nan
        if sign != "pos":
            value = -value  # the map of the negative direction is -T
        check = _check(fields, xyz, inside=inside, value=value, label=found.label_at(ijk) if inside else 0, listed=found.peaks,
                       df=found.df, atlas_label=atlas.label_coordinate((float(xyz[0]), float(xyz[1]), float(xyz[2])), "aal"),
                       stat=found.stat)
        checks.append(check)
        out_rows.append({**{str(k): v for k, v in raw.items()}, "checked_contrast": cid, "checked_direction": sign,
                         "verdict": check.verdict, "reason": check.reason, "in_cluster": check.in_cluster, "cluster_k": check.cluster_k,
                         "nearest_peak_mm": check.nearest_peak_mm, "map_value": check.map_value, "atlas_label": check.atlas_label,
                         "implied_df": check.implied_df})
    return pd.DataFrame(out_rows), summary(checks)


@dataclass(frozen=True)
class _Clusters:
    """What the checks need of one contrast's listed clusters in one direction: the
    direction's peak rows, and the clusters' voxels as sorted flat indices with their
    labels (a few kB, where the cluster table holds a label volume of the whole grid)."""

    df: float
    stat: str  # the map's statistic (T, F or Z)
    n_clusters: int  # listed clusters (labels 1..n), what Analysis.clusters offsets the next direction's ids by
    shape: tuple[int, int, int]
    table: pd.DataFrame  # the direction's rows of the cluster table (two-sided order) with `_label`
    peaks: _Listed
    voxels: np.ndarray  # flat (C order) indices of the listed clusters' voxels, ascending
    voxel_labels: np.ndarray  # the cluster label of each

    def label_at(self, ijk: tuple[int, ...]) -> int:
        """The cluster label at an in-image voxel (0: in no listed cluster)."""
        flat = int(np.ravel_multi_index(ijk, self.shape))
        at = int(np.searchsorted(self.voxels, flat))
        return int(self.voxel_labels[at]) if at < self.voxels.size and self.voxels[at] == flat else 0


#: Cluster records kept per Analysis (a claim check of a 21-row table needs five), each
#: keyed by contrast, direction, threshold, extent, model and participant subset.
CACHED_CLUSTERS = 24
_CACHE: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[Any, ...], _Clusters]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def clear_cache(analysis: Any = None) -> None:
    """Forget the cluster records of one Analysis (all when None)."""
    with _CACHE_LOCK:
        if analysis is None:
            _CACHE.clear()
        else:
            _CACHE.pop(analysis, None)


def _listed_clusters(analysis: Any, contrast: str, direction: str, *, threshold: Any, extent: int, model: str,
                     participants: tuple[str, ...] | None) -> _Clusters:
    """The listed clusters of one contrast and direction (cached per Analysis).

    The table is computed for that direction alone (an F contrast: its one positive
    side; a negative direction of it lists nothing), with its peaks in the order of the
    two-sided table (clusters by their highest peak T, then cluster, then peak T), so the
    nearest of two equally near peaks is the same one either way."""
    study = analysis.study
    key = (contrast, direction, threshold, int(extent), model, analysis.subset(participants))
    with _CACHE_LOCK:
        hit = _CACHE.get(analysis, OrderedDict()).get(key)
        if hit is not None:
            _CACHE[analysis].move_to_end(key)
            return hit
    is_f = study.group_maps[contrast].statistic == "F"
    ct = analysis.clusters(contrast, directions=("pos",) if is_f else (direction,), threshold=threshold, extent=extent,
                           label_atlas=None, with_rft=False, model=model, participants=participants)
    labels = ct.labels.get(direction, np.zeros(study.shape, np.int32))
    peaks = ct.table[ct.table["direction"] == direction]
    if not is_f and len(peaks):  # as Analysis.clusters orders a two-sided table (np.lexsort, as pandas' sort_values)
        tops = peaks.groupby("cluster_id")["peak_t"].transform("max").to_numpy(float)
        t = peaks["peak_t"].to_numpy(float)
        peaks = peaks.iloc[np.lexsort((-t, peaks["cluster_id"].to_numpy(), -tops))]
    peaks = peaks.copy()
    ijk = np.rint(np.linalg.solve(study.affine, np.c_[peaks[["x", "y", "z"]].to_numpy(float), np.ones(len(peaks))].T)[:3]).astype(int)
    peaks["_label"] = labels[tuple(ijk)] if len(peaks) else []
    voxels = np.flatnonzero(labels)
    record = _Clusters(df=float(ct.df), stat=ct.statistic.stat if ct.statistic is not None else "T", n_clusters=int(labels.max(initial=0)),
                       shape=tuple(int(n) for n in labels.shape), table=peaks, peaks=_Listed.of(peaks),  # type: ignore[arg-type]
                       voxels=voxels, voxel_labels=labels.ravel()[voxels])
    with _CACHE_LOCK:
        kept = _CACHE.setdefault(analysis, OrderedDict())
        kept[key] = record
        while len(kept) > CACHED_CLUSTERS:
            kept.popitem(last=False)
    return record


# -- peaks of other studies: distance to the clusters --------------------------------

DISTANCE_COLUMNS = ["source", "region", "x", "y", "z", "reported_t", "reported_z", "voxel_x", "voxel_y", "voxel_z", "map_value",
                    "in_cluster", "nearest_cluster_mm", "nearest_cluster_id", "nearest_cluster_direction", "nearest_cluster_k",
                    "nearest_cluster_x", "nearest_cluster_y", "nearest_cluster_z"]


def peak_distances(analysis: Any, table: pd.DataFrame, *, contrast: str, directions: tuple[str, ...] = ("pos", "neg"),
                   threshold: Any = None, extent: int = 10, model: str = "cells", participants: tuple[str, ...] | None = None,
                   mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Each peak of a table (e.g. other studies' peaks) against the listed clusters of one
    contrast in the given direction(s), one output row per input row in input order
    (:data:`DISTANCE_COLUMNS`):

    - ``source``, ``region`` (text, "" without such a column), ``x``, ``y``, ``z``,
      ``reported_t``, ``reported_z`` (NaN when absent or not a number);
    - ``voxel_x/y/z``: the centre of the coordinate's voxel on the study grid (its
      nearest grid point, as the claim check takes it); ``map_value``: the map's
      statistic there as it is (T, not sign-flipped for a negative direction; NaN outside
      the mask or the image);
    - ``nearest_cluster_mm``: the Euclidean distance in mm from that voxel's centre to the
      nearest voxel centre of a listed cluster (suprathreshold, ``extent``-surviving) of
      the directions: 0 when the coordinate's voxel is in one (``in_cluster``), a
      multiple-of-grid distance otherwise (one voxel off a cluster's face: the voxel
      size); NaN when nothing is listed or the coordinate is not three finite numbers.
      A coordinate off the grid is thus moved by at most half a voxel along each axis
      before measuring (the gap to the coordinate itself is ``voxel_x - x`` etc.).
      Computed with ``scipy.ndimage.distance_transform_edt`` (``sampling`` = voxel
      sizes, ``return_indices``) over the box holding the clusters and the coordinates'
      voxels (the same distances as over the whole grid); a voxel outside the image, or
      a grid whose axes are not orthogonal, is measured with a k-d tree of the cluster
      voxels' mm centres instead (the same definition);
    - that cluster's ``nearest_cluster_id`` (as the cluster table of ``directions``
      numbers it), ``nearest_cluster_direction``, ``nearest_cluster_k`` and main peak
      ``nearest_cluster_x/y/z``; of several clusters equally near, one is named.

    An F contrast has no negative side: a "neg" in ``directions`` lists nothing for it.
    """
    from scipy import ndimage, spatial

    from dashboard.analysis import Threshold

    if not directions or any(d not in ("pos", "neg") for d in directions) or len(set(directions)) != len(directions):
        raise ValueError(f"directions must be pos and/or neg, got {directions!r}")
    threshold = threshold or Threshold()
    cols = recognise_columns(list(table.columns), mapping)
    study = analysis.study
    affine = np.asarray(study.affine, float)
    shape = tuple(int(n) for n in study.shape)
    records = [(d, _listed_clusters(analysis, contrast, d, threshold=threshold, extent=extent, model=model, participants=participants))
               for d in directions]
    offsets, offset = [], 0
    for _, rec in records:  # Analysis.clusters numbers each direction's clusters after the previous one's
        offsets.append(offset)
        offset += rec.n_clusters
    volume = analysis.t_volume(contrast, model, participants)[0]

    n = len(table)
    xyz = np.stack([_numbers(table, cols[field], n) for field in ("x", "y", "z")], axis=1)
    finite = np.isfinite(xyz).all(axis=1)
    ijk = np.zeros((n, 3), np.int64)
    if finite.any():
        ijk[finite] = np.rint(np.linalg.solve(affine, np.c_[xyz[finite], np.ones(int(finite.sum()))].T)[:3].T).astype(np.int64)
    in_image = finite & np.all((ijk >= 0) & (ijk < np.asarray(shape)), axis=1)
    centres = ijk @ affine[:3, :3].T + affine[:3, 3]

    out = pd.DataFrame({
        "source": [cell_text(v) for v in table[cols["source"]].tolist()] if "source" in cols else [""] * n,
        "region": [cell_text(v) for v in table[cols["region"]].tolist()] if "region" in cols else [""] * n,
        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
        "reported_t": _numbers(table, cols.get("t"), n), "reported_z": _numbers(table, cols.get("zscore"), n),
        "voxel_x": np.where(finite, centres[:, 0], np.nan), "voxel_y": np.where(finite, centres[:, 1], np.nan),
        "voxel_z": np.where(finite, centres[:, 2], np.nan),
    })
    values = np.full(n, np.nan)
    values[in_image] = volume[tuple(ijk[in_image].T)]
    out["map_value"] = values

    voxels = np.concatenate([rec.voxels for _, rec in records])
    which = np.concatenate([np.full(rec.voxels.size, k) for k, (_, rec) in enumerate(records)])
    labels = np.concatenate([rec.voxel_labels for _, rec in records])
    order = np.argsort(voxels, kind="stable")  # pos and neg clusters never share a voxel (T > u and -T > u)
    voxels, which, labels = voxels[order], which[order], labels[order]
    nearest = np.full(n, -1, np.int64)  # index into `voxels` of each row's nearest cluster voxel
    dist = np.full(n, np.nan)
    if voxels.size and finite.any():
        cluster_ijk = np.array(np.unravel_index(voxels, shape)).T
        a = affine[:3, :3]
        gram = a.T @ a
        orthogonal = bool(np.all(np.abs(gram - np.diag(np.diag(gram))) <= 1e-9 * np.max(np.diag(gram))))
        grid_rows = np.flatnonzero(in_image) if orthogonal else np.zeros(0, np.int64)
        if grid_rows.size:
            # the box holding every cluster voxel and every queried voxel: the distance to
            # the nearest cluster voxel of a voxel in it is the same as over the whole grid
            pts = np.r_[cluster_ijk, ijk[grid_rows]]
            lo, hi = pts.min(axis=0), pts.max(axis=0) + 1
            box = np.ones(tuple(int(v) for v in hi - lo), bool)
            box[tuple((cluster_ijk - lo).T)] = False
            _, index = ndimage.distance_transform_edt(box, sampling=np.sqrt(np.diag(gram)), return_indices=True)
            local = tuple((ijk[grid_rows] - lo).T)
            hit_ijk = np.stack([index[axis][local] for axis in range(3)], axis=1) + lo
            flat = np.ravel_multi_index(tuple(hit_ijk.T), shape)
            nearest[grid_rows] = np.searchsorted(voxels, flat)
        rest = np.flatnonzero(finite & (nearest < 0))
        if rest.size:
            tree = spatial.cKDTree(cluster_ijk @ a.T + affine[:3, 3])
            _, idx = tree.query(centres[rest])
            nearest[rest] = np.asarray(idx, np.int64)
        found = nearest >= 0
        diff = (ijk[found] - cluster_ijk[nearest[found]]) @ a.T
        dist[found] = np.sqrt((diff**2).sum(axis=1))  # in mm through the affine, whichever way it was found
    out["in_cluster"] = dist == 0
    out["nearest_cluster_mm"] = dist
    ids: list[int | None] = []
    dirs: list[str | None] = []
    ks: list[int | None] = []
    peak_xyz = np.full((n, 3), np.nan)
    mains = {k: rec.table[rec.table["is_main_peak"].to_numpy(bool)] for k, (_, rec) in enumerate(records)}
    for row in range(n):
        if nearest[row] < 0:
            ids.append(None)
            dirs.append(None)
            ks.append(None)
            continue
        k, label = int(which[nearest[row]]), int(labels[nearest[row]])
        ids.append(label + offsets[k])
        dirs.append(records[k][0])
        main = mains[k][mains[k]["_label"].to_numpy() == label]
        ks.append(int(main["k"].iloc[0]) if len(main) else None)
        if len(main):
            peak_xyz[row] = main[["x", "y", "z"]].to_numpy(float)[0]
    out["nearest_cluster_id"] = pd.array(ids, dtype="Int64")
    out["nearest_cluster_direction"] = pd.Series(dirs, dtype=object)
    out["nearest_cluster_k"] = pd.array(ks, dtype="Int64")
    out["nearest_cluster_x"], out["nearest_cluster_y"], out["nearest_cluster_z"] = peak_xyz[:, 0], peak_xyz[:, 1], peak_xyz[:, 2]
    return out[DISTANCE_COLUMNS]


def cell_text(value: Any) -> str:
    """A cell as text ("" for an empty or missing one)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _numbers(table: pd.DataFrame, column: str | None, n: int) -> np.ndarray:
    """A column as floats (NaN for what is not a finite number; all NaN without the column)."""
    if column is None:
        return np.full(n, np.nan)
    return np.array([v if v is not None else math.nan for v in (number_or_none(c) for c in table[column].tolist())], float)


# -- uploaded peak tables ------------------------------------------------------------

MAX_UPLOAD_BYTES = 1024 * 1024
MAX_UPLOAD_ROWS = 5000
MAX_UPLOAD_COLUMNS = 100
_DELIMITERS = {"\t": "tab", ";": "semicolon", ",": "comma"}  # in this order of preference when as good
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+(?:,\d+)?")
_MISSING = {"n/a", "na", "nan", "-", "\u2013", "\u2014", ".", "none", "null"}  # empty cells of a number column
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY_KINDS = ((b"PK\x03\x04", "a zip archive (an Excel .xlsx or .ods workbook?): save the sheet as CSV or TSV"),
                 (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook: save the sheet as CSV or TSV"),
                 (b"\x1f\x8b", "gzip-compressed"), (b"%PDF", "a PDF"), (b"\x89PNG", "a PNG image"))


def read_uploaded_table(filename: str, content: bytes) -> pd.DataFrame:
    """A peak table uploaded by the user (TSV or CSV), parsed in memory, never written.

    Text: UTF-8 with or without a byte-order mark, UTF-16 with one (Excel's "Unicode
    text"), else Windows-1252 (Excel's "CSV" on Western Windows). The delimiter is the
    one of tab, semicolon and comma that splits the header into two or more columns and
    the rows into as many (an Excel ``sep=;`` first line says it outright); quoting as
    Excel writes it (``"a, b"``, ``""`` for a quote). Blank lines and columns without a
    name and without values are dropped. A column whose every filled cell is a number
    becomes numbers (empty cells NaN; decimal commas read in a semicolon- or
    tab-separated file, as Excel writes them in such locales); every other cell stays the
    text it is (``=cmd|...`` is a string, never evaluated).

    Limits: :data:`MAX_UPLOAD_BYTES`, :data:`MAX_UPLOAD_ROWS` rows,
    :data:`MAX_UPLOAD_COLUMNS` columns. Anything else is a ValueError of one line naming
    the file and the problem (empty, binary, not text, unparseable, too large, no rows,
    a column without a name, duplicate column names)."""
    name = shown_name(filename)
    if not isinstance(content, bytes | bytearray):
        raise ValueError(f"{name}: no file content")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name}: {len(content) / 2**20:.1f} MiB, more than the {MAX_UPLOAD_BYTES / 2**20:g} MiB a peak table may have")
    if not content.strip():
        raise ValueError(f"{name}: the file is empty")
    text = _decode(name, bytes(content))
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    hint = re.fullmatch(r'"?sep=(.)"?,*', first)
    if hint:  # Excel's delimiter line
        text = "\n".join(lines[1:])
    delimiter = hint[1] if hint else _sniff(name, text)
    if delimiter is None:
        raise ValueError(f"{name}: one column only: no tab, semicolon or comma separates the header's fields (a peak table needs x, y, z)")
    rows = _rows(name, text, delimiter)
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if len(header) < 2:
        raise ValueError(f"{name}: one column only (a peak table needs x, y, z)")
    if len(header) > MAX_UPLOAD_COLUMNS:
        raise ValueError(f"{name}: {len(header)} columns, more than {MAX_UPLOAD_COLUMNS}")
    if not body:
        raise ValueError(f"{name}: no rows under the header")
    if len(body) > MAX_UPLOAD_ROWS:
        raise ValueError(f"{name}: {len(body)} rows, more than {MAX_UPLOAD_ROWS}")
    width = len(header)
    for number, row in enumerate(body, start=1):
        if len(row) > width and any(c.strip() for c in row[width:]):
            raise ValueError(f"{name}: row {number} under the header has {len(row)} {_DELIMITERS.get(delimiter, repr(delimiter))}-separated "
                             f"fields, the header has {width}")
    cells = [[c.strip() for c in row[:width]] + [""] * (width - len(row)) for row in body]
    keep = [j for j, h in enumerate(header) if h or any(r[j] for r in cells)]  # Excel's trailing empty columns
    nameless = [j + 1 for j in keep if not header[j]]
    if nameless:
        raise ValueError(f"{name}: column {nameless[0]} has values but no name in the header")
    header = [header[j] for j in keep]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ValueError(f"{name}: duplicate column names {', '.join(repr(d) for d in dup[:5])}")
    columns: dict[str, Any] = {}
    for k, j in enumerate(keep):
        columns[header[k]] = _typed([r[j] for r in cells], decimal_comma=delimiter != ",")
    return pd.DataFrame(columns, columns=header)


def shown_name(filename: Any) -> str:
    """A file name fit for a message: its last part, printable, at most 100 characters."""
    text = filename if isinstance(filename, str) and filename.strip() else "the uploaded file"
    text = _CONTROL.sub("?", text.replace("\\", "/").rsplit("/", 1)[-1]).strip() or "the uploaded file"
    return text if len(text) <= 100 else text[:97] + "..."


def _decode(name: str, content: bytes) -> str:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = content.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError(f"{name}: not text (a UTF-16 byte-order mark, then bytes that are not UTF-16)") from None
    else:
        for magic, kind in _BINARY_KINDS:
            if content.startswith(magic):
                raise ValueError(f"{name}: not a text table: {kind}")
        if b"\x00" in content:
            raise ValueError(f"{name}: not a text table (binary data: NUL bytes)")
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = content.decode("cp1252")
            except UnicodeDecodeError:
                raise ValueError(f"{name}: not text: neither UTF-8 nor Windows-1252") from None
    text = text.lstrip("\ufeff")
    bad = _CONTROL.search(text)
    if bad:
        raise ValueError(f"{name}: not a text table (binary data: control character {ord(bad[0]):#04x})")
    if not text.strip():
        raise ValueError(f"{name}: the file is empty")
    return text


def _sniff(name: str, text: str) -> str | None:
    """The delimiter that splits the header into the most columns that the rows agree with
    (None: none splits it; a ValueError when the text cannot be read with any)."""
    import csv
    import io

    sample = "\n".join(text.splitlines()[:50])
    best: tuple[float, int, int] | None = None
    choice = None
    errors: list[str] = []
    for rank, delimiter in enumerate(reversed(list(_DELIMITERS))):
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if any(c.strip() for c in r)]
        except csv.Error as exc:
            errors.append(str(exc))
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        agree = sum(len(r) == width for r in rows[1:]) / max(len(rows) - 1, 1)
        score = (agree, width, rank)
        if best is None or score > best:
            best, choice = score, delimiter
    if choice is None and errors:
        raise ValueError(f"{name}: cannot be read as tab-, semicolon- or comma-separated text ({errors[0]})")
    return choice


def _rows(name: str, text: str, delimiter: str) -> list[list[str]]:
    """The table's non-blank rows as cells (at most one row more than the limit is read)."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) > MAX_UPLOAD_COLUMNS + 50:
                raise ValueError(f"{name}: line {reader.line_num} has {len(row)} fields, more than {MAX_UPLOAD_COLUMNS} columns")
            rows.append(row)
            if len(rows) > MAX_UPLOAD_ROWS + 1:
                raise ValueError(f"{name}: more than {MAX_UPLOAD_ROWS} rows")
    except csv.Error as exc:
        raise ValueError(f"{name}: cannot be read as {_DELIMITERS.get(delimiter, repr(delimiter))}-separated text "
                         f"(line {reader.line_num}: {exc})") from None
    return rows


def _typed(cells: list[str], *, decimal_comma: bool) -> Any:
    """A column's cells as numbers when every filled one is a number, else as text."""
    filled = [c for c in cells if c and c.lower() not in _MISSING]
    if not filled:
        return cells
    if all(_NUMBER.fullmatch(c) for c in filled):
        values = filled
    elif decimal_comma and all(_DECIMAL_COMMA.fullmatch(c) for c in filled):
        values = [c.replace(",", ".") for c in filled]
    else:
        return cells
    it = iter(values)
    numbers = [float(next(it)) if c and c.lower() not in _MISSING else math.nan for c in cells]
    if len(filled) == len(cells) and all(re.fullmatch(r"[+-]?\d+", c) for c in filled) and all(abs(v) < 2**53 for v in numbers):
        return np.array([int(c) for c in filled], dtype=np.int64)
    return np.array(numbers, dtype=float)
