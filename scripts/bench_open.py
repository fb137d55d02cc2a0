"""How long cue-dashboard takes to open a results folder, beside what any tool must do with it.

    .venv/bin/python scripts/bench_open.py DIR [--reps 5] [--first-level-root ROOT] [--json out.json]

Made for issue 11's speed targets on an SPM12 folder of 88 first-level images (the
flexible factorial ``ff_cells`` on the sample's native 2 mm grid, written by SPM12 under
Octave with ``scripts/spm_fixtures/make_spm_folders.sh``, see its README: "a benchmark
folder"), and works for any folder ``cue-dashboard`` opens.  Every number is measured in
this run, ``--reps`` times, reported as median and p95 (interpolated; with few reps the
p95 is close to the maximum), after one untimed warm-up of each path, so the operating
system's file cache is warm for ours and the peer's alike.

Ours
  validate    ``cue-dashboard validate DIR`` as a subprocess, launch to exit (Python
              start-up and imports included).  For an SPM folder it reads SPM.mat and
              every image, refits the design from the input images (``SPM.xY.P``) and
              compares the refit with SPM's spmT/spmF maps.  Target < 3 s (median).
  cold open   Chromium is started first (not timed; ``dashboard.app.browser``); then per
              rep ``cue-dashboard serve DIR --port P`` is launched (a new process, a new
              empty cache) and the clock runs from the launch until the first full paint,
              decided in the page like ``scripts/bench_ui.py`` does it: the status line
              (``#status-line``) shows the df (for a Z map its "Z >" threshold), the glass
              brain and the three slices are plotted with every layout image (the maps
              are PNG layout images) in the DOM, Dash is idle (no request in flight, no
              callback pending) and two animation frames have passed.  The end is the
              last such moment that then held for ``--quiet-ms`` (300 ms, not counted),
              so that a callback chained after the first paint (the participant grid's
              selection) is waited for.  The page is requested as soon as the server
              answers HTTP; the split "server answers" / "page loaded" / "last callback
              response" shows where the time goes.  Target < 5 s (median).

Peer (naive) paths, fresh Python processes of the same venv, launch to exit, interleaved
with ours rep by rep
  read        nibabel reads every image ours reads (the design's input images, the
              group statistic maps, the mask) into numpy float32: the least any tool does.
  refit       (SPM folders) read, then the design refitted in plain numpy (pinv of
              ``SPM.xX.X``, T and F of every ``SPM.xCon``) and compared with SPM's maps:
              a straightforward script doing what ``validate`` does.
  nilearn     nibabel + nilearn ``plot_glass_brain`` and ``plot_stat_map`` (the field's
              usual way to look at a map) of the first view's map (the app's default
              contrast at p < 0.001 uncorrected, cut at the app's default point) to PNG
              (matplotlib Agg): the peer of "open the folder and look at the map".
  ratio       ours / peer (above 1: ours is slower).  The in-process nilearn render
              (imports done, median of reps after a warm-up) is reported too.

Output: a table (median, p95, min, max, target, MET/MISSED, peer, ratio) and, with
``--json``, every sample.  The targets are issue 11's for an SPM folder of 88 images; on
other folders they are shown for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from naive_render import nilearn_render  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
EXE = REPO / ".venv" / "bin" / "cue-dashboard"
VALIDATE_TARGET_S = 3.0
OPEN_TARGET_S = 5.0

# -- the peer paths (run in a fresh process: python bench_open.py --peer KIND SPEC.npz) ----------


def peer_read(spec: dict[str, Any]) -> dict[str, Any]:
    import nibabel as nib
    import numpy as np

    # mmap=False: the bytes are read here (a memory map of a float32 image would defer that)
    images = [np.asarray(nib.load(p, mmap=False).get_fdata(dtype=np.float32)) for p in spec["inputs"]]
    maps = {k: np.asarray(nib.load(p, mmap=False).get_fdata(dtype=np.float32)) for k, p in spec["maps"].items()}
    mask = np.asarray(nib.load(spec["mask"], mmap=False).dataobj) > 0 if spec["mask"] else None
    return {"images": images, "maps": maps, "mask": mask}


def peer_refit(spec: dict[str, Any]) -> str:
    """Read, then OLS of the design in numpy and the largest difference from the maps."""
    import numpy as np

    data = peer_read(spec)
    mask = data["mask"] if data["mask"] is not None else np.all([np.isfinite(v) for v in data["images"]], axis=0)
    y = np.stack([v[mask] for v in data["images"]]).astype(np.float64)  # (images, voxels)
    x = np.asarray(spec["x"], dtype=np.float64)
    pinv = np.linalg.pinv(x)
    beta = pinv @ y
    res = y - x @ beta
    erdf = x.shape[0] - np.linalg.matrix_rank(x)
    sigma2 = np.einsum("ij,ij->j", res, res) / erdf
    xtx_inv = pinv @ pinv.T
    worst = 0.0
    for cid, c in spec["contrasts"].items():
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 1:  # T
            stat = (c @ beta) / np.sqrt(sigma2 * (c @ xtx_inv @ c))
        else:  # F: Wald form with the contrast's rank
            cb = c.T @ beta
            m = c.T @ xtx_inv @ c
            stat = np.einsum("iv,ij,jv->v", cb, np.linalg.pinv(m), cb) / (np.linalg.matrix_rank(m) * sigma2)
        ref = data["maps"][cid][mask].astype(np.float64)
        ok = np.isfinite(stat) & np.isfinite(ref)
        worst = max(worst, float(np.max(np.abs(stat[ok] - ref[ok]))))
    return f"refit of {x.shape[0]} images x {int(mask.sum())} voxels: largest difference from the maps {worst:.2g}"


def peer_nilearn(spec: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import nibabel as nib

    warnings.filterwarnings("ignore")
    n = nilearn_render(nib.load(spec["view_map"]), spec["view_threshold"], spec["view_point"])
    return f"{n} bytes of PNG"


def run_peer(kind: str, spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if kind == "read":
        d = peer_read(spec)
        print(f"read {len(d['images'])} images and {len(d['maps'])} maps")
    elif kind == "refit":
        print(peer_refit(spec))
    else:
        print(peer_nilearn(spec))
    return 0


# -- what the folder holds (untimed) ---------------------------------------------------------------


def folder_spec(root: Path, first_level_root: str | None) -> dict[str, Any]:
    """The files ours reads, the design (SPM) and the first view, from cue-dashboard's reader."""
    from scipy import stats

    from dashboard.app.state import DEFAULT_P, default_state
    from dashboard.formats import OpenOptions, detect_format, open_study

    opts = OpenOptions(first_level_root=Path(first_level_root) if first_level_root else None)
    study = open_study(root, opts, check_data=False)
    rows = study.design_rows
    inputs = [str(p) for p in rows.paths] if rows is not None else [str(p) for p in study.image_paths.values()]
    state = default_state(study)
    gm = study.group_maps[state["contrast"]]
    if gm.statistic == "T":
        thr = float(stats.t.isf(DEFAULT_P, gm.df))
    elif gm.statistic == "F":
        thr = float(stats.f.isf(DEFAULT_P, gm.df_effect, gm.df))
    else:
        thr = float(stats.norm.isf(DEFAULT_P))
    spec: dict[str, Any] = {
        "kind": detect_format(root),
        "inputs": inputs,
        "maps": {k: str(g.path) for k, g in study.group_maps.items()},
        "mask": str(study.mask_path) if study.mask_path else None,
        "shape": list(study.shape),
        "view_map": str(gm.path),
        "view_contrast": state["contrast"],
        "view_threshold": thr,
        "view_point": [float(v) for v in state["point"]],
        "view_stat": f"{gm.statistic}, p < {DEFAULT_P:g} unc. = {thr:.3f}",
    }
    if rows is not None:
        spec["x"] = rows.x.tolist()
        spec["contrasts"] = {k: v.tolist() for k, v in rows.contrasts.items() if k in study.group_maps}
    return spec


