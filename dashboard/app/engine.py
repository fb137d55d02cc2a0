"""The app's compute layer: :class:`dashboard.analysis.Analysis` behind small in-process
caches keyed by primitives, with volumes already reoriented to RAS for display.

- ``volume(contrast, model, subset)``: T volume (RAS, float32) and df; cached (LRU).
- ``table(...)``: cluster table (+ RAS label volumes); cached per key, computed with or
  without RFT p-values.  RFT smoothness estimation takes ~1.3 s per new (model, subset),
  so the app first shows a table without RFT p-values ("n/a (re-estimating)") and asks
  for the RFT version in a second callback (see :meth:`rft_ready`).
- ``regression(...)``: per-participant values vs a covariate (Analysis.regress).

Analysis is not thread-safe (it fills dicts of fits); every call into it holds one
lock.  Cache hits do not take the lock, so moving the cursor stays fast while an RFT
estimate runs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dashboard import figures
from dashboard.app.state import Choices
from dashboard.results import Study, load_nifti

if TYPE_CHECKING:  # the statistics stack (scipy.stats: ~0.7 s of imports) loads in the warm-up thread
    from dashboard.analysis import Analysis, Direction, RegressionOutcome, Threshold
    from dashboard.stats.influence import Influence

log = logging.getLogger(__name__)


def _directions(direction: str) -> tuple[Direction, ...]:
    """The signs of T a view's direction asks for: "pos", "neg", else both."""
    if direction == "pos":
        return ("pos",)
    if direction == "neg":
        return ("neg",)
    return ("pos", "neg")


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict = OrderedDict()

    def get(self, key):
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key, value):
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)
        return value


@dataclass(frozen=True)
class TableResult:
    frame: pd.DataFrame  # analysis.CLUSTER_COLUMNS
    labels: dict[str, np.ndarray]  # direction -> RAS int volume
    height: float
    df: float
    with_rft: bool
    footers: dict[str, Any] = field(default_factory=dict)  # direction -> spm_table.Footer (with RFT)


MNI_T1_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"  # ships with nilearn (datasets/data)


