"""Maps drawn in the browser: how fast a Canvas 2D renderer draws the sample's views in
headless Chromium (issue 12's decision benchmark; measured, never assumed).

    .venv/bin/python scripts/bench_render.py [--reps 79] [--naive-runs 5] [--json out.json]

The app is served in this process on a free port and opened in headless Chromium
(``dashboard.app.browser.chrome_options``: software rendering, no GPU).  The
prototype renderer (``scripts/render_prototype/canvas.js``) is injected into the page;
it fetches the placebo contrast's T volume once from the app's volume route
(``dashboard.app.volumes``) and draws, on six canvases the size of the app's views:

1. slice step: a wheel event on the axial canvas draws the next slice; timed from the
   event's timestamp to the frame after the draw (``requestAnimationFrame`` twice);
2. crosshair move: a pointer event redraws all three slices (each at a new index);
3. threshold drag: 3 slices + 3 glass-brain projections (a signed MIP over the whole
   volume) at a new threshold per frame.

Each is reported as median and p95 (ms), with the volume's load time and size, the
page's JS heap, and the same run's nilearn path (``plot_glass_brain`` +
``plot_stat_map`` to PNG, scripts/naive_render.py) for the speed-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_ui import chrome, naive, pct  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from dashboard.app import Settings, create_app, ids  # noqa: E402
from dashboard.app.browser import free_port  # noqa: E402

SAMPLE = REPO / "sample_results"
PROTOTYPE = REPO / "scripts" / "render_prototype" / "canvas.js"
TARGETS_MS = {"slice step": (20, 40), "crosshair": (20, 40), "threshold drag": (33, None)}

IN_PAGE = """
const [url, reps, vmax, thresholds] = [arguments[0], arguments[1], arguments[2], arguments[3]];
const done = arguments[arguments.length - 1];
(async () => {
  const R = window.cueCanvas;
  const vol = await R.load(url);
  const [nx, ny, nz] = vol.dims;
  const box = document.createElement('div');
  box.style.cssText = 'position:fixed;left:0;top:0;z-index:9999;background:#fff';
  document.body.appendChild(box);
  const mk = (w, h, scale) => { const c = document.createElement('canvas'); c.width = w * scale; c.height = h * scale; box.appendChild(c); return R.view(c, w, h); };
  const slices = [mk(ny, nz, 5), mk(nx, nz, 5), mk(nx, ny, 5)];
  const glass = [mk(ny, nz, 3), mk(nx, nz, 3), mk(nx, ny, 3)];
  // the frame that shows a draw: the first animation frame after it (its callbacks run
  // just before that frame is painted); the second is when that paint is surely done
  const frames = () => new Promise(r => requestAnimationFrame(t1 => { const a = performance.now(); requestAnimationFrame(() => r([a, performance.now()])); }));
  let thr = thresholds[0];
  let idx = [nx >> 1, ny >> 1, nz >> 1];
  let drawMs = 0;
  const timed = f => { const t0 = performance.now(); f(); drawMs = performance.now() - t0; };
  const drawAll = () => { for (let a = 0; a < 3; a++) R.drawSlice(slices[a], vol, a, idx[a], thr, vmax); };
  drawAll(); R.drawGlass(glass, vol, thr, vmax); await frames();
  const out = {loadMs: vol.loadMs, bytes: vol.bytes, dims: vol.dims};
  slices[2].canvas.addEventListener('wheel', e => timed(() => { idx[2] = (idx[2] + (e.deltaY > 0 ? 1 : nz - 1)) % nz; R.drawSlice(slices[2], vol, 2, idx[2], thr, vmax); }));
  slices[2].canvas.addEventListener('pointermove', e => timed(() => { idx = [e.offsetX % nx, (e.offsetY * 7) % ny, (e.offsetX * 3) % nz]; drawAll(); }));
  const series = async (name, fire) => {
    out[name] = {draw: [], frame: [], painted: []};
    for (let i = 0; i < reps; i++) {
      const t0 = fire(i);
      const [a, b] = await frames();
      out[name].draw.push(drawMs); out[name].frame.push(a - t0); out[name].painted.push(b - t0);
    }
  };
  await series('step', i => { const ev = new WheelEvent('wheel', {deltaY: 1, bubbles: true}); slices[2].canvas.dispatchEvent(ev); return ev.timeStamp; });
  await series('cross', i => { const ev = new PointerEvent('pointermove', {clientX: 10 + i, clientY: 10 + 2 * i, bubbles: true}); slices[2].canvas.dispatchEvent(ev); return ev.timeStamp; });
  await series('drag', i => { const t0 = performance.now(); thr = thresholds[i % thresholds.length]; timed(() => { drawAll(); R.drawGlass(glass, vol, thr, vmax); }); return t0; });
  out.heapMB = performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null;
  box.remove();
  done(out);
})().catch(e => done({error: String(e)}));
"""


def serve() -> tuple[str, object, object]:
    app = create_app(Settings(results_dir=SAMPLE, warm=True))
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server, app


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.1f} ms  p95 {pct(values, 0.95):6.1f} ms  (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=79)
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    base, server, app = serve()
    engine, volumes = app.server.config["CUE_ENGINE"], app.server.config["CUE_VOLUMES"]
    contrast = engine.study.contrasts[0].id
    url = volumes.url(contrast, "cells", engine.all_ids)
    vmax = engine.vmax([c.id for c in engine.study.contrasts], "cells", engine.all_ids)
    from dashboard.stats.thresholds import t_threshold

    df = engine.volume(contrast, "cells", engine.all_ids)[1]
    thresholds = [float(t_threshold(p, df)) for p in (0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001)]
    driver = chrome()
    try:
        driver.get(base)
        end = time.time() + 60
        while time.time() < end and "df" not in driver.execute_script("const e = document.getElementById(arguments[0]); return e ? e.textContent : '';", ids.STATUS):
            time.sleep(0.1)
        driver.execute_script(PROTOTYPE.read_text())
        got = driver.execute_async_script(IN_PAGE, url, args.reps, vmax, thresholds)
    finally:
        driver.quit()
        server.shutdown()  # type: ignore[attr-defined]
    if "error" in got:
        print("in-page error:", got["error"], file=sys.stderr)
        return 1
    nilearn = naive(args.naive_runs)
    print(f"volume {got['dims']} int16: {got['bytes'] / 1e3:.0f} kB decoded, fetched + parsed in {got['loadMs']:.0f} ms; JS heap {got['heapMB'] or float('nan'):.1f} MB")
    rows = {"slice step": got["step"], "crosshair": got["cross"], "threshold drag": got["drag"]}
    naive_ms = {"slice step": nilearn["point"], "crosshair": nilearn["point"], "threshold drag": nilearn["threshold"]}
    report = {}
    print("(draw: the renderer's script time; frame: input event to the animation frame that paints it;\n"
          " painted: to the next frame, when that paint is surely on screen; ~16.7 ms per frame at 60 Hz)")
    for name, parts in rows.items():
        med, ref = statistics.median(parts["frame"]), statistics.median(naive_ms[name])
        target, p95_target = TARGETS_MS[name]
        ok = med < target and (p95_target is None or pct(parts["frame"], 0.95) < p95_target)
        print(f"{name:15s} draw {summary(parts['draw'])}")
        print(f"{'':15s} frame {summary(parts['frame'])}   target < {target} ms: {'met' if ok else 'NOT met'}")
        print(f"{'':15s} painted {summary(parts['painted'])}   nilearn {ref:7.0f} ms: x{ref / statistics.median(parts['painted']):.0f} to painted")
        report[name] = {k: {"median_ms": statistics.median(v), "p95_ms": pct(v, 0.95)} for k, v in parts.items()}
        report[name].update({"nilearn_median_ms": ref, "speedup_painted": ref / statistics.median(parts["painted"]), "target_met": ok})
    if args.json:
        args.json.write_text(json.dumps({"volume": {k: got[k] for k in ("dims", "bytes", "loadMs", "heapMB")}, "views": report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
