"""Leave-one-out cluster survival: does one cluster of the group map still stand when
each participant in turn is left out of the group model?

For the listed cluster of one contrast and direction containing a point (the cluster
table's cluster, height and extent thresholds applied, on the chosen participant
subset), every participant of the subset is left out in turn, the group model is
refitted on the others (:meth:`Analysis.clusters` on the smaller subset: the same model,
or for an SPM/FSL package its own design's rows; the same kind of height threshold, so
an uncorrected p gives a new height at the refit's df) and the refit's listed clusters
are held against the original cluster's voxels.  The refit's cluster with most voxels
in common is "the cluster without that participant"; there is none when no listed
cluster of the refit overlaps the original (the cluster does not survive).

One row per left-out participant (:data:`COLUMNS`):

- ``participant_id``: who was left out; ``survives``: an overlapping listed cluster exists;
- ``peak_t``, ``x``, ``y``, ``z``: that cluster's main peak (its highest statistic, the
  sign of the direction: positive for ``neg`` as in SPM's table) and where; NaN when it
  does not survive;
- ``k`` (voxels, 0 when lost), ``p_fwe_cluster`` (RFT cluster-level p-FWE, see
  *Smoothness* below), ``common_voxels`` and ``dice`` (``2 |A & B| / (|A| + |B|)``) with
  the original cluster;
- ``max_t_in_original``: the refit's highest statistic over the original cluster's voxels,
  defined whether the cluster survives or not (a strip plot can show every participant);
- ``height`` (the refit's height threshold) and ``df`` (its error df).

Smoothness
----------
The refits' cluster p-FWE (and an FWE height threshold) take by default the full
subset's RFT smoothness (its FWHM and resel counts) at each refit's own df and
statistic, instead of re-estimating it from each refit's residuals: an estimate costs
about as much as 15-20 refits (on the synthetic sample, 235 366 voxels: 1.8 s against
0.1 s for a refit and its table), and one participant fewer barely moves it (sample,
cells model, leaving out sub-01: FWHM 3.1305/3.1319/3.1305 voxels against
3.1306/3.1327/3.1290, resels R3 7146.0 against 7147.3, 0.02 %; the 22 leave-outs'
cluster p-FWE of the interaction cluster at (14, 64, 14) differ from those with
re-estimated smoothness by at most 0.5 % of their value, none crossing 0.05).  The
result's ``note`` says so.  ``reestimate_smoothness=True`` estimates it for every refit
(exact; about 1.2 s more per refit on the sample: 28 s for the 22 against 3-5 s).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.analysis import DEFAULT_EXTENT, Analysis, ClusterTable, Direction, Threshold
from dashboard.stats import rft
from dashboard.stats.models import ModelName

__all__ = ["COLUMNS", "Survival", "cache_key", "leave_one_out"]

COLUMNS = ["participant_id", "survives", "peak_t", "x", "y", "z", "k", "p_fwe_cluster", "common_voxels", "dice",
           "max_t_in_original", "height", "df"]
DEFAULT_THRESHOLD = Threshold()  # p < 0.001 uncorrected, as Analysis.clusters
FWE_ALPHA = 0.05  # the summary's count of refits whose cluster is significant at cluster level (p-FWE <= 0.05)
FULL_KEYS = ["cluster_id", "peak_t", "x", "y", "z", "k", "p_fwe_cluster", "height", "df"]

NOTE_FULL_SMOOTHNESS = ("refits' cluster p-FWE{fwe} use the full subset's RFT smoothness (FWHM and resel counts of all "
                        "{n} participants) at each refit's own df, not a re-estimate per refit (about 15-20 refits' time "
                        "each; one participant fewer barely changes it)")
NOTE_REFIT_SMOOTHNESS = "refits' cluster p-FWE{fwe} use each refit's own RFT smoothness, re-estimated from its residuals"
NOTE_NO_SMOOTHNESS = "no RFT smoothness for this map: cluster p-FWE not available"


@dataclass(frozen=True)
class Survival:
    """Leave-one-out survival of one cluster (see the module docstring for the columns).

    ``full``: the cluster on the whole subset (:data:`FULL_KEYS`: its table id, main
    peak, k, p-FWE, height and df).  ``frame``: one row per left-out participant, in the
    subset's order; fewer than ``len(participants)`` rows when stopped early
    (``complete`` False).  ``summary``: counts and who matters most (see
    :func:`leave_one_out`), with a one-line ``text``.  Picklable; :meth:`to_dict` gives
    plain JSON values and :meth:`from_dict` reads them back.
    """

    contrast: str
    direction: Direction
    peak: tuple[float, float, float]  # the point asked for (a voxel of the cluster)
    model: str  # as asked (a package's design is refitted whatever it says)
    participants: tuple[str, ...]  # the full subset
    threshold: Threshold
    extent: int
    full: dict[str, Any]
    frame: pd.DataFrame
    summary: dict[str, Any]
    note: str
    complete: bool
    reestimate_smoothness: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN as None)."""
        return {
            "contrast": self.contrast, "direction": self.direction, "peak": list(self.peak), "model": self.model,
            "participants": list(self.participants), "threshold": dataclasses.asdict(self.threshold), "extent": self.extent,
            "full": {key: _plain(v) for key, v in self.full.items()},
            "rows": json.loads(self.frame.to_json(orient="records", double_precision=15)),
            "summary": {key: _plain(v) for key, v in self.summary.items()}, "note": self.note, "complete": self.complete,
            "reestimate_smoothness": self.reestimate_smoothness,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Survival:
        """The inverse of :meth:`to_dict` (None back to NaN in the table's numbers)."""
        frame = pd.DataFrame(data["rows"], columns=COLUMNS)
        for col in COLUMNS[2:]:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
        for col in ("k", "common_voxels"):
            frame[col] = frame[col].astype(np.int64)
        frame["survives"] = frame["survives"].astype(bool)
        full = {key: (math.nan if v is None else v) for key, v in data["full"].items()}
        x, y, z = (float(v) for v in data["peak"])
        return cls(data["contrast"], data["direction"], (x, y, z), data["model"], tuple(data["participants"]),
                   Threshold(**data["threshold"]), int(data["extent"]), full, frame, dict(data["summary"]), data["note"],
                   bool(data["complete"]), bool(data.get("reestimate_smoothness", False)))


def _plain(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def cache_key(analysis: Analysis, contrast: str, peak: tuple[float, float, float], *, direction: Direction = "pos",
              threshold: Threshold = DEFAULT_THRESHOLD, extent: int = DEFAULT_EXTENT, model: ModelName = "cells",
              participants: tuple[str, ...] | None = None, reestimate_smoothness: bool = False) -> str:
    """A cache key of one :func:`leave_one_out` answer: the study folder (and its images'
    modification times), model, participant subset, contrast, direction, threshold, extent,
    the point (its voxel) and the smoothness choice."""
    subset = analysis.subset(participants)
    ijk = _voxel(analysis, peak)
    text = "|".join([analysis.smoothness_key(model, subset, contrast), direction, repr(dataclasses.astuple(threshold)),
                     str(int(extent)), ",".join(map(str, ijk)), str(bool(reestimate_smoothness))])
    return "cue-survival:" + hashlib.sha1(text.encode()).hexdigest()


def _voxel(analysis: Analysis, peak: tuple[float, float, float]) -> tuple[int, int, int]:
    ijk = tuple(int(v) for v in np.rint(np.linalg.solve(analysis.study.affine, [*peak, 1.0])[:3]))
    if not all(0 <= i < s for i, s in zip(ijk, analysis.study.shape, strict=True)):
        raise ValueError(f"({', '.join(f'{v:g}' for v in peak)}) lies outside the image")
    return ijk  # type: ignore[return-value]


def leave_one_out(
    analysis: Analysis,
    contrast: str,
    peak: tuple[float, float, float],
    *,
    direction: Direction = "pos",
    threshold: Threshold = DEFAULT_THRESHOLD,
    extent: int = DEFAULT_EXTENT,
    model: ModelName = "cells",
    participants: tuple[str, ...] | None = None,
    reestimate_smoothness: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Survival:
    """Leave-one-out survival of the listed ``direction`` cluster of ``contrast`` that
    contains ``peak`` (MNI mm), on ``participants`` (default: everyone) with ``model``
    (ignored for an SPM/FSL package: its own design is refitted on the subset).

    ``progress(done, total)`` is called with ``(0, N)`` first, before anything is
    computed, and after each of the N refits.  ``should_stop()`` is asked before each
    refit; when it returns True the answer so far is returned (``complete`` False,
    fewer rows; the summary counts the rows there are).

    ``summary``: ``n_participants`` (N), ``n_left_out`` (rows), ``n_survive``,
    ``n_fwe_significant`` (rows whose cluster has p-FWE <= 0.05),
    ``lost_without`` (ids whose removal loses the cluster), ``lowest_peak_without`` (the
    id whose removal lowers the peak T most: a lost cluster counts as lowest, ties then
    by ``max_t_in_original``) with ``lowest_peak_t``, ``smallest_k_without`` (the
    id whose removal shrinks k most, a lost cluster being k 0) with ``smallest_k``, and
    ``text`` (one line).

    Cluster p-FWE of the refits: the full subset's smoothness at each refit's df unless
    ``reestimate_smoothness`` (module docstring, *Smoothness*); ``note`` says which.
    ``label_atlas`` is not used (no anatomical labels).  The refits run on a scratch
    :class:`Analysis` of the same study holding one fit at a time: ``analysis``'s cached
    fits are left as they are and memory stays at about one extra fit.

    Raises ValueError: a study that cannot refit (group maps only), no listed cluster at
    ``peak``, or a subset too small to leave one out of (the group model's minimum).
    """
    study = analysis.study
    if not study.can_refit:
        raise ValueError("leave-one-out refits the group model without each participant; this folder has group maps only "
                         "(no participant images or design inputs)")
    subset = analysis.subset(participants)
    total = len(subset)
    if progress is not None:
        progress(0, total)
    ijk = _voxel(analysis, peak)
    full = analysis.clusters(contrast, directions=(direction,), threshold=threshold, extent=extent, model=model,
                             participants=subset, label_atlas=None, with_rft=True)
    label = int(full.labels[direction][ijk])
    if not label:
        stat = full.statistic.stat if full.statistic is not None else "T"
        where = ", ".join(f"{v:g}" for v in peak)
        raise ValueError(f"no listed {direction} cluster of {contrast} (k >= {extent}, {stat} > {full.height:.2f}) contains ({where})")
    original = full.labels[direction] == label
    original_idx = np.flatnonzero(original[study.mask])
    k_full = int(original.sum())
    full_row = _main_row(full, label)
    full_info: dict[str, Any] = {"cluster_id": label, "peak_t": float(full_row["peak_t"]), "x": float(full_row["x"]),
                                 "y": float(full_row["y"]), "z": float(full_row["z"]), "k": k_full,
                                 "p_fwe_cluster": float(full_row["p_fwe_cluster"]), "height": float(full.height), "df": float(full.df)}
    sign = 1.0 if direction == "pos" else -1.0
    smooth = full.smoothness
    fwe = " and FWE height thresholds" if threshold.needs_smoothness else ""
    if reestimate_smoothness:
        note = NOTE_REFIT_SMOOTHNESS.format(fwe=fwe)
    elif smooth is None:
        note = NOTE_NO_SMOOTHNESS
    else:
        note = NOTE_FULL_SMOOTHNESS.format(fwe=fwe, n=total)

    # the refits: a scratch Analysis of the same Study (its images are shared, not read
    # again) keeping one fit at a time, so the caller's cached fits stay and 22 refits
    # hold one refit's arrays, not eight (each fit keeps its subset's images)
    scratch = Analysis(study, max_cached_fits=1, store=analysis.store)
    rows: list[dict[str, Any]] = []
    for done, left_out in enumerate(subset):
        if should_stop is not None and should_stop():
            break
        others = tuple(p for p in subset if p != left_out)
        tvec, df = scratch.t_map(contrast, model, others)
        field = scratch.map_field(contrast, model, others, df)
        loo_smooth: rft.Smoothness | None = None
        if reestimate_smoothness:
            table = scratch.clusters(contrast, directions=(direction,), threshold=threshold, extent=extent, model=model,
                                      participants=others, label_atlas=None, with_rft=True)
        else:
            if smooth is not None:
                loo_smooth = dataclasses.replace(smooth, df=field.df, stat=field.stat, df_effect=field.df_effect, rpv=None)
            loo_threshold = threshold
            if threshold.needs_smoothness:  # the FWE height from the full subset's smoothness, as a T for the refit
                loo_threshold = Threshold(t=threshold.height(df, loo_smooth, field))
            table = scratch.clusters(contrast, directions=(direction,), threshold=loo_threshold, extent=extent, model=model,
                                      participants=others, label_atlas=None, with_rft=False)
        row: dict[str, Any] = {"participant_id": left_out, "survives": False, "peak_t": math.nan, "x": math.nan, "y": math.nan,
                               "z": math.nan, "k": 0, "p_fwe_cluster": math.nan, "common_voxels": 0, "dice": 0.0,
                               "max_t_in_original": float(np.nanmax(sign * tvec[original_idx])) if original_idx.size else math.nan,
                               "height": float(table.height), "df": float(table.df)}
        labels = table.labels[direction]
        counts = np.bincount(labels[original], minlength=int(labels.max()) + 1)[1:]
        if counts.sum():
            best = int(np.argmax(counts)) + 1  # most voxels in common (ties: the higher-ranked cluster)
            main = _main_row(table, best)
            k = int(main["k"])
            common = int(counts[best - 1])
            if reestimate_smoothness:
                p_fwe = float(main["p_fwe_cluster"])
            else:
                p_fwe = float(rft.cluster_p_fwe(k, table.height, loo_smooth)) if loo_smooth is not None else math.nan
            row.update(survives=True, peak_t=float(main["peak_t"]), x=float(main["x"]), y=float(main["y"]), z=float(main["z"]),
                       k=k, p_fwe_cluster=p_fwe, common_voxels=common, dice=2 * common / (k_full + k))
        rows.append(row)
        if progress is not None:
            progress(done + 1, total)
    frame = pd.DataFrame(rows, columns=COLUMNS).astype({"survives": bool, "k": np.int64, "common_voxels": np.int64})
    summary = _summary(frame, full_info, total)
    return Survival(contrast, direction, (float(peak[0]), float(peak[1]), float(peak[2])), model, subset, threshold, int(extent),
                    full_info, frame, summary, note, len(frame) == total, reestimate_smoothness)


def _main_row(table: ClusterTable, cluster_id: int) -> pd.Series:
    """The main-peak row of a cluster of a one-direction table (its id is its label)."""
    tab = table.table
    return tab[(tab["cluster_id"] == cluster_id) & tab["is_main_peak"]].iloc[0]


def _summary(frame: pd.DataFrame, full: dict[str, Any], total: int) -> dict[str, Any]:
    n = len(frame)
    survive = int(frame["survives"].sum())
    lost = [str(p) for p in frame.loc[~frame["survives"], "participant_id"]]
    significant = int((frame["p_fwe_cluster"] <= FWE_ALPHA).sum())
    out: dict[str, Any] = {"n_participants": total, "n_left_out": n, "n_survive": survive, "n_fwe_significant": significant,
                           "lost_without": lost,
                           "lowest_peak_without": None, "lowest_peak_t": math.nan, "smallest_k_without": None, "smallest_k": 0}
    text = f"the cluster survives {survive} of {n} leave-outs" + ("" if n == total else f" (stopped after {n} of {total})")
    if n:
        peak = frame["peak_t"].fillna(-math.inf).to_numpy(float)
        order = np.lexsort((frame["max_t_in_original"].fillna(-math.inf).to_numpy(float), peak))
        low = frame.iloc[int(order[0])]
        small = frame.iloc[int(np.argmin(frame["k"].to_numpy()))]  # (first of ties: subset order)
        out.update(lowest_peak_without=str(low["participant_id"]), lowest_peak_t=float(low["peak_t"]),
                   smallest_k_without=str(small["participant_id"]), smallest_k=int(small["k"]))
        if not math.isnan(full["p_fwe_cluster"]):
            text += f"; cluster p-FWE <= {FWE_ALPHA:g} in {significant} of {n}"
        if lost:
            text += f"; lost without {', '.join(lost)}"
        if low["survives"]:
            text += f"; peak T lowest without {low['participant_id']} ({low['peak_t']:.2f} vs {full['peak_t']:.2f})"
        if small["survives"]:
            text += f"; smallest without {small['participant_id']} (k {int(small['k'])} vs {full['k']})"
    out["text"] = text
    return out
