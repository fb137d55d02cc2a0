"""Permutation inference on a loaded study: which images are sign-flipped for a
contrast, one request's null distribution (whole, or one chunk of it for a worker), and
the permutation p-values added to a cluster table beside SPM's RFT columns.

Supported designs are those whose T is a one-sample t of per-participant contrast
images, which is what a sign-flip test permutes (SnPM's and ``randomise -1``'s test):

- a folder of participant images with the ``paired`` model: each participant's
  contrast image is the contrast's weights applied to their condition images;
- a package's design (an SPM second level) whose contrast, refitted, equals the
  one-sample t of per-participant images ``z_p = sum_r lambda_r y_r`` over that
  participant's rows, ``lambda = c' pinv(X)``: a one-sample t-test, a paired t-test, a
  within-participant difference.  This is checked numerically on the design's own T
  map, not read off its column names; designs with covariates, groups or a pooled
  error over other cells are refused with a message saying so.

The pooled-error models (``cells``, ``subjects``) are not sign-flip tests: the request is
refused with a hint to use the ``paired`` model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.analysis import Analysis, ClusterTable
from dashboard.stats import permutation as perm
from dashboard.stats.permutation import NullDistribution, PermutationUnsupported

__all__ = ["PermutationRequest", "PermutationResult", "PermutationUnsupported", "sign_flip_images", "check_supported", "run", "run_chunk",
           "chunk_bounds", "add_columns", "PERM_COLUMNS"]

PERM_COLUMNS = ["p_fwe_perm_peak", "p_fwe_perm_cluster", "p_fwe_perm_mass"]
TFCE_COLUMN = "p_fwe_perm_tfce"
MASS_COLUMN = "cluster_mass"  # the observed cluster's mass, sum of T - u (what p_fwe_perm_mass is of)
_T_CHECK_RTOL = 1e-4  # a stored map is float32: agreement to 1e-4 relative is equality


@dataclass(frozen=True)
class PermutationRequest:
    """One permutation question: what is flipped, at which cluster-forming height, how
    many flips from which seed.  ``height`` is the T threshold of the cluster table."""

    contrast: str
    height: float
    directions: tuple[str, ...] = ("pos",)
    model: str = "paired"
    participants: tuple[str, ...] = ()
    n_perm: int = perm.DEFAULT_N_PERM
    seed: int = 0
    tfce: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.height) or self.height <= 0:
            raise ValueError(f"the cluster-forming threshold must be a positive T, got {self.height:g}")
        if not self.directions or set(self.directions) - set(perm.DIRECTIONS):
            raise ValueError(f"directions must be among {perm.DIRECTIONS}, got {self.directions}")
        if not 1 <= self.n_perm <= perm.MAX_N_PERM:
            raise ValueError(f"the number of permutations must be between 1 and {perm.MAX_N_PERM}, got {self.n_perm}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"the seed must be an integer from 0 to 2^32 - 1, got {self.seed}")

    def key(self, study_identity: str) -> str:
        """Cache key: the study (its identity: folder and images' mtimes) and every field."""
        fields = asdict(self)
        fields["height"] = repr(float(self.height))
        text = json.dumps([study_identity, fields], sort_keys=True)
        return "cue-permute:" + hashlib.sha1(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "directions": list(self.directions), "participants": list(self.participants)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PermutationRequest:
        return PermutationRequest(str(data["contrast"]), float(data["height"]), tuple(data["directions"]), str(data["model"]),
                                  tuple(data["participants"]), int(data["n_perm"]), int(data["seed"]), bool(data["tfce"]))


@dataclass
class PermutationResult:
    """A finished (or cancelled) null distribution and what it is of."""

    request: PermutationRequest
    null: NullDistribution
    n_planned: int  # flips asked for after enumeration: 2**N when that is fewer than n_perm
    exhaustive: bool
    seconds: float

    @property
    def complete(self) -> bool:
        return self.null.n == self.n_planned

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request.to_dict(), "null": self.null.to_dict(), "n_planned": self.n_planned,
                "exhaustive": self.exhaustive, "seconds": self.seconds}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PermutationResult:
        return PermutationResult(PermutationRequest.from_dict(data["request"]), NullDistribution.from_dict(data["null"]),
                                 int(data["n_planned"]), bool(data["exhaustive"]), float(data["seconds"]))


def sign_flip_images(analysis: Analysis, contrast: str, model: str, participants: tuple[str, ...]) -> np.ndarray:
    """Per-participant contrast images ``(n, n_voxels)`` whose one-sample t is the map's
    T, or :class:`PermutationUnsupported` saying why this design is not a sign-flip test."""
    study = analysis.study
    subset = analysis.subset(list(participants) if participants else None)
    if study.design_rows is None and not study.has_participant_images:
        raise PermutationUnsupported("permutation inference needs the participants' images; this folder has group maps only")
    if study.design_rows is None:
        if model != "paired":
            raise PermutationUnsupported(
                f"permutation inference sign-flips per-participant contrast images (a one-sample t, the paired model); "
                f"the {model!r} model pools the error over other conditions: choose the paired model")
        weights = study.contrast(contrast).weights
        w = np.array([weights.get(c, 0.0) for c in study.condition_ids], np.float64)
        data = analysis.participant_data(subset)
        return np.tensordot(data, w, axes=([1], [0]))
    return _design_images(analysis, contrast, subset)


def check_supported(analysis: Analysis, contrast: str, model: str, participants: tuple[str, ...]) -> None:
    """:class:`PermutationUnsupported` unless the question is a sign-flip test (cheap for a
    folder of participant images; a package design is checked on its T map)."""
    study = analysis.study
    if study.design_rows is None:
        if not study.has_participant_images:
            sign_flip_images(analysis, contrast, model, participants)  # raises
        elif model != "paired":
            sign_flip_images(analysis, contrast, model, participants)  # raises
        study.contrast(contrast)
        analysis.subset(list(participants) if participants else None)
        return
    sign_flip_images(analysis, contrast, model, participants)


def _design_images(analysis: Analysis, contrast: str, subset: tuple[str, ...]) -> np.ndarray:
    """A package design's per-participant images for a T contrast, checked against its T."""
    study = analysis.study
    dr = study.design_rows
    assert dr is not None
    gm = study.group_maps.get(contrast)
    if gm is not None and gm.statistic != "T":
        raise PermutationUnsupported(f"contrast {contrast!r} is an {gm.statistic} contrast; sign flips test T contrasts")
    wanted = set(subset)
    rows = [i for i, p in enumerate(dr.participants) if p in wanted]
    x = dr.x[rows]
    keep = np.abs(x).sum(axis=0) > 0
    c = np.asarray(dr.contrasts[contrast], np.float64)
    if c.ndim != 1:
        raise PermutationUnsupported(f"contrast {contrast!r} has several rows (an F contrast); sign flips test T contrasts")
    lam = c[keep] @ np.linalg.pinv(x[:, keep])  # c'b = sum_r lam_r y_r
    y = study.design_data()[rows]
    owners = [dr.participants[i] for i in rows]
    images = np.zeros((len(subset), y.shape[1]))
    for k, p in enumerate(subset):
        mine = [r for r, o in enumerate(owners) if o == p]
        images[k] = lam[mine] @ y[mine].astype(np.float64)
    t_design, _ = analysis.t_map(contrast, "cells", subset)
    t_flip = perm.one_sample_t(images, np.ones((1, len(subset)), np.int8))[0]
    ok = np.isfinite(t_design) & (np.abs(t_design) > 1e-6)
    if not ok.any() or not np.allclose(t_flip[ok], t_design[ok], rtol=_T_CHECK_RTOL, atol=1e-4):
        worst = float(np.max(np.abs(t_flip[ok] - t_design[ok]))) if ok.any() else float("nan")
        raise PermutationUnsupported(
            f"this design's T for {contrast!r} is not a one-sample t of per-participant images (it differs by up to "
            f"{worst:.3g}: covariates, groups or an error pooled over other cells); sign-flip permutation supports "
            f"one-sample and paired designs")
    return images


def chunk_bounds(n_flips: int, n_chunks: int) -> list[tuple[int, int]]:
    """Split flips ``[0, n_flips)`` into ``n_chunks`` contiguous runs (for workers)."""
    n_chunks = max(1, min(n_chunks, n_flips))
    edges = np.linspace(0, n_flips, n_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def plan(analysis: Analysis, request: PermutationRequest) -> tuple[np.ndarray, np.ndarray, bool]:
    """The images to flip and the flips: ``(images, signs, exhaustive)``."""
    images = sign_flip_images(analysis, request.contrast, request.model, request.participants)
    signs, exhaustive = perm.flip_signs(images.shape[0], request.n_perm, request.seed)
    return images, signs, exhaustive


def run_chunk(analysis: Analysis, request: PermutationRequest, start: int, stop: int,
              on_batch: Callable[[int], bool] | None = None, n_jobs: int = 1) -> NullDistribution:
    """The null of flips ``[start, stop)`` of the request (a worker's share)."""
    images, signs, _ = plan(analysis, request)
    return perm.null_distribution(images, perm.Grid(analysis.study.mask), signs[start:stop], request.height,
                                  directions=request.directions, tfce=request.tfce, on_batch=on_batch, n_jobs=n_jobs)


def run(analysis: Analysis, request: PermutationRequest, on_batch: Callable[[int, int], bool] | None = None,
        n_jobs: int = 1) -> PermutationResult:
    """The whole null of a request in this process; ``on_batch(done, total)`` reports
    progress and returns False to cancel (the result then holds the flips done)."""
    import time

    started = time.perf_counter()
    images, signs, exhaustive = plan(analysis, request)
    total = signs.shape[0]
    null = perm.null_distribution(images, perm.Grid(analysis.study.mask), signs, request.height, directions=request.directions,
                                  tfce=request.tfce, on_batch=None if on_batch is None else (lambda done: on_batch(done, total)),
                                  n_jobs=n_jobs)
    return PermutationResult(request, null, total, exhaustive, time.perf_counter() - started)


def observed(analysis: Analysis, request: PermutationRequest) -> perm.Observed:
    """The observed statistics computed as the null's (the identity flip)."""
    images = sign_flip_images(analysis, request.contrast, request.model, request.participants)
    return perm.observed(images, perm.Grid(analysis.study.mask), request.height, tfce=request.tfce)


def add_columns(analysis: Analysis, table: ClusterTable | pd.DataFrame, result: PermutationResult, obs: perm.Observed | None = None,
                height: float | None = None) -> pd.DataFrame:
    """The cluster table with permutation FWE p-values beside SPM's: ``p_fwe_perm_peak``
    (each row's peak T against the null of the maximum T), ``p_fwe_perm_cluster`` and
    ``p_fwe_perm_mass`` (the row's cluster: extent and mass at the table's height against
    the null of the largest cluster; on every row of the cluster, as ``p_fwe_cluster``),
    and ``p_fwe_perm_tfce`` with TFCE (the peak's TFCE against the null of the maximum
    TFCE), and ``cluster_mass`` (the observed mass the mass p is of).  Rows of a
    direction the permutation did not cover get NaN.  ``table``: a
    :class:`ClusterTable`, or its frame with the ``height`` it was made at."""
    request = result.request
    frame, u = (table.copy(), height) if isinstance(table, pd.DataFrame) else (table.table.copy(), table.height)
    if u is None or not math.isclose(u, request.height, rel_tol=1e-9):
        raise ValueError(f"the table's height T = {u} is not the permutation's {request.height:.4g}")
    obs = obs or observed(analysis, request)
    study = analysis.study
    position = np.full(study.mask.shape, -1, np.int64)
    position[study.mask] = np.arange(int(study.mask.sum()))
    columns = PERM_COLUMNS + ([TFCE_COLUMN] if request.tfce else []) + [MASS_COLUMN]
    values = {c: np.full(len(frame), np.nan) for c in columns}
    inverse = np.linalg.inv(study.affine)
    for i, row in enumerate(frame.itertuples(index=False)):
        direction = str(row.direction)
        if direction not in request.directions:
            continue
        ijk = tuple(int(v) for v in np.rint(inverse @ [row.x, row.y, row.z, 1.0])[:3])
        if not all(0 <= a < s for a, s in zip(ijk, study.mask.shape, strict=True)) or position[ijk] < 0:
            continue
        v = int(position[ijk])
        sign = 1.0 if direction == "pos" else -1.0
        values["p_fwe_perm_peak"][i] = result.null.p_fwe(direction, "max_t", sign * obs.t[v])[0]
        if request.tfce and obs.tfce is not None:
            values[TFCE_COLUMN][i] = result.null.p_fwe(direction, "max_tfce", sign * obs.tfce[v])[0]
        label = int(obs.clusters.labels[direction][v])
        if label:
            values["p_fwe_perm_cluster"][i] = result.null.p_fwe(direction, "max_extent", obs.clusters.extent[direction][label])[0]
            values["p_fwe_perm_mass"][i] = result.null.p_fwe(direction, "max_mass", obs.clusters.mass[direction][label])[0]
            values[MASS_COLUMN][i] = obs.clusters.mass[direction][label]
    for c in columns:
        frame[c] = values[c]
    return frame


def tfce_fwe_map(result: PermutationResult, obs: perm.Observed, direction: str) -> np.ndarray:
    """Voxelwise TFCE FWE p of one direction (in-mask vector; 1 where the TFCE is 0)."""
    if obs.tfce is None or not result.request.tfce:
        raise ValueError("this permutation result has no TFCE")
    sign = 1.0 if direction == "pos" else -1.0
    values = np.maximum(sign * obs.tfce.astype(np.float64), 0.0)
    p = result.null.p_fwe(direction, "max_tfce", values)
    p[values <= 0] = 1.0
    return p
