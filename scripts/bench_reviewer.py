"""Benchmark of the reviewer's checks (issue 14) on the sample study, after its maps are
loaded (group maps read, fits and T maps cached), with a peer or naive path measured in
the same run, interleaved with ours so both see the same machine load:

(a) claim check of the sample's published table (21 rows, three contrasts, both
    directions) with :func:`dashboard.claims.check_table`:
    - "clusters found": the claims cluster cache cleared before every call, so each
      call finds the clusters of the five (contrast, direction)s its rows ask for (what
      a check at new settings costs);
    - "clusters kept": the cache kept (a second check at the same settings);
    - naive: the pre-optimisation ``check_table`` (per-row pandas and scipy.stats, both
      directions of every contrast, nothing kept between calls), i.e.
      ``dashboard/claims.py`` as it was at commit ``PRE_OPTIMISATION`` (read with
      ``git show`` and run on the same Analysis); its rows are compared with ours.
(b) OLS influence of the default view's cluster regression (contrast, covariate and
    condition of the folder's ViewDefaults, the cluster at the stored map's maximum):
    ``dashboard.stats.influence.influence(x, y, with_lts=False)`` against the peer path
    statsmodels ``OLS(y, [1, x]).fit().get_influence()`` taking Cook's distance,
    DFBETAS, leverage and the leave-one-out slopes (params - dfbeta); the numbers are
    compared. Also ``influence`` with the LTS leave-one-out refits.
(d) the literature peaks' distance table (:func:`dashboard.claims.peak_distances`, the
    sample's 7 literature peaks against the default contrast, both directions), with the
    clusters found and kept as in (a).
A calibration line times one ``scipy.ndimage.maximum_filter`` of a 79 x 95 x 79 volume
(the step that dominates finding clusters): this machine's speed varies by 2x over
minutes (shared host), so compare runs through it and through the ratios.
(c) leave-one-out cluster survival of that cluster (``dashboard.survival.leave_one_out``,
    imported lazily: "survival: not available" when it is missing): total time, time to
    the first progress call and to the first finished refit.

Usage: python scripts/bench_reviewer.py [--repeats 20] [--survival-repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dashboard import claims  # noqa: E402
from dashboard.analysis import Analysis, Threshold  # noqa: E402
from dashboard.formats import open_study  # noqa: E402
from dashboard.stats.influence import influence  # noqa: E402

SAMPLE = REPO / "sample_results"
PRE_OPTIMISATION = "44ca811"  # dashboard/claims.py before the claim check was made faster
TARGETS_MS = {"claims": 200.0, "ols": 20.0, "survival": 10_000.0}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def noop() -> None:
    pass


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def interleaved(paths: dict[str, tuple[Callable[[], object], Callable[[], object]]], repeats: int) -> dict[str, list[float]]:
    """ms of each path (prepare, run) per repeat, the paths taking turns; one warm-up each."""
    for prepare, run in paths.values():
        prepare()
        run()
    out: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, (prepare, run) in paths.items():
            prepare()
            out[name].append(timed(run))
    return out


def calibrate() -> float:
    """Median ms of one maximum filter of a sample-sized volume (this machine's speed now)."""
    from scipy import ndimage

    from dashboard.stats.clusters import _CONN18

    volume = np.random.default_rng(0).normal(size=(79, 95, 79))
    return statistics.median(timed(lambda: ndimage.maximum_filter(volume, footprint=_CONN18, mode="constant", cval=-np.inf))
                             for _ in range(15))


def old_claims() -> Any | None:
    """dashboard/claims.py of PRE_OPTIMISATION as a module (None without git)."""
    try:
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{PRE_OPTIMISATION}:dashboard/claims.py"], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims_pre_optimisation.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("claims_pre_optimisation", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return module


def default_cluster(study: Any, analysis: Analysis) -> tuple[str, tuple[float, float, float], str, str]:
    """(contrast, peak, condition, covariate) of the default view: ViewDefaults, the stored
    map's maximum (where the app's cursor starts)."""
    defaults = study.view_defaults
    contrast = str(defaults.get("Contrast") or study.contrasts[0].id)
    values = study.group_map(contrast)
    ijk = np.argwhere(study.mask)[int(np.nanargmax(values))]
    x, y, z = (float(v) for v in (study.affine @ [*ijk, 1.0])[:3])
    return contrast, (x, y, z), str(defaults["Condition"]), str(defaults["Covariate"])


def statsmodels_influence(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    import statsmodels.api as sm

    fit = sm.OLS(y, sm.add_constant(x)).fit()
    inf = fit.get_influence()
    return {"cooks": np.asarray(inf.cooks_distance[0]), "dfbetas": np.asarray(inf.dfbetas[:, 1]), "leverage": np.asarray(inf.hat_matrix_diag),
            "loo_slope": np.asarray(fit.params[1] - inf.dfbeta[:, 1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="timed repeats of (a) and (b), >= 20 for the medians quoted")
    ap.add_argument("--survival-repeats", type=int, default=3, help="timed runs of (c) (each is 22 refits)")
    ap.add_argument("--quick", action="store_true", help="5 repeats, 1 survival run (a smoke test, not for quoting)")
    args = ap.parse_args()
    repeats = 5 if args.quick else args.repeats
    survival_repeats = 1 if args.quick else args.survival_repeats

    calibration = [calibrate()]
    study = open_study(SAMPLE, check_data=False)
    analysis = Analysis(study)
    published = study.tables["published_clusters"]
    threshold = Threshold()
    rows: list[tuple[str, list[float], str, list[float] | None, float | None]] = []  # name, ours, peer name, peer, target

    # (a) claim check -----------------------------------------------------------------
    ours_rows, line = claims.check_table(analysis, published, threshold=threshold)  # loads the maps (and the atlas)
    old = old_claims()
    paths: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "found": (claims.clear_cache, lambda: claims.check_table(analysis, published, threshold=threshold)),
        "kept": (noop, lambda: claims.check_table(analysis, published, threshold=threshold)),
    }
    same = None
    if old is not None:
        naive_rows, naive_line = old.check_table(analysis, published, threshold=threshold)
        try:
            pd.testing.assert_frame_equal(ours_rows, naive_rows, check_exact=True)
            same = naive_line == line
        except AssertionError:
            same = False
        paths["naive"] = (noop, lambda: old.check_table(analysis, published, threshold=threshold))
    t = interleaved(paths, repeats)
    naive = t.get("naive")
    rows.append(("claim check, 21 rows, clusters found", t["found"], "pre-optimisation check_table", naive, TARGETS_MS["claims"]))
    rows.append(("claim check, 21 rows, clusters kept", t["kept"], "pre-optimisation check_table", naive, TARGETS_MS["claims"]))

    # (d) literature peaks -----------------------------------------------------------
    literature = study.tables["literature_peaks"]
    view = str(study.view_defaults.get("Contrast") or study.contrasts[0].id)

    def distances() -> object:
        return claims.peak_distances(analysis, literature, contrast=view, directions=("pos", "neg"), threshold=threshold)

    t = interleaved({"found": (claims.clear_cache, distances), "kept": (noop, distances)}, repeats)
    rows.append(("literature distances, 7 rows, clusters found", t["found"], "", None, None))
    rows.append(("literature distances, 7 rows, clusters kept", t["kept"], "", None, None))

    # (b) influence -------------------------------------------------------------------
    contrast, peak, condition, covariate = default_cluster(study, analysis)
    reg = analysis.regress(contrast, peak, condition=condition, covariate=covariate, threshold=threshold)
    x = reg.participants["covariate"].to_numpy(float)
    y = reg.participants["value"].to_numpy(float)
    ours = influence(x, y, with_lts=False)
    peer = statsmodels_influence(x, y)
    agree = max(float(np.nanmax(np.abs(ours.cooks_distance - peer["cooks"]))), float(np.nanmax(np.abs(ours.dfbetas_slope - peer["dfbetas"]))),
                float(np.nanmax(np.abs(ours.leverage - peer["leverage"]))), float(np.nanmax(np.abs(ours.loo_slope - peer["loo_slope"]))))
    t = interleaved({"ols": (noop, lambda: influence(x, y, with_lts=False)), "sm": (noop, lambda: statsmodels_influence(x, y))},
                    max(repeats, 50))
    rows.append((f"OLS influence, n={x.size}", t["ols"], "statsmodels OLSInfluence", t["sm"], TARGETS_MS["ols"]))
    t = interleaved({"lts": (noop, lambda: influence(x, y, with_lts=True))}, repeats)
    rows.append((f"influence with LTS leave-one-out, n={x.size}", t["lts"], "", None, None))

    # (c) leave-one-out cluster survival ----------------------------------------------
    survival_line = None
    try:
        from dashboard.survival import leave_one_out  # written in parallel: may be missing
    except ImportError:
        leave_one_out = None
    first_call: list[float] = []
    first_refit: list[float] = []
    totals: list[float] = []
    if leave_one_out is None:
        survival_line = "survival: not available"
    else:
        for run in range(survival_repeats + 1):  # the first run warms up
            marks: dict[str, float] = {}
            t0 = time.perf_counter()

            def progress(done: int, total: int, marks: dict[str, float] = marks, t0: float = t0) -> None:
                now = (time.perf_counter() - t0) * 1000.0
                marks.setdefault("first", now)
                if done >= 1:
                    marks.setdefault("refit", now)

            result = leave_one_out(analysis, contrast, peak, direction="pos", threshold=threshold, extent=10, model="cells",
                                   participants=None, progress=progress)
            total_ms = (time.perf_counter() - t0) * 1000.0
            if run:
                totals.append(total_ms)
                first_call.append(marks.get("first", float("nan")))
                first_refit.append(marks.get("refit", float("nan")))
        rows.append((f"leave-one-out survival, {len(study.participant_ids)} refits, cells", totals, "", None, TARGETS_MS["survival"]))
        summary = getattr(result, "summary", None)
        if isinstance(summary, dict) and summary.get("text"):
            survival_line = str(summary["text"])

    calibration.append(calibrate())

    # report --------------------------------------------------------------------------
    print("cue-dashboard reviewer-checks benchmark (sample_results, maps loaded)")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    print(f"calibration: scipy.ndimage.maximum_filter of a 79x95x79 volume (18-connectivity): median {calibration[0]:.1f} ms "
          f"before, {calibration[1]:.1f} ms after")
    print(f"repeats: {repeats} (claim check), {max(repeats, 50)} (OLS influence), {survival_repeats} (survival), after one warm-up each")
    print()
    print(f"{'what':<46}{'median ms':>10}{'p95 ms':>9}{'peer/naive':>30}{'median ms':>10}{'ratio':>8}  {'target':<10}status")
    for name, ours_ms, peer_name, peer_ms, target in rows:
        med = statistics.median(ours_ms)
        p95 = pct(ours_ms, 0.95)
        peer_med = statistics.median(peer_ms) if peer_ms else None
        ratio = f"{peer_med / med:7.1f}x" if peer_med else f"{'':>8}"
        status = ("MET" if med < target else "MISSED") if target is not None else ""
        tgt = f"< {target:g}" if target is not None else ""
        print(f"{name:<46}{med:>10.1f}{p95:>9.1f}{peer_name:>30}{(f'{peer_med:.1f}' if peer_med else ''):>10}{ratio}  {tgt:<10}{status}")
    print()
    print(f"claim check: {line}")
    if old is None:
        print("claim check naive path: not available (git show of the pre-optimisation claims.py failed)")
    else:
        print(f"claim check rows identical to the pre-optimisation code's (every column, exact): {'yes' if same else 'NO'}")
    print(f"influence of the {contrast} cluster at ({', '.join(f'{v:g}' for v in peak)}), {condition} on {covariate}: "
          f"largest difference from statsmodels (Cook's D, DFBETAS, leverage, LOO slope) {agree:.1e}")
    if survival_line == "survival: not available":
        print(survival_line)
    else:
        print(f"survival: first progress call after median {statistics.median(first_call):.1f} ms, first refit done after median "
              f"{statistics.median(first_refit):.0f} ms; total median {statistics.median(totals) / 1000:.2f} s over {len(totals)} runs")
        if survival_line:
            print(f"survival: {survival_line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