def _template_file():
    """nilearn's MNI152 T1 file, found without importing nilearn (~1.5 s of imports)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("nilearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / MNI_T1_FILE
        if path.is_file():
            return path
    return None


def load_template(study: Study) -> np.ndarray | None:
    """MNI152 template (the 1 mm T1 that ships with nilearn) resampled to the study grid
    (trilinear), as RAS uint8 (0-255); None when it cannot be found or read."""
    try:
        from scipy import ndimage

        path = _template_file()
        if path is None:
            raise FileNotFoundError(MNI_T1_FILE)
        img = load_nifti(path)
        src = np.asarray(img.dataobj, dtype=np.float32)
        m = np.linalg.inv(img.affine) @ np.asarray(study.affine, float)  # study voxel -> template voxel
        data = ndimage.affine_transform(src, m[:3, :3], offset=m[:3, 3], output_shape=tuple(study.shape), order=1, mode="constant",
                                        cval=0.0)
        data = np.nan_to_num(data.astype(np.float32))
    except Exception:  # the views fall back to the mask
        log.exception("MNI template unavailable; slices show the analysis mask")
        return None
    top = float(np.percentile(data[data > 0], 99.5)) if (data > 0).any() else 1.0
    scaled = np.clip(data / top * 255.0, 0, 255).astype(np.uint8)
    return figures.to_ras(scaled, study.affine)[0]


class Engine:
    """Cached answers for one study."""

    def __init__(self, study: Study, *, template: bool = True, store=None):
        self.study = study
        # store: the app's flask-caching Cache (Redis or file system), shared by the
        # server's processes for RFT smoothness estimates
        # one fit in memory (~90 MB on the sample; the RSS budget is 600 MB): T volumes,
        # tables and regressions stay cached below, so going back is mostly cache hits
        self._store = store
        self._analysis: Analysis | None = None
        self.lock = threading.RLock()
        self.mask, self.grid = figures.to_ras(study.mask, study.affine)
        # the template (nilearn import + resampling, ~1 s) loads in a thread, in parallel
        # with the warm-up fits and the browser loading the page; first use waits for it
        self._busy = 0  # interactive callbacks running (see interactive())
        self._busy_cv = threading.Condition()
        self._template: np.ndarray | None = None
        self._template_thread: threading.Thread | None = None
        if template:
            self._template_thread = threading.Thread(target=self._load_template, daemon=True, name="cue-template")
            self._template_thread.start()
        else:
            self._template = self._mask_template()
        self.all_ids = tuple(study.participant_ids)
        self._volumes = _LRU(16)
        self._tables = _LRU(32)
        self._regressions = _LRU(64)
        self._influences = _LRU(32)
        self._svc_masks = _LRU(8)
        self._shown = _LRU(8)
        self._core_tables = _LRU(4)  # analysis.ClusterTable (study-orientation labels) of recent tables
        self.images = _LRU(96)  # PNG data URIs of drawn maps (views), a few kB each
        self._rft_ready: set = set()
        self._preload_started = False
        _reset_locks_after_fork(self)

    @functools.cached_property
    def choices(self) -> Choices:
        """What a view state may hold for this study (every request's state is checked against it)."""
        return Choices.of(self.study)

    @property
    def analysis(self) -> Analysis:
        """The core's :class:`~dashboard.analysis.Analysis`, created (and the statistics
        stack imported) on first use, so the server answers HTTP before scipy is loaded."""
        if self._analysis is None:
            with self.lock:
                if self._analysis is None:
                    from dashboard.analysis import Analysis

                    self._analysis = Analysis(self.study, store=self._store, max_cached_fits=1)
        return self._analysis

    def _mask_template(self) -> np.ndarray:
        return self.mask.astype(np.uint8) * 160

    def _load_template(self) -> None:
        tpl = load_template(self.study)
        self._template = tpl if tpl is not None else self._mask_template()

    @property
    def template(self) -> np.ndarray:
        """RAS uint8 background of the slices (MNI152, else the analysis mask)."""
        if self._template is None and self._template_thread is not None:
            self._template_thread.join()
        if self._template is None:  # the loader thread failed
            self._template = self._mask_template()
        return self._template

    # -- interactive callbacks first -------------------------------------------------
    def interactive(self):
        """Context manager around a callback the user waits for; :meth:`wait_interactive`
        lets slow background work (RFT re-estimates) start after them."""
        import contextlib

        @contextlib.contextmanager
        def cm():
            with self._busy_cv:
                self._busy += 1
            try:
                yield
            finally:
                with self._busy_cv:
                    self._busy -= 1
                    self._busy_cv.notify_all()
        return cm()

    def wait_interactive(self, timeout: float = 3.0) -> None:
        with self._busy_cv:
            self._busy_cv.wait_for(lambda: self._busy <= 0, timeout=timeout)

    # -- keys ------------------------------------------------------------------------
    def subset(self, participants) -> tuple[str, ...]:
        return self.analysis.subset(None if participants is None else list(participants))

    def _model(self, model: str) -> str:
        return model if self.study.has_participant_images else "cells"

    # -- maps ------------------------------------------------------------------------
    def volume(self, contrast: str, model: str, subset: tuple[str, ...]) -> tuple[np.ndarray, float]:
        """RAS float32 T volume (NaN outside the mask) and its df."""
        key = (contrast, self._model(model), subset)
        hit = self._volumes.get(key)
        if hit is not None:
            return hit
        with self.lock:
            hit = self._volumes.get(key)
            if hit is not None:
                return hit
            tvec, df = self.analysis.t_map(contrast, key[1], subset)  # type: ignore[arg-type]
            vol = figures.to_ras(self.study.unmask(tvec.astype(np.float32)), self.study.affine)[0]
            release_memory()  # a new fit may have replaced an old one
            return self._volumes.put(key, (vol, float(df)))

    def vmax(self, contrasts, model: str, subset: tuple[str, ...]) -> float:
        """Colour-scale limit: max |T| over the given contrasts (at least 1)."""
        m = max(float(np.nanmax(np.abs(self.volume(c, model, subset)[0]))) for c in contrasts)
        return max(m, 1.0)

    def field(self, state: dict, df: float):
        """The statistic of the state's map (T at ``df`` for a refit; a stored map's own
        T, F or Z)."""
        return self.analysis.map_field(state["contrast"], self._model(state["model"]), self.subset(state["participants"]), df)  # type: ignore[arg-type]

    def height(self, state: dict, df: float) -> float:
        """The height threshold u of the state on its map's statistic: a value, or p
        uncorrected (``spm_u``) or p FWE (``spm_uc``, with the smoothness of this
        contrast, model and subset)."""
        threshold = self.threshold(state)
        field = self.field(state, df)
        if not threshold.needs_smoothness:
            return threshold.height(df, None, field)
        subset = self.subset(state["participants"])
        with self.lock:
            smooth = self.analysis.smoothness(state["contrast"], self._model(state["model"]), subset)  # type: ignore[arg-type]
        return threshold.height(df, smooth, field)

    def describe(self, state: dict, df: float) -> str:
        """'df 84 · T > 3.19 (p < 0.001 unc.)', '… (p < 0.05 FWE)', '… T > 4.00 (p < 6.9e-05 unc.)',
        'df [2, 84] · F > 7.51 (…)' or 'Gaussian · Z > 3.09 (…)'."""
        u = self.height(state, df)
        f = self.field(state, df)
        dof = {"T": f"df {df:g}", "F": f"df [{f.df_effect:g}, {f.df:g}]", "Z": "Gaussian"}[f.stat]
        if state["use_t"]:
            return f"{dof} · {f.stat} > {u:.2f} (p < {float(f.sf(u)):.2g} unc.)"
        kind = "FWE" if state.get("p_kind") == "fwe" else "unc."
        return f"{dof} · {f.stat} > {u:.2f} (p < {float(state['p_unc']):g} {kind})"

    def threshold(self, state: dict) -> Threshold:
        from dashboard.analysis import Threshold

        if state["use_t"]:
            return Threshold(t=float(state["t"]))
        if state.get("p_kind") == "fwe":
            return Threshold(p_fwe=float(state["p_unc"]))
        return Threshold(p_unc=float(state["p_unc"]))

    # -- cluster tables --------------------------------------------------------------
    def _rft_key(self, contrast: str, model: str, subset: tuple[str, ...]):
        return (model, subset, contrast if model == "paired" else "")

    def rft_ready(self, contrast: str, model: str, subset: tuple[str, ...]) -> bool:
        """True when RFT p-values come without a new smoothness estimate."""
        if not self.study.can_refit:
            return True
        if self.analysis.stored_smoothness(contrast, self._model(model), subset) is not None:
            return True  # the sidecar's estimate: nothing to wait for
        return self._rft_key(contrast, self._model(model), subset) in self._rft_ready

    def table(self, state: dict, *, with_rft: bool) -> TableResult:
        contrast, model = state["contrast"], self._model(state["model"])
        subset = self.subset(state["participants"])
        directions = _directions(state["direction"])
        threshold = self.threshold(state)
        svc = tuple(state.get("svc") or ())
        key = (contrast, model, subset, directions, threshold, int(state["k"]), svc, with_rft)
        hit = self._tables.get(key)
        if hit is not None:
            return hit
        if not with_rft:  # an RFT version is as good
            hit = self._tables.get((*key[:-1], True))
            if hit is not None:
                return hit
        with self.lock:
            self.volume(contrast, model, subset)  # fit under the same lock
            ct = self.analysis.clusters(contrast, directions=directions, threshold=threshold, extent=int(state["k"]),
                                        model=model, participants=subset, with_rft=with_rft,  # type: ignore[arg-type]
                                        svc_mask=self.svc_mask(svc))
            if with_rft:
                self._rft_ready.add(self._rft_key(contrast, model, subset))
            self._core_tables.put(key[:-1], ct)  # for the regression of a cluster of this table
        labels = {d: _small_int(figures.to_ras(lab, self.study.affine)[0]) for d, lab in ct.labels.items()}
        if with_rft:
            release_memory()  # smoothness estimation leaves large freed temporaries
        return self._tables.put(key, TableResult(ct.table, labels, ct.height, ct.df, with_rft and ct.smoothness is not None,
                                                   dict(ct.footers)))

    def shown(self, state: dict) -> np.ndarray:
        """RAS T volume of what survives the threshold *and* the extent (the listed
        clusters, in the asked direction(s)); NaN elsewhere."""
        result = self.table(state, with_rft=False)
        key = (id(result),)
        hit = self._shown.get(key)
        if hit is not None and hit[0] is result:
            return hit[1]
        vol, _ = self.volume(state["contrast"], state["model"], self.subset(state["participants"]))
        keep = np.zeros(vol.shape, bool)
        for lab in result.labels.values():
            keep |= lab > 0
        out = np.where(keep, vol, np.nan).astype(np.float32)
        self._shown.put(key, (result, out))
        return out

    def cluster_mask(self, result: TableResult, cluster: dict | None) -> np.ndarray | None:
        """RAS boolean volume of the selected cluster (found by its peak), or None."""
        if not cluster or cluster.get("direction") not in result.labels:
            return None
        lab = result.labels[cluster["direction"]]
        i, j, k = self.grid.index_of(tuple(cluster["peak"]))
        value = lab[i, j, k]
        return (lab == value) if value else None

    def svc_mask(self, regions: tuple[str, ...]) -> np.ndarray | None:
        """Small-volume ROI on the study grid: the union of AAL regions (None: whole volume)."""
        if not regions:
            return None
        hit = self._svc_masks.get(regions)
        if hit is None:
            from dashboard.atlas import region_mask

            hit = self._svc_masks.put(regions, region_mask(list(regions), self.study.shape, self.study.affine, "aal"))
        return hit

    # -- regression ------------------------------------------------------------------
    def _regression_key(self, state: dict) -> tuple:
        return (state["contrast"], state["model"], self.subset(state["participants"]), _directions(state["direction"]), self.threshold(state),
                int(state["k"]), tuple(state.get("svc") or ()), tuple(state["cluster"]["peak"]), state["condition"], state["covariate"],
                state["value"])

    def influence(self, state: dict) -> tuple[RegressionOutcome, Influence]:
        """The state's regression and each participant's influence on it (jackknife
        slopes, Cook's distance, DFBETAS; LTS refitted without each: ~50 ms, cached)."""
        from dashboard.stats.influence import influence

        out = self.regression(state)
        key = self._regression_key(state)
        hit = self._influences.get(key)
        if hit is None:
            frame = out.participants
            hit = self._influences.put(key, influence(frame["covariate"].to_numpy(float), frame["value"].to_numpy(float)))
        return out, hit

    def regression(self, state: dict) -> RegressionOutcome:
        cluster = state["cluster"]
        subset = self.subset(state["participants"])
        directions = _directions(state["direction"])
        key = self._regression_key(state)
        hit = self._regressions.get(key)
        if hit is not None:
            return hit
        table_key = (state["contrast"], self._model(state["model"]), subset, directions, self.threshold(state), int(state["k"]),
                     tuple(state.get("svc") or ()))
        with self.lock:
            out = self.analysis.regress(state["contrast"], tuple(cluster["peak"]), condition=state["condition"],
                                        covariate=state["covariate"], value=state["value"], method="lts",
                                        directions=directions, threshold=self.threshold(state), extent=int(state["k"]),
                                        model=state["model"], participants=subset, table=self._core_tables.get(table_key))
        return self._regressions.put(key, out)

    # -- start-up --------------------------------------------------------------------
    def warm(self, state: dict) -> None:
        """Compute the default view's maps and table (with RFT) ahead of the first
        request; errors are logged (the callbacks will report them)."""
        try:
            subset = self.subset(state["participants"])
            for c in self.study.contrasts:
                self.volume(c.id, state["model"], subset)
            self.table(state, with_rft=True)
        except Exception:
            log.exception("warm-up failed")
        release_memory()

    def preload_participant_data(self, delay: float = 2.0) -> None:
        """Read the participant images (~0.7 s; subsets and regressions need them, the
        default view shows the stored group maps) in a thread, ``delay`` seconds from
        now: called once the first view is served, so that the reading does not compete
        with the browser drawing the first page.  A view that needs them sooner waits."""
        if not self.study.can_refit or self._preload_started:
            return
        self._preload_started = True

        def read() -> None:
            try:
                if self.study.design_rows is not None:
                    self.study.design_data()
                else:
                    self.study.participant_data  # noqa: B018 - read once, cached on the study
            except Exception:  # reported when a view needs them
                log.exception("participant images")
            release_memory()

        timer = threading.Timer(delay, read)
        timer.daemon = True
        timer.start()


def _reset_locks_after_fork(engine: Engine) -> None:
    """A background callback runs in a forked copy of the server (Dash's
    DiskcacheManager), which has only the forking thread: a lock another thread held at
    the fork would be held forever there.  The copy gets fresh locks."""
    import os
    import weakref

    ref = weakref.ref(engine)

    def reset() -> None:
        alive = ref()
        if alive is not None:
            alive.lock = threading.RLock()
            alive._busy = 0
            alive._busy_cv = threading.Condition()

    os.register_at_fork(after_in_child=reset)


def _small_int(labels: np.ndarray) -> np.ndarray:
    """Cluster labels in the smallest integer type that holds them (memory of cached tables)."""
    top = int(labels.max()) if labels.size else 0
    return labels.astype(np.int16) if top < np.iinfo(np.int16).max else labels


def release_memory() -> None:
    """Give freed heap back to the OS (glibc keeps large freed arenas; RSS otherwise
    only grows after fits and smoothness estimates).  No-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
