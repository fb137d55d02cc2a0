"""UI latency benchmark of the dashboard in headless Chromium (measured, never assumed).

    .venv/bin/python scripts/bench_ui.py [--reps 15] [--cold 5] [--naive-runs 5] [--json out.json]

1. Cold start (``--cold`` times, a new server process each time): Chromium is started
   first; then ``cue-dashboard serve sample_results --port <free>`` is launched and the
   clock runs from the process launch until the first full paint: glass brain, three
   slices, cluster-table rows, regression and participant panels rendered, Dash idle
   (no request in flight, no callback pending) and two animation frames later.  The
   page is loaded as soon as the server answers HTTP.
2. Interactions on one warm server, each timed from the action to every affected view
   redrawn: (a) threshold (p input + Enter, 0.001 / 0.0005), (b) contrast (radio,
   cycled), (c) cluster (a row of the cluster grid, placebo contrast), (d) point (MNI x
   input + Enter), (e) participant subset (grid checkbox, clicked through JavaScript as
   in the browser tests: exclude a participant never excluded before -- a new subset,
   refit -- then include it again, alternating).
   What the user prepares is done before the clock starts: the text is typed before
   Enter is pressed, the pointer is moved over the radio button or table cell before it
   is clicked (press + release where the pointer is).
   Completion: in the browser (``execute_async_script``, polled with setTimeout 3 ms)
   wait until Dash's redux store (``window.store``) has been busy at least once
   (``isLoading`` or a callback pending, also caught by a store subscription armed
   before the action; a 1 s guard fails the sample otherwise) and is
   then idle again (``isLoading`` false, ``callbacks.requested/prioritized/executing/
   watched/executed`` empty), then two ``requestAnimationFrame`` ticks so the paint is
   done.  The timer is Python's ``perf_counter`` around action + wait, so it includes
   ~2 WebDriver round trips (a few ms; the "rtt" line shows their size).
   For (e) the views are done when every callback except ``estimate_rft`` (the RFT
   p-value re-estimate, which arrives later by design) is done; the time until the
   RFT p-values are filled in is reported separately.
3. The naive path, in this process: for each kind of change, nilearn's
   ``plot_glass_brain`` + ``plot_stat_map`` of the current T map (a nibabel image; the
   published group map of the contrast, i.e. rendering only, no refit) to PNG
   (matplotlib Agg, ``savefig`` into BytesIO); median over ``--naive-runs``; speed-up =
   naive median / our median.
4. Server RSS (``/proc/<pid>/status`` VmRSS) after start-up and after all interactions.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from naive_render import nilearn_render  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from dashboard.app import ids  # noqa: E402
from dashboard.app.browser import chrome_options, free_port  # noqa: E402

SAMPLE = REPO / "sample_results"
TARGETS_MS = {"threshold": (150, 300), "contrast": (150, 300), "cluster": (150, 300), "point": (150, 300), "participants": (400, None)}
COLD_TARGET_S = 4.0
RSS_TARGET_MB = 600

# -- browser-side waits ----------------------------------------------------------------------------
_JS_COMMON = """
const PENDING = ['requested', 'prioritized', 'executing', 'watched', 'executed'];
function pendingCallbacks(s, ignoreInputs) {
  const c = s.callbacks || {};
  let n = 0;
  for (const k of PENDING) {
    for (const cb of (c[k] || [])) {
      const ins = (cb.callback && cb.callback.inputs) || [];
      if (ignoreInputs && ins.some(i => ignoreInputs.includes(i.id))) continue;
      n += 1;
    }
  }
  return n;
}
function twoFrames(f) { requestAnimationFrame(() => requestAnimationFrame(f)); }
"""

# arguments: ignoreInputs (ids or null: callbacks triggered by them are not waited for), guard ms
WAIT_DONE = _JS_COMMON + """
const done = arguments[arguments.length - 1];
const ignore = arguments[0], guard = arguments[1];
const t0 = performance.now();
let seen = false;
function poll() {
  const s = window.store.getState();
  const n = pendingCallbacks(s, ignore);
  const busy = n > 0 || (!ignore && s.isLoading);
  if (busy || window.__busySeen) seen = true;
  if (!seen && performance.now() - t0 > guard) { done({ok: false, why: 'no request within guard'}); return; }
  if (seen && !busy) { twoFrames(() => done({ok: true, ms: performance.now() - t0,
                                              page_ms: window.__evt == null ? null : performance.now() - window.__evt})); return; }
  setTimeout(poll, 3);
}
poll();
"""

# the whole page drawn and Dash idle (cold start)
WAIT_PAGE = _JS_COMMON + """
const done = arguments[arguments.length - 1];
const deadline = performance.now() + arguments[0];
function plotted(id, needData) {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return !!(gd && gd._fullLayout && gd.querySelector('.main-svg') && (!needData || (gd._fullData && gd._fullData.length > 0)));
}
function rows(id) { return document.querySelectorAll('#' + id + ' .ag-center-cols-container .ag-row').length; }
function ready() {
  if (!window.store) return false;
  const s = window.store.getState();
  if (s.isLoading || pendingCallbacks(s, null) > 0) return false;
  return plotted('%(glass)s', true) && %(slices)s.every(i => plotted(i, true)) && plotted('%(scatter)s', false)
    && rows('%(table)s') > 0 && rows('%(grid)s') > 0 && (document.getElementById('%(status)s') || {}).textContent.includes('df');
}
function poll() {
  if (ready()) {
    // idle must hold across a few polls (a chained callback may be about to start)
    let k = 0;
    const again = () => { if (!ready()) { setTimeout(poll, 3); return; } if (++k >= 3) { twoFrames(() => done({ok: true})); return; } setTimeout(again, 3); };
    again();
    return;
  }
  if (performance.now() > deadline) { done({ok: false}); return; }
  setTimeout(poll, 3);
}
poll();
""" % {"glass": ids.GLASS_BRAIN, "slices": json.dumps(list(ids.SLICES)), "scatter": ids.SCATTER, "table": ids.CLUSTER_TABLE, "grid": ids.PARTICIPANT_GRID,
       "status": ids.STATUS}

# wait for RFT p-values after a participant change: everything idle (estimate_rft included)
WAIT_IDLE = _JS_COMMON + """
const done = arguments[arguments.length - 1];
const deadline = performance.now() + arguments[0];
function poll() {
  const s = window.store.getState();
  if (!s.isLoading && pendingCallbacks(s, null) === 0) { twoFrames(() => done({ok: true})); return; }
  if (performance.now() > deadline) { done({ok: false}); return; }
  setTimeout(poll, 3);
}
poll();
"""


def chrome() -> webdriver.Chrome:
    driver = webdriver.Chrome(options=chrome_options())
    driver.set_script_timeout(120)
    return driver


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def launch_server(port: int) -> subprocess.Popen:
    exe = REPO / ".venv" / "bin" / "cue-dashboard"
    return subprocess.Popen([str(exe), "serve", str(SAMPLE), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("server did not answer")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cold_start(driver, url_port: int) -> tuple[float, subprocess.Popen, float]:
    """Seconds from process launch to the full first paint; the (running) server; the
    RSS after start-up (MB)."""
    url = f"http://127.0.0.1:{url_port}/"
    driver.get("about:blank")
    t0 = time.perf_counter()
    proc = launch_server(url_port)
    wait_http(url, proc)
    driver.get(url)
    res = driver.execute_async_script(WAIT_PAGE, 90000)
    elapsed = time.perf_counter() - t0
    if not res or not res.get("ok"):
        raise RuntimeError("page never finished its first paint")
    return elapsed, proc, rss_mb(proc.pid)


# -- interactions ----------------------------------------------------------------------------------
# records when the first input event of an action reaches the page
# and whether Dash got busy at all (a store subscription: a chain that starts and ends
# before the wait script's first poll still counts as "busy seen")
ARM_EVENT = """
window.__evt = null;
window.__busySeen = false;
if (!window.__evtListening) {
  window.__evtListening = true;
  for (const type of ['mousedown', 'keydown', 'click']) {
    document.addEventListener(type, () => { if (window.__evt == null) window.__evt = performance.now(); }, true);
  }
  window.store.subscribe(() => {
    const s = window.store.getState(), c = s.callbacks || {};
    if (s.isLoading || ['requested', 'prioritized', 'executing', 'watched', 'executed'].some(k => (c[k] || []).length)) {
      window.__busySeen = true;
    }
  });
}
"""


# server time of the callback requests an action caused (Server-Timing headers, see
# dashboard.app.add_server_timing), summed; requests that started after the input event
SERVER_MS = """
const evt = window.__evt;
let total = 0, n = 0;
for (const e of performance.getEntriesByType('resource')) {
  if (!e.name.includes('_dash-update-component') || evt == null || e.startTime < evt) continue;
  for (const t of (e.serverTiming || [])) if (t.name === 'callback') { total += t.duration; n += 1; }
}
return n ? total : null;
"""


class Page:
    def __init__(self, driver):
        self.d = driver
        self.page_ms: list = []
        self.server_ms: list = []

    def wait(self, ignore: list[str] | None = None, guard_ms: int = 1000) -> dict:
        return self.d.execute_async_script(WAIT_DONE, ignore, guard_ms)

    def idle(self, timeout_ms: int = 60000) -> None:
        self.d.execute_async_script(WAIT_IDLE, timeout_ms)

    def el(self, css: str):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def timed(self, action, ignore: list[str] | None = None) -> float:
        """ms from the action to the views redrawn (NaN when no request followed).
        Also records the in-page time (from the DOM input event to the same end) in
        ``self.page_ms``: the WebDriver command overhead is the difference."""
        self.d.execute_script(ARM_EVENT + "performance.clearResourceTimings();")
        t0 = time.perf_counter()
        action()
        res = self.wait(ignore)
        ms = (time.perf_counter() - t0) * 1000.0
        self.page_ms.append(res.get("page_ms") if res.get("ok") else None)
        self.server_ms.append(self.d.execute_script(SERVER_MS) if res.get("ok") else None)
        if not res.get("ok"):
            self.idle()
            return float("nan")
        return ms

    # typing happens before the clock starts; Enter commits (debounced inputs)
    def prepare_input(self, css: str, value) -> object:
        el = self.el(css)
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(Keys.DELETE)
        el.send_keys(str(value))
        return el

    def point_at(self, css: str) -> dict:
        """Move the pointer over an element (untimed: the user's hand is on the mouse)."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.d, duration=0).move_to_element(self.el(css)).perform()
        return {"page": self, "css": css}

    def click_here(self) -> None:
        """Press and release the mouse where the pointer is (the timed click)."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.d, duration=0).click().perform()

    def scroll_to(self, css: str) -> None:
        self.d.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'});", css)
        time.sleep(0.15)


IN_PAGE: dict[str, list[float]] = {}
SERVER: dict[str, list[float]] = {}


def run_series(name, prepare, act, warmup: int, reps: int, ignore: list[str] | None = None, after=None) -> list[float]:
    out = []
    for i in range(warmup + reps):
        ctx = prepare(i)
        ms = ctx["page"].timed(functools.partial(act, ctx), ignore)
        if after is not None:
            after(ctx, i, ms)
        if i >= warmup:
            out.append(ms)
            if ctx["page"].page_ms[-1] is not None:
                IN_PAGE.setdefault(name, []).append(ctx["page"].page_ms[-1])
            if ctx["page"].server_ms[-1] is not None:
                SERVER.setdefault(name, []).append(ctx["page"].server_ms[-1])
        ctx["page"].idle()
        time.sleep(0.05)
    bad = sum(1 for v in out if v != v)
    if bad:
        print(f"  warning: {name}: {bad} samples had no request (guard)", file=sys.stderr)
    return [v for v in out if v == v]


def interactions(driver, reps: int, warmup: int) -> dict:
    page = Page(driver)
    res: dict[str, list[float]] = {}
    rtt = []
    for _ in range(20):
        t0 = time.perf_counter()
        driver.execute_async_script("const d = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => d(1)));")
        rtt.append((time.perf_counter() - t0) * 1000)
    res["_rtt"] = rtt
    page.idle()

    # (a) threshold
    page.scroll_to(f"#{ids.P_UNC}")
    p_values = ["0.0005", "0.001"]
    res["threshold"] = run_series("threshold", lambda i: {"page": page, "el": page.prepare_input(f"#{ids.P_UNC}", p_values[i % 2])},
                                  lambda c: c["el"].send_keys(Keys.ENTER), warmup, reps)
    if driver.find_element(By.CSS_SELECTOR, f"#{ids.P_UNC}").get_attribute("value") != "0.001":
        el = page.prepare_input(f"#{ids.P_UNC}", "0.001")
        page.timed(lambda: el.send_keys(Keys.ENTER))
        page.idle()

    # (b) contrast: the pointer is over the radio button before the clock starts (as the
    # text is typed before Enter); the timed action is the click itself
    contrasts = ["nac", "interaction", "placebo"]
    res["contrast"] = run_series("contrast", lambda i: page.point_at(f"#{ids.CONTRAST} input[value='{contrasts[i % 3]}']"),
                                 lambda c: page.click_here(), warmup, reps)
    # ends on placebo when warmup + reps is a multiple of 3; make sure
    el = page.el(f"#{ids.CONTRAST} input[value='placebo']")
    if not el.is_selected():
        page.timed(el.click)
        page.idle()

    # (c) cluster rows (placebo has several clusters)
    page.scroll_to(f"#{ids.CLUSTER_TABLE}")
    n_rows = len(driver.find_elements(By.CSS_SELECTOR, f"#{ids.CLUSTER_TABLE} .ag-center-cols-container .ag-row"))
    if n_rows < 2:
        raise RuntimeError(f"cluster table has {n_rows} rows; need >= 2")
    order = list(range(min(n_rows, 6)))

    def cell(i):
        return page.point_at(f"#{ids.CLUSTER_TABLE} .ag-center-cols-container .ag-row[row-index='{order[i % len(order)]}'] "
                             ".ag-cell[col-id='peak_t']")

    # the influence panel (bars, grid columns) follows the scatter in a second response, as
    # the RFT p-values do after a subset change: timed apart, from the same click
    influence_ms: list[float] = []

    def click(c):
        c["t0"] = time.perf_counter()
        page.click_here()

    def influence_filled(c, i, ms):
        page.idle()
        if i >= warmup:
            influence_ms.append((time.perf_counter() - c["t0"]) * 1000.0)

    res["cluster"] = run_series("cluster", cell, click, warmup, reps, ignore=[ids.RENDERED_REGRESSION, ids.INFLUENCE_REQUEST],
                                after=influence_filled)
    res["_cluster_rows"] = n_rows
    res["_influence_ms"] = influence_ms

    # (d) point
    page.scroll_to(f"#{ids.POINT_X}")
    xs = ["20", "-30"]
    res["point"] = run_series("point", lambda i: {"page": page, "el": page.prepare_input(f"#{ids.POINT_X}", xs[i % 2])},
                              lambda c: c["el"].send_keys(Keys.ENTER), warmup, reps)

    # (e) participants: exclude a new participant, include it again (alternating)
    page.scroll_to(f"#{ids.PARTICIPANT_GRID}")
    pids = driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{ids.PARTICIPANT_GRID} .ag-center-cols-container .ag-row')).map(r => r.getAttribute('row-id'));")
    pids = [p for p in pids if p]
    rft_ms: list[float] = []
    kinds: dict[str, list[float]] = {"exclude": [], "include": []}
    state = {"excluded": None, "next": 0}

    def prep(i):
        if state["excluded"] is None:
            pid = pids[state["next"] % len(pids)]
            state["next"] += 1
            kind = "exclude"
        else:
            pid = state["excluded"]
            kind = "include"
        css = f"#{ids.PARTICIPANT_GRID} .ag-row[row-id='{pid}'] .ag-selection-checkbox input"
        driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'});", css)
        return {"page": page, "css": css, "pid": pid, "kind": kind}

    def act(c):
        c["t0"] = time.perf_counter()
        # a JavaScript click on the row's checkbox (as the browser tests do): the pinned
        # column and sticky header make WebDriver clicks on it fail intermittently
        driver.execute_script("document.querySelector(arguments[0]).click();", c["css"])

    def after(c, i, ms):
        # RFT p-values: everything idle (estimate_rft included), from the same action
        page.idle()
        total = (time.perf_counter() - c["t0"]) * 1000.0
        if i >= warmup:
            kinds[c["kind"]].append(ms)
            # an RFT re-estimate was still running when the views were done (a new subset
            # only: going back to everyone finds its estimate cached; the influence panel's
            # ~0.1 s request would otherwise count as one)
            if c["kind"] == "exclude" and total - ms > 20:
                rft_ms.append(total)
        state["excluded"] = c["pid"] if c["kind"] == "exclude" else None

    res["participants"] = run_series("participants", prep, act, warmup, reps, ignore=[ids.RFT_PENDING, ids.RENDERED_REGRESSION, ids.INFLUENCE_REQUEST],
                                     after=after)
    res["_participants_kinds"] = kinds
    res["_rft_ms"] = rft_ms
    return res


# -- naive path ------------------------------------------------------------------------------------
def naive(runs: int) -> dict[str, list[float]]:
    """nilearn glass brain + stat map of the current T map to PNG, per kind of change."""
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import nibabel as nib

    from dashboard.stats.thresholds import t_threshold

    warnings.filterwarnings("ignore")

    imgs = {c: nib.load(str(SAMPLE / "group" / f"task-cue_contrast-{c}_stat-t_statmap.nii.gz")) for c in ("placebo", "nac", "interaction")}
    df = 84

    def render(contrast: str, p: float, cut):
        img = imgs[contrast]
        thr = float(t_threshold(p, df))
        return nilearn_render(img, thr, cut)

    plans = {
        "threshold": lambda i: render("placebo", (0.0005, 0.001)[i % 2], (0, 0, 0)),
        "contrast": lambda i: render(("nac", "interaction", "placebo")[i % 3], 0.001, (0, 0, 0)),
        "cluster": lambda i: render("placebo", 0.001, ((10, 14, -8), (-10, 14, -8))[i % 2]),
        "point": lambda i: render("placebo", 0.001, ((20, 0, 0), (-30, 0, 0))[i % 2]),
        "participants": lambda i: render("placebo", 0.001, (0, 0, 0)),
    }
    plans["threshold"](0)  # import / font cache warm-up
    out = {}
    for name, fn in plans.items():
        times = []
        for i in range(runs):
            t0 = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t0) * 1000.0)
        out[name] = times
    return out


# -- report ----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15, help="timed repetitions per interaction (after 2 warm-ups)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cold", type=int, default=5, help="cold starts (new server each)")
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()

    driver = chrome()  # first: the browser is not part of the server's cold start
    driver.set_window_size(1920, 1080)
    cold: list[float] = []
    rss_start: list[float] = []
    proc = None
    try:
        for i in range(args.cold):
            port = free_port()
            secs, proc, rss = cold_start(driver, port)
            cold.append(secs)
            rss_start.append(rss)
            print(f"cold start {i + 1}: {secs:.2f} s (RSS {rss:.0f} MB)", flush=True)
            if i < args.cold - 1:
                stop(proc)
                proc = None
        # the last server stays up for the interactions (warm)
        inter = interactions(driver, args.reps, args.warmup)
        rss_end = rss_mb(proc.pid)
    finally:
        driver.quit()
        if proc is not None:
            stop(proc)
    print("naive path (nilearn) ...", flush=True)
    nv = naive(args.naive_runs)

    names = ["threshold", "contrast", "cluster", "point", "participants"]
    rows = {}
    for n in names:
        med, p95 = statistics.median(inter[n]), pct(inter[n], 0.95)
        nmed = statistics.median(nv[n])
        t_med, t_p95 = TARGETS_MS[n]
        ok = med < t_med and (t_p95 is None or p95 < t_p95)
        rows[n] = {"n": len(inter[n]), "median_ms": med, "p95_ms": p95, "min_ms": min(inter[n]), "max_ms": max(inter[n]),
                   "in_page_median_ms": statistics.median(IN_PAGE[n]) if IN_PAGE.get(n) else None,
                   "server_median_ms": statistics.median(SERVER[n]) if SERVER.get(n) else None, "naive_median_ms": nmed,
                   "speedup": nmed / med, "target_median_ms": t_med, "target_p95_ms": t_p95, "met": ok}
    cold_med = statistics.median(cold)
    rft = inter["_rft_ms"]
    out = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "cold_start_s": {"runs": cold, "median": cold_med, "target": COLD_TARGET_S, "met": cold_med < COLD_TARGET_S},
        "interactions": rows,
        "participants_by_kind_median_ms": {k: (statistics.median(v) if v else None) for k, v in inter["_participants_kinds"].items()},
        "rft_filled_in_ms": {"runs": rft, "median": statistics.median(rft) if rft else None},
        "influence_filled_in_ms": {"runs": inter["_influence_ms"], "median": statistics.median(inter["_influence_ms"])},
        "webdriver_rtt_ms": {"median": statistics.median(inter["_rtt"])},
        "cluster_rows": inter["_cluster_rows"],
        "rss_mb": {"after_startup": rss_start[-1], "after_interactions": rss_end, "target": RSS_TARGET_MB, "met": rss_end < RSS_TARGET_MB},
    }

    print()
    print("cue-dashboard UI benchmark (headless Chromium, sample_results)")
    print(f"machine: {out['machine']['cpus']} CPUs, Python {out['machine']['python']}")
    print(f"cold start (launch -> full first paint, Dash idle): median {cold_med:.2f} s over {len(cold)} "
          f"[{', '.join(f'{c:.2f}' for c in cold)}]  target < {COLD_TARGET_S:g} s  {'MET' if out['cold_start_s']['met'] else 'MISSED'}")
    print(f"interactions: {args.reps} timed runs each after {args.warmup} warm-ups; times include ~2 WebDriver round trips "
          f"(empty 2-frame round trip: median {out['webdriver_rtt_ms']['median']:.1f} ms)")
    print()
    print(f"{'interaction':<14}{'median ms':>10}{'p95 ms':>9}{'min':>7}{'max':>7}{'in-page':>9}{'server':>8}{'naive ms':>10}{'speed-up':>10}  "
          f"{'target':<18}status")
    for n in names:
        r = rows[n]
        tgt = f"<{r['target_median_ms']}" + (f" / p95<{r['target_p95_ms']}" if r["target_p95_ms"] else "")
        inpage = f"{r['in_page_median_ms']:.0f}" if r["in_page_median_ms"] is not None else "-"
        server = f"{r['server_median_ms']:.0f}" if r["server_median_ms"] is not None else "-"
        print(f"{n:<14}{r['median_ms']:>10.0f}{r['p95_ms']:>9.0f}{r['min_ms']:>7.0f}{r['max_ms']:>7.0f}{inpage:>9}{server:>8}{r['naive_median_ms']:>10.0f}"
              f"{r['speedup']:>9.1f}x  {tgt:<18}{'MET' if r['met'] else 'MISSED'}")
    kinds = out["participants_by_kind_median_ms"]
    print(f"participants: exclude (new subset, refit) median {kinds['exclude']:.0f} ms, include all again (cached) median "
          f"{kinds['include']:.0f} ms")
    print(f"cluster: the influence panel (bars and participant-grid columns, its own request) filled in after "
          f"{out['influence_filled_in_ms']['median']:.0f} ms (median, from the click)")
    if rft:
        print(f"RFT p-values filled in after {statistics.median(rft):.0f} ms (median of {len(rft)} re-estimates, from the click)")
    else:
        print("RFT p-values: no re-estimate was pending after any participant change")
    print(f"server RSS: {out['rss_mb']['after_startup']:.0f} MB after start-up, {rss_end:.0f} MB after all interactions  "
          f"target < {RSS_TARGET_MB} MB  {'MET' if out['rss_mb']['met'] else 'MISSED'}")
    print("in-page = median from the DOM input event (mousedown/keydown) to the same end point, i.e. without the WebDriver command")
    print("server = median of the server time of the action's callback requests (Server-Timing headers), summed per action")
    print("naive = nilearn plot_glass_brain + plot_stat_map of the T map to PNG (Agg), rendering only (no refit), median of "
          f"{args.naive_runs}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
