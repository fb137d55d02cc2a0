"""The analyses a user asks for, over one loaded study: group T maps for any model
and participant subset, SPM-convention cluster tables with RFT p-values, and the
per-participant cluster values regressed on a covariate.

This is the one place that combines the core pieces (``results``, ``stats.*``,
``atlas``); the CLI and the Dash callbacks call it and only format the answers.  Fits
and smoothness estimates are kept per (model, participant subset), so a change of
threshold or contrast does not refit.

Numbers and their conventions
-----------------------------
The cluster table is the table SPM12 prints (``spm_list('Table')``; rules and every
column in :mod:`dashboard.stats.spm_table`): ``p_set``/``c_set`` (set level, first row
of each direction), ``p_fwe_cluster``, ``p_fdr_cluster`` (topological FDR over every
cluster at the height threshold, before the extent threshold), ``k``,
``p_unc_cluster``, ``p_fwe_peak``, ``p_fdr_peak``, ``peak_t`` (df = the model's error
df), ``z_score`` and ``p_unc`` in SPM's convention (``spm_P`` with R = 1 and its normal
quantile, not the exact t tail).  Smoothness: estimated from the model's standardised
residuals when the study has participant images, else taken from the group map's sidecar.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from dashboard import atlas
from dashboard.results import Problem, Study, StudyError
from dashboard.stats import rft
from dashboard.stats.extract import ValueType, cluster_values, first_eigenvariate
from dashboard.stats.glm import DesignFit, fit_design
from dashboard.stats.lts import RegressionResult, lts_regression, ols_regression
from dashboard.stats.models import GroupFit, ModelName, fit_group_model
from dashboard.stats.spm_table import SPM_COLUMNS, Footer, spm_table
from dashboard.stats.thresholds import t_threshold

Direction = Literal["pos", "neg"]
Method = Literal["lts", "ols"]
DIRECTIONS: tuple[Direction, ...] = ("pos", "neg")
DEFAULT_P_UNC = 0.001
DEFAULT_EXTENT = 10
MAX_CACHED_VOLUMES = 6  # Analysis.t_volume keeps this many 3D maps (4.7 MB each on a 2 mm grid)
DEFAULT_ATLAS = "aal"

CLUSTER_COLUMNS = ["direction", *SPM_COLUMNS[:-1], "label", "is_main_peak"]


@dataclass(frozen=True)
class Threshold:
    """Voxel-level (height) threshold, one of SPM's choices: an uncorrected p
    (``spm_u``, converted at the map's df), a T value, or an FWE-corrected p
    (``spm_uc``: RFT with the Bonferroni cap, which needs the map's smoothness)."""

    p_unc: float | None = DEFAULT_P_UNC
    t: float | None = None
    p_fwe: float | None = None

    def __post_init__(self) -> None:
        if self.t is not None and self.p_fwe is not None:
            raise ValueError("give one height threshold: a p value (uncorrected or FWE) or a T")
        if self.t is not None or self.p_fwe is not None:
            object.__setattr__(self, "p_unc", None)  # the default p does not compete
        for p in (self.p_unc, self.p_fwe):
            if p is not None and not 0 < p < 1:
                raise ValueError(f"p must be between 0 and 1 (exclusive), got {p:g}")
        if self.t is not None and not math.isfinite(self.t):
            raise ValueError(f"a T threshold must be a finite number, got {self.t:g}")

    @property
    def needs_smoothness(self) -> bool:
        return self.p_fwe is not None

    def height(self, df: float, smoothness: rft.Smoothness | None = None, field: rft.Field | None = None) -> float:
        """The height threshold on the map's statistic (``field``; default a T at ``df``):
        ``spm_u`` for an uncorrected p, ``spm_uc`` (RFT + Bonferroni) for an FWE p."""
        if self.t is not None:
            return float(self.t)
        if self.p_fwe is not None:
            if smoothness is None:
                raise ValueError("an FWE height threshold needs the map's smoothness (RFT), which is not available")
            return rft.t_threshold_fwe(self.p_fwe, smoothness)
        if self.p_unc is None:
            raise ValueError("give a p value or a T threshold")
        if field is None or field.stat == "T":
            return t_threshold(self.p_unc, df)
        return field.isf(self.p_unc)

    def describe(self, df: float, smoothness: rft.Smoothness | None = None, field: rft.Field | None = None) -> str:
        """One line: the threshold in p and in the statistic, with its df."""
        u = self.height(df, smoothness, field)
        f = field or rft.Field("T", 1.0, df)
        dof = {"T": f"df {df:g}", "F": f"df [{f.df_effect:g}, {f.df:g}]", "Z": "Gaussian"}[f.stat]
        if self.t is not None:
            return f"{f.stat} > {u:.2f} (p < {float(f.sf(u)):.2g} uncorrected, {dof})"
        if self.p_fwe is not None:
            return f"p < {self.p_fwe:g} FWE ({f.stat} > {u:.2f}, {dof})"
        return f"p < {self.p_unc:g} uncorrected ({f.stat} > {u:.2f}, {dof})"


@dataclass(frozen=True)
class ClusterTable:
    """A cluster table and what it was computed with."""

    table: pd.DataFrame  # CLUSTER_COLUMNS
    labels: dict[str, np.ndarray]  # direction -> int volume of listed clusters
    height: float
    df: float
    extent: int
    smoothness: rft.Smoothness | None
    footers: dict[str, Footer] = field(default_factory=dict)  # direction -> SPM's footer (with RFT)
    statistic: rft.Field | None = None  # the map's statistic and df (None: T at df)


@dataclass(frozen=True)
class RegressionOutcome:
    """Cluster values against a covariate, with the fit that was asked for."""

    fit: RegressionResult
    other: RegressionResult  # the other method (OLS when LTS was asked, and back)
    participants: pd.DataFrame  # participant_id, covariate, value, weight
    cluster_size: int
    cluster_peak: tuple[float, float, float]


class SmoothnessStore(Protocol):
    """Where smoothness estimates can be shared between processes: anything with
    ``get(key) -> value | None`` and ``set(key, value)`` (a flask-caching ``Cache``
    backed by Redis or the file system, or a dict-like test double)."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> Any: ...


class Analysis:
    """Analyses of one study, with fits cached per (model, participant subset).

    Fits stay in this process (large arrays); RFT smoothness estimates (about a second
    each, a few numbers as a result) are also written to ``store`` when one is given,
    so other server processes and later runs reuse them.
    """

    def __init__(self, study: Study, *, max_cached_fits: int = 8, store: SmoothnessStore | None = None):
        self.study = study
        self._fits: dict[tuple[str, tuple[str, ...]], GroupFit] = {}
        self._smooth: dict[tuple[str, tuple[str, ...], str], rft.Smoothness] = {}
        self._design: dict[tuple[str, tuple[str, ...]], tuple[np.ndarray, float, rft.Field]] = {}
        self._max = max_cached_fits
        self._volumes: dict[tuple[str, str, tuple[str, ...]], tuple[np.ndarray, float]] = {}  # t_volume's, oldest first
        self.store = store

    # -- participants and fits --------------------------------------------------------
    def subset(self, participants: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
        """Normalised participant subset (study order); all when None."""
        ids = self.study.participant_ids
        if participants is None:
            return tuple(ids)
        unknown = sorted(set(participants) - set(ids))
        if unknown:
            raise ValueError(f"unknown participants: {', '.join(unknown)}")
        wanted = set(participants)
        return tuple(p for p in ids if p in wanted)

    @property
    def uses_stored_maps(self) -> bool:
        """True when T maps are the stored group maps (a folder without participant
        images: one model, everyone), False when they are recomputed from the images."""
        return not self.study.can_refit

    def design_map(self, contrast: str, subset: tuple[str, ...]) -> tuple[np.ndarray, float, rft.Field]:
        """A package design's contrast refitted on a participant subset: the design's rows
        of those participants, the columns they load on (a dropped participant's subject
        column goes with them), the same weights; T or F as the package's contrast."""
        key = (contrast, subset)
        if key in self._design:
            return self._design[key]
        fit, keep = self._design_fit(subset)
        dr = self.study.design_rows
        assert dr is not None
        weights = dr.contrasts[contrast]
        dropped = np.abs(weights.reshape(len(dr.columns), -1))[~keep].sum()
        if dropped > 0:
            raise ValueError(f"contrast {contrast!r} weighs design columns of the excluded participants; keep them to compute it")
        gm = self.study.group_maps[contrast]
        if gm.statistic == "F":
            values, rank = fit.f_map(weights[keep] if weights.ndim == 1 else weights[keep, :])
            field = rft.Field("F", float(rank), fit.df)
        else:
            values, field = fit.t_map(weights[keep]), rft.Field("T", 1.0, fit.df)
        if len(self._design) >= 4 * self._max:
            self._design.pop(next(iter(self._design)))
        self._design[key] = (values, fit.df, field)
        return self._design[key]

    def _design_fit(self, subset: tuple[str, ...]) -> tuple[DesignFit, np.ndarray]:
        """The fit of the design's rows of ``subset`` and which columns it kept."""
        dr = self.study.design_rows
        assert dr is not None
        key = ("__design__", subset)
        if key not in self._fits:
            wanted = set(subset)
            rows = [i for i, p in enumerate(dr.participants) if p in wanted]
            x = dr.x[rows]
            keep = np.abs(x).sum(axis=0) > 0
            fit = fit_design(self.study.design_data()[rows], x[:, keep])
            if len(self._fits) >= self._max:
                self._fits.pop(next(iter(self._fits)))
            self._fits[key] = (fit, keep)  # type: ignore[assignment]
        return self._fits[key]  # type: ignore[return-value]

    def _design_values(self, subset: tuple[str, ...], vox: np.ndarray, condition: int, value: ValueType) -> np.ndarray:
        """Per-participant cluster values of a package design: SPM's eigenvariate over every
        row of the (subset's) design, or the voxel mean per row; a participant's value in a
        condition is its row of that condition (the mean if several), NaN without one."""
        dr = self.study.design_rows
        assert dr is not None
        wanted = set(subset)
        rows = [i for i, p in enumerate(dr.participants) if p in wanted]
        y = self.study.design_data()[rows][:, vox].astype(np.float64)
        per_row = first_eigenvariate(y) if value == "eigenvariate" else y.mean(axis=1)
        out = np.full(len(subset), np.nan)
        index = {p: k for k, p in enumerate(subset)}
        for p in subset:
            mine = [r for r, i in enumerate(rows) if dr.participants[i] == p and dr.row_conditions[i] == condition]
            if mine:
                out[index[p]] = float(np.mean(per_row[mine]))
        return out

    def fit(self, model: ModelName, subset: tuple[str, ...]) -> GroupFit:
        if not self.study.has_participant_images:
            raise StudyError([Problem(str(self.study.root), "recomputing group maps needs participant images; this folder has group maps only")])
        key = (model, subset)
        if key not in self._fits:
            data = self.participant_data(subset)
            if len(self._fits) >= self._max:
                self._fits.pop(next(iter(self._fits)))
            self._fits[key] = fit_group_model(data, self.study.condition_ids, model)
        return self._fits[key]

    def participant_data(self, subset: tuple[str, ...], voxels: np.ndarray | None = None) -> np.ndarray:
        """First-level maps of a subset, ``(n, n_conditions, n_voxels)``, or only the
        given in-mask ``voxels`` (taken first, so a subset never copies whole maps; no
        copy at all for everyone's whole maps)."""
        data = self.study.participant_data if voxels is None else self.study.participant_data[:, :, voxels]
        if subset == tuple(self.study.participant_ids):
            return data
        return data[[self.study.participant_ids.index(p) for p in subset]]

    def t_map(self, contrast: str, model: ModelName = "cells", participants: tuple[str, ...] | None = None) -> tuple[np.ndarray, float]:
        """T at in-mask voxels and its df.  The stored group map answers the question it
        was computed for (its model, every participant; e.g. SPM's own spmT): the study's
        result as published, read instead of refitted.  Any other model or participant
        subset is recomputed from the participant images."""
        subset = self.subset(participants)
        if self.study.design_rows is not None and subset != tuple(self.study.participant_ids):
            values, df, _ = self.design_map(contrast, subset)
            return values, df
        if self.uses_stored_maps or self.study.design_rows is not None:
            gm = self.study.group_maps[contrast]
            if self.study.design_rows is None:
                self._check_stored(gm.model, model, subset)
            return self.study.group_map(contrast).astype(np.float64), gm.df
        if self.stored_map_applies(contrast, model, subset):
            return self.study.group_map(contrast).astype(np.float64), self.study.group_maps[contrast].df
        fit = self.fit(model, subset)
        return fit.t_map(self.study.contrast(contrast).weights), float(fit.df)

    def t_volume(self, contrast: str, model: ModelName = "cells", participants: tuple[str, ...] | None = None) -> tuple[np.ndarray, float]:
        """:meth:`t_map` as a 3D volume (NaN outside the mask) and its df, kept for the last
        few (contrast, model, subset): cluster tables, claim checks and distances ask for
        the same volumes again and again.  Read-only (shared between callers)."""
        key = (contrast, model, self.subset(participants))
        hit = self._volumes.get(key)
        if hit is None:
            tvec, df = self.t_map(contrast, model, participants)
            volume = self.study.unmask(np.asarray(tvec, np.float64))
            volume.flags.writeable = False
            hit = (volume, df)
            self._volumes[key] = hit
            while len(self._volumes) > MAX_CACHED_VOLUMES:
                self._volumes.pop(next(iter(self._volumes)))
        return hit

    def stored_map_applies(self, contrast: str, model: str, subset: tuple[str, ...]) -> bool:
        """True when the stored group map of ``contrast`` is this model's map of every
        participant (then it is used as it is, as :meth:`stored_smoothness` is)."""
        gm = self.study.group_maps.get(contrast)  # (the loader guarantees a map with its df)
        everyone = subset == tuple(self.study.participant_ids)
        if self.study.design_rows is not None:  # a package's design: its own model, whatever `model` says
            return gm is not None and everyone
        return gm is not None and gm.model == model and everyone

    def _check_stored(self, stored_model: str | None, model: str, subset: tuple[str, ...]) -> None:
        """Stored maps answer only for their own model and every participant."""
        if subset != tuple(self.study.participant_ids) or (stored_model and model != stored_model):
            raise StudyError([Problem(str(self.study.root), f"another model or participant subset needs participant images; this folder has group maps only ({stored_model or 'unknown'} model, all participants)")])

    def smoothness(self, contrast: str, model: ModelName = "cells", participants: tuple[str, ...] | None = None) -> rft.Smoothness | None:
        """RFT smoothness: estimated from the model's residuals, or from the sidecar."""
        subset = self.subset(participants)
        if self.study.design_rows is not None and subset != tuple(self.study.participant_ids):
            return self._design_smoothness(contrast, subset)
        if self.uses_stored_maps or self.study.design_rows is not None:
            gm = self.study.group_maps[contrast]
            if not gm.smoothness:
                return None
            return rft.smoothness_from_sidecar(gm.smoothness, gm.df, self.study.voxel_size, stat=gm.statistic, df_effect=gm.df_effect)
        key_contrast = contrast if model == "paired" else ""
        key = (model, subset, key_contrast)
        stored = self.stored_smoothness(contrast, model, subset)
        if stored is not None:
            return stored
        if key not in self._smooth:
            store_key = self.smoothness_key(model, subset, key_contrast)
            shared = self.store.get(store_key) if self.store is not None else None
            if shared is not None:
                self._smooth[key] = rft.smoothness_from_sidecar(shared, shared["DegreesOfFreedom"], self.study.voxel_size)
            else:
                fit = self.fit(model, subset)
                weights = self.study.contrast(contrast).weights if model == "paired" else None
                self._smooth[key] = rft.estimate_smoothness(fit.residuals(weights), self.study.mask, fit.df, self.study.voxel_size)
                if self.store is not None:
                    self.store.set(store_key, rft.smoothness_to_sidecar(self._smooth[key]))
        return self._smooth[key]

    def _design_smoothness(self, contrast: str, subset: tuple[str, ...]) -> rft.Smoothness:
        """Smoothness of a refitted package design, from its residuals (SPM's estimator),
        as a field of the contrast's statistic."""
        key = ("__design__", subset, "")
        if key not in self._smooth:
            fit, _ = self._design_fit(subset)
            self._smooth[key] = rft.estimate_smoothness(fit.residuals.astype(np.float32), self.study.mask, fit.df, self.study.voxel_size)
        _, _, field = self.design_map(contrast, subset)
        return dataclasses.replace(self._smooth[key], stat=field.stat, df_effect=field.df_effect)

    def stored_smoothness(self, contrast: str, model: str, subset: tuple[str, ...]) -> rft.Smoothness | None:
        """The sidecar's smoothness when the question is exactly the stored map's (its
        model, every participant): it is that model's estimate (SPM's own, for a folder
        exported from SPM), so it is used as it is instead of being estimated again."""
        if not self.stored_map_applies(contrast, model, subset):
            return None
        gm = self.study.group_maps[contrast]
        if not gm.smoothness:
            return None
        return rft.smoothness_from_sidecar(gm.smoothness, gm.df, self.study.voxel_size, stat=gm.statistic, df_effect=gm.df_effect)

    def smoothness_key(self, model: str, subset: tuple[str, ...], contrast: str = "") -> str:
        """Store key of a smoothness estimate: the study (:meth:`Study.identity`: folder and
        its images' mtimes), model, participant subset, contrast (paired model only)."""
        text = "|".join([self.study.identity(), model, ",".join(subset), contrast])
        return "cue-smoothness:" + hashlib.sha1(text.encode()).hexdigest()

    # -- cluster table ------------------------------------------------------------------
    def clusters(
        self,
        contrast: str,
        *,
        directions: tuple[Direction, ...] = ("pos",),
        threshold: Threshold = Threshold(),
        extent: int = DEFAULT_EXTENT,
        model: ModelName = "cells",
        participants: tuple[str, ...] | None = None,
        label_atlas: str | None = DEFAULT_ATLAS,
        with_rft: bool = True,
        svc_mask: np.ndarray | None = None,
    ) -> ClusterTable:
        """SPM-convention cluster table of a contrast (one or both directions).

        With ``svc_mask`` (a boolean ROI on the study grid) the table is that of a
        small-volume correction as SPM's: only voxels inside the ROI, and RFT p-values
        with the ROI's resel counts and voxel count (``spm_VOI``).
        """
        volume, df = self.t_volume(contrast, model, participants)
        stat_field = self.map_field(contrast, model, participants, df)
        if stat_field.stat == "F" and "neg" in directions:
            raise ValueError(f"contrast {contrast!r} is an F contrast: it has no negative direction (SPM's F is one-sided)")
        smooth = self.smoothness(contrast, model, participants) if (with_rft or threshold.needs_smoothness) else None
        height = threshold.height(df, smooth, stat_field)
        if not with_rft:
            smooth = None
        if svc_mask is not None:
            svc_mask = np.asarray(svc_mask, bool)
            if svc_mask.shape != self.study.shape:
                raise ValueError(f"the small-volume mask has shape {svc_mask.shape}, the study grid is {self.study.shape}")
            if not (svc_mask & self.study.mask).any():
                raise ValueError("the small-volume mask holds no in-brain voxel")
        frames: list[pd.DataFrame] = []
        labels: dict[str, np.ndarray] = {}
        footers: dict[str, Footer] = {}
        offset = 0
        for direction in directions:
            sign = 1.0 if direction == "pos" else -1.0
            res = spm_table(sign * volume, self.study.affine, height, extent, smooth, df=df, svc_mask=svc_mask,
                            analysis_mask=self.study.mask, stat=stat_field.stat, df_effect=stat_field.df_effect)
            tab = res.table.copy()
            n_clusters = int(res.labels.max()) if res.labels.size else 0
            tab["cluster_id"] += offset
            offset += n_clusters
            tab.insert(0, "direction", direction)
            labels[direction] = res.labels
            if res.footer is not None:
                footers[direction] = res.footer
            frames.append(tab)
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CLUSTER_COLUMNS)
        if label_atlas:
            table["label"] = [atlas.label_coordinate((x, y, z), label_atlas) for x, y, z in table[["x", "y", "z"]].to_numpy()]
        else:
            table["label"] = ""
        if len(directions) > 1:  # one list, clusters by their peak T as SPM orders them
            order = table.groupby("cluster_id")["peak_t"].transform("max")
            table = table.assign(_o=order).sort_values(["_o", "cluster_id", "peak_t"], ascending=[False, True, False]).drop(columns="_o")
        return ClusterTable(table[CLUSTER_COLUMNS].reset_index(drop=True), labels, height, df, extent, smooth, footers, stat_field)

    def map_field(self, contrast: str, model: ModelName, participants: tuple[str, ...] | None, df: float) -> rft.Field:
        """The statistic of the map :meth:`t_map` gives: a stored map's own (T, F or Z, as
        its format says), a refitted map's T at ``df``."""
        gm = self.study.group_maps.get(contrast)
        subset = self.subset(participants)
        if gm is not None and (self.uses_stored_maps or self.stored_map_applies(contrast, model, subset)):
            return rft.Field(gm.statistic, gm.df_effect, gm.df)
        if self.study.design_rows is not None:
            return self.design_map(contrast, subset)[2]
        return rft.Field("T", 1.0, df)

    def cluster_voxels(self, table: ClusterTable, peak_mm: tuple[float, float, float]) -> tuple[np.ndarray, str]:
        """In-mask voxel indices of the listed cluster containing a coordinate."""
        ijk = tuple(int(np.rint(v)) for v in np.linalg.solve(self.study.affine, [*peak_mm, 1.0])[:3])
        if not all(0 <= i < s for i, s in zip(ijk, self.study.shape, strict=False)):
            raise ValueError(f"({', '.join(f'{v:g}' for v in peak_mm)}) lies outside the image")
        for direction, lab in table.labels.items():
            value = lab[ijk]
            if value:
                return np.nonzero((lab == value)[self.study.mask])[0], direction
        raise ValueError(
            f"no cluster at {table.extent}+ voxels contains ({', '.join(f'{v:g}' for v in peak_mm)}) at T > {table.height:.2f}"
        )

    # -- regression ---------------------------------------------------------------------
    def regress(
        self,
        contrast: str,
        peak_mm: tuple[float, float, float],
        *,
        condition: str,
        covariate: str,
        value: ValueType = "eigenvariate",
        method: Method = "lts",
        directions: tuple[Direction, ...] = ("pos", "neg"),
        threshold: Threshold = Threshold(),
        extent: int = DEFAULT_EXTENT,
        model: ModelName = "cells",
        participants: tuple[str, ...] | None = None,
        table: ClusterTable | None = None,
    ) -> RegressionOutcome:
        """Per-participant values of the cluster containing ``peak_mm`` (in the chosen
        condition) regressed on a participants.tsv column.  ``table``: the cluster table
        of these same settings when the caller has it (else it is computed)."""
        study = self.study
        dr = study.design_rows
        if dr is not None:
            condition = _resolve_name(condition, list(dr.conditions), "condition (a condition column of the design)")
        elif condition not in study.condition_ids:
            raise ValueError(f"unknown condition {condition!r}; known: {', '.join(study.condition_ids)}")
        if covariate not in study.participants.columns:
            raise ValueError(f"participants.tsv has no column {covariate!r}")
        cov = pd.to_numeric(study.participants[covariate], errors="coerce")
        if cov.notna().sum() == 0:
            raise ValueError(f"column {covariate!r} is not numeric")
        subset = self.subset(participants)
        if table is None:
            table = self.clusters(contrast, directions=directions, threshold=threshold, extent=extent, model=model, participants=subset,
                                  label_atlas=None, with_rft=False)
        vox, _ = self.cluster_voxels(table, peak_mm)
        if dr is not None:
            values = self._design_values(subset, vox, dr.conditions.index(condition), value)
        else:
            values = cluster_values(self.participant_data(subset, vox), np.arange(vox.size), study.condition_ids.index(condition), value)
        x = cov.loc[list(subset)].to_numpy(float)
        lts = lts_regression(x, values)
        ols = ols_regression(x, values)
        chosen, other = (lts, ols) if method == "lts" else (ols, lts)
        used = np.isfinite(x) & np.isfinite(values)
        weights = np.full(x.size, np.nan)  # NaN: not used (a missing covariate or value)
        weights[used] = lts.weights if method == "lts" else 1.0  # the final weights of the fit that was asked for
        frame = pd.DataFrame({"participant_id": list(subset), "covariate": x, "value": values, "weight": weights})
        tvec, _ = self.t_map(contrast, model, subset)
        peak_vox = np.asarray(np.nonzero(study.mask)).T[vox[np.argmax(np.abs(tvec[vox]))]]
        peak = tuple(float(v) for v in (study.affine @ [*peak_vox, 1.0])[:3])
        return RegressionOutcome(chosen, other, frame, int(vox.size), peak)  # type: ignore[arg-type]


def _resolve_name(text: str, names: list[str], what: str) -> str:
    """A name from ``names``, given as itself or as its 1-based number."""
    if text in names:
        return text
    if text.isdigit() and 1 <= int(text) <= len(names):
        return names[int(text) - 1]
    raise ValueError(f"unknown {what} {text!r}; known: {', '.join(f'{i + 1} {n}' for i, n in enumerate(names))}")