# -- timing ------------------------------------------------------------------------------------------


def timed_run(cmd: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, p.returncode, (p.stdout + p.stderr).strip()


def full_paint_js() -> str:
    from bench_ui import _JS_COMMON

    from dashboard.app import ids

    return _JS_COMMON + """
const done = arguments[arguments.length - 1];
const deadline = performance.now() + arguments[0];
function mapDrawn(id) {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!(gd && gd._fullLayout && gd.querySelector('.main-svg') && gd._fullData && gd._fullData.length > 0)) return false;
  const want = ((gd.layout && gd.layout.images) || []).filter(im => im && im.source).length;
  const drawn = Array.from(gd.querySelectorAll('image')).filter(im => ((im.href && im.href.baseVal) || '').startsWith('data:image')).length;
  return want > 0 && drawn >= want;
}
function serverMs() {  // Server-Timing of the callback requests so far (dashboard.app.add_server_timing)
  let total = 0, n = 0, last = 0;
  for (const e of performance.getEntriesByType('resource')) {
    if (!e.name.includes('_dash-update-component')) continue;
    n += 1; last = Math.max(last, e.responseEnd);
    for (const t of (e.serverTiming || [])) if (t.name === 'callback') total += t.duration;
  }
  return {n: n, ms: total, last_end: last};
}
function ready() {
  if (!window.store) return false;
  const s = window.store.getState();
  if (s.isLoading || pendingCallbacks(s, null) > 0) return false;
  const status = (document.getElementById('%(status)s') || {}).textContent || '';
  return mapDrawn('%(glass)s') && %(slices)s.every(mapDrawn) && (status.includes('df') || status.includes('Z >'));
}
// painted = ready, then two animation frames; the end is the last time that happened
// and held for the quiet window (a chained callback within it moves the end)
const quiet = arguments[1];
let readySince = null, paintedAt = null;
function poll() {
  const now = performance.now();
  if (ready()) {
    if (readySince === null) {
      const mark = readySince = now;
      twoFrames(() => { if (readySince === mark && ready()) paintedAt = performance.now(); });
    }
    if (paintedAt !== null && now - paintedAt >= quiet) {
      done({ok: true, page_ms: now, painted_ms: paintedAt, server: serverMs(),
            status: document.getElementById('%(status)s').textContent,
            rows: document.querySelectorAll('#%(table)s .ag-center-cols-container .ag-row').length});
      return;
    }
  } else {
    readySince = null; paintedAt = null;
  }
  if (now > deadline) { done({ok: false}); return; }
  setTimeout(poll, 3);
}
poll();
""" % {"glass": ids.GLASS_BRAIN, "slices": json.dumps(list(ids.SLICES)), "status": ids.STATUS, "table": ids.CLUSTER_TABLE}


def cold_open(driver: Any, root: Path, extra: list[str], wait_js: str, quiet_ms: float) -> dict[str, Any]:
    """One cold open: seconds from launching the server to the full first paint."""
    from bench_ui import rss_mb, stop, wait_http

    from dashboard.app.browser import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    driver.get("about:blank")
    log = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(EXE), "serve", str(root), "--port", str(port), *extra], stdout=log, stderr=log)
    try:
        wait_http(url, proc)
        t_http = time.perf_counter() - t0
        driver.get(url)
        t_loaded = time.perf_counter() - t0
        res = driver.execute_async_script(wait_js, 90000, quiet_ms)
        t_done = time.perf_counter() - t0
        if not res or not res.get("ok"):
            raise RuntimeError("the page never reached its full first paint (90 s)")
        t_paint = t_done - (res["page_ms"] - res["painted_ms"]) / 1000.0  # the quiet window is not counted
        rss = rss_mb(proc.pid)
    except Exception:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        stop(proc)
        log.close()
    srv = res.get("server") or {}
    return {"s": t_paint, "http_s": t_http, "loaded_s": t_loaded, "rows": res.get("rows"), "status": res.get("status"),
            "rss_mb": rss, "callbacks": srv.get("n"), "callback_server_s": (srv.get("ms") or 0) / 1000.0,
            "last_callback_end_s": t_done - (res["page_ms"] - (srv.get("last_end") or 0)) / 1000.0}


def summary(values: list[float]) -> dict[str, float]:
    from bench_ui import pct

    return {"n": len(values), "median": statistics.median(values), "p95": pct(values, 0.95), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", type=Path, help="a folder cue-dashboard opens (e.g. /tmp/spm_bench/ff_cells)")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions of each path (default 5)")
    ap.add_argument("--first-level-root", default=None, help="passed to validate and serve (SPM input images by tail)")
    ap.add_argument("--quiet-ms", type=float, default=300.0,
                    help="the page counts as painted when nothing changed for this long after (default 300 ms; "
                         "not counted in the time)")
    ap.add_argument("--json", default=None, help="also write every sample here")
    ap.add_argument("--peer", choices=["read", "refit", "nilearn"], help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peer:
        return run_peer(args.peer, args.spec)
    if args.dir is None or not args.dir.is_dir():
        ap.error("DIR: a results folder")
    root = args.dir.resolve()
    extra = ["--first-level-root", args.first_level_root] if args.first_level_root else []

    spec = folder_spec(root, args.first_level_root)
    tmp = Path(tempfile.mkdtemp(prefix="bench-open-"))
    try:
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps(spec))
        peers = ["read", "refit"] if "x" in spec else ["read"]
        cmds = {"validate": [str(EXE), "validate", str(root), *extra]}
        for k in [*peers, "nilearn"]:
            cmds[k] = [str(PYTHON), str(Path(__file__).resolve()), "--peer", k, "--spec", str(spec_path)]

        samples: dict[str, list[float]] = {k: [] for k in cmds}
        outputs: dict[str, str] = {}
        first: dict[str, float] = {}
        print(f"{root}: {spec['kind']} folder, {len(spec['inputs'])} input images, {len(spec['maps'])} maps, "
              f"grid {'x'.join(map(str, spec['shape']))}; {args.reps} reps", flush=True)
        # (a) validate and the peers that read and refit, interleaved rep by rep
        for i in range(args.reps + 1):
            for k in ["validate", *peers]:
                secs, rc, out = timed_run(cmds[k])
                if rc != 0:
                    print(f"  warning: {k} exited with {rc}: {out.splitlines()[-1] if out else ''}", file=sys.stderr)
                if i == 0:
                    first[k] = secs
                    outputs[k] = out
                else:
                    samples[k].append(secs)
            if i:
                print(f"  rep {i}: " + ", ".join(f"{k} {samples[k][-1]:.2f} s" for k in ["validate", *peers]), flush=True)

        # (b) cold opens in headless Chromium, each followed by the nilearn peer
        from bench_ui import chrome

        wait_js = full_paint_js()
        driver = chrome()
        driver.set_window_size(1920, 1080)
        opens: list[dict[str, Any]] = []
        try:
            for i in range(args.reps + 1):
                o = cold_open(driver, root, extra, wait_js, args.quiet_ms)
                secs, rc, out = timed_run(cmds["nilearn"])
                if rc != 0:
                    print(f"  warning: nilearn peer exited with {rc}: {out[-300:]}", file=sys.stderr)
                if i == 0:
                    first["open"], first["nilearn"] = o["s"], secs
                    outputs["nilearn"] = out
                    continue
                opens.append(o)
                samples["nilearn"].append(secs)
                print(f"  rep {i}: cold open {o['s']:.2f} s (server answers {o['http_s']:.2f} s, page loaded "
                      f"{o['loaded_s']:.2f} s, last callback response {o['last_callback_end_s']:.2f} s; "
                      f"{o['callbacks']} callback requests, {o['callback_server_s']:.2f} s in the server; "
                      f"{o['rows']} table rows; RSS {o['rss_mb']:.0f} MB), nilearn {secs:.2f} s", flush=True)
        finally:
            driver.quit()

        # the nilearn render in this process (imports and font cache warm)
        import matplotlib

        matplotlib.use("Agg")
        import nibabel as nib

        warnings.filterwarnings("ignore")
        img = nib.load(spec["view_map"])
        nilearn_render(img, spec["view_threshold"], spec["view_point"])
        warm = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            nilearn_render(img, spec["view_threshold"], spec["view_point"])
            warm.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    samples["open"] = [o["s"] for o in opens]
    s = {k: summary(v) for k, v in samples.items()}
    split = {k: statistics.median(o[k] for o in opens)
             for k in ("http_s", "loaded_s", "last_callback_end_s", "callback_server_s")}
    warm_s = summary(warm)
    peer_for_validate = "refit" if "refit" in s else "read"
    rows = [
        ("validate (subprocess)", "validate", VALIDATE_TARGET_S, peer_for_validate),
        ("cold open -> full first paint", "open", OPEN_TARGET_S, "nilearn"),
    ]
    out: dict[str, Any] = {
        "folder": str(root), "spec": {k: v for k, v in spec.items() if k not in ("x", "contrasts", "inputs")},
        "n_inputs": len(spec["inputs"]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "samples_s": samples, "first_untimed_s": first, "summary_s": s, "cold_open_split_median_s": split,
        "cold_opens": opens, "nilearn_in_process_s": warm, "outputs": outputs,
    }

    print()
    print(f"cue-dashboard open benchmark: {root}")
    print(f"{spec['kind']} folder, {len(spec['inputs'])} input images + {len(spec['maps'])} maps, grid "
          f"{'x'.join(map(str, spec['shape']))}; first view: contrast {spec['view_contrast']}, {spec['view_stat']}")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; {args.reps} timed reps after 1 untimed "
          "warm-up (file cache warm); times in s, launch to exit / to full paint")
    print()
    head = f"{'measure':<31}{'median':>7}{'p95':>7}{'min':>7}{'max':>7}  {'target':<8}{'status':<8}{'peer':<9}{'peer med':>9}{'ratio':>7}"
    print(head)
    print("-" * len(head))
    for label, key, target, peer in rows:
        r, p = s[key], s[peer]
        met = r["median"] < target
        out.setdefault("results", {})[key] = {**r, "target": target, "met": met, "peer": peer, "peer_median": p["median"],
                                              "ratio": r["median"] / p["median"]}
        print(f"{label:<31}{r['median']:>7.2f}{r['p95']:>7.2f}{r['min']:>7.2f}{r['max']:>7.2f}  {'< ' + format(target, 'g'):<8}"
              f"{'MET' if met else 'MISSED':<8}{peer:<9}{p['median']:>9.2f}{r['median'] / p['median']:>6.1f}x")
    if peer_for_validate != "read":
        print(f"  validate vs peer read only: {s['validate']['median'] / s['read']['median']:.1f}x")
    print(f"  cold open split (medians, from the launch): server answers HTTP {split['http_s']:.2f} s, page loaded "
          f"{split['loaded_s']:.2f} s, last callback response {split['last_callback_end_s']:.2f} s, full paint "
          f"{s['open']['median']:.2f} s; callbacks' own server time {split['callback_server_s']:.2f} s")
    print()
    print(f"{'peer (fresh process)':<31}{'median':>7}{'p95':>7}{'min':>7}{'max':>7}")
    labels = {"read": f"read {len(spec['inputs'])} images + maps", "refit": "read + numpy refit + compare",
              "nilearn": "nilearn glass + stat map PNG"}
    for k in [*peers, "nilearn"]:
        r = s[k]
        print(f"{labels[k]:<31}{r['median']:>7.2f}{r['p95']:>7.2f}{r['min']:>7.2f}{r['max']:>7.2f}")
    print(f"{'nilearn render, in process':<31}{warm_s['median']:>7.2f}{warm_s['p95']:>7.2f}{warm_s['min']:>7.2f}{warm_s['max']:>7.2f}")
    print()
    print("untimed warm-up runs: " + ", ".join(f"{k} {v:.2f} s" for k, v in first.items()))
    if "refit" in outputs:
        print(f"peer refit: {outputs['refit']}")
    last = outputs.get("validate", "").splitlines()
    refit_line = next((ln.strip() for ln in last if ln.strip().startswith("refit:")), None)
    if refit_line:
        print(f"validate: {refit_line}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
