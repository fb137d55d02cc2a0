"""The cluster panel's permutation p-values: layout, the request a view asks, and the
callbacks that start, follow, cancel and show a job (:mod:`dashboard.jobs.permute`).

What the panel shows is always the job of the view's settings and the panel's own
(permutations, seed, TFCE): a change of threshold or subset shows that question's job
(done, running, or not run), never another's.  A job runs in a Dash background
callback; a page that finds a job already running (a reload, another tab, another
user) follows it through the job store, with the same progress bar.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import figures
from dashboard import permutation as perm
from dashboard.app import ids
from dashboard.app.engine import Engine, _directions
from dashboard.jobs.permute import PermutationJobs
from dashboard.stats.permutation import DEFAULT_N_PERM, MAX_N_PERM

log = logging.getLogger(__name__)

P_FORMAT = {"function": "params.value == null ? '' : (params.value < 0.001 ? d3.format('.1e')(params.value) : d3.format('.3f')(params.value))"}
STATUS_TEXT = {"running": "running", "done": "done", "cancelled": "cancelled", "failed": "failed", "stalled": "stopped (its process ended)"}


def panel(study) -> html.Div:
    """Controls, progress, the table of permutation p-values beside RFT's, the nulls."""
    n = len(study.participant_ids)
    cols = [
        {"field": "cluster", "headerName": "#", "width": 60},
        {"field": "direction", "headerName": "Dir.", "width": 70},
        {"field": "xyz", "headerName": "x y z (mm)", "width": 120},
        {"field": "k", "headerName": "k", "width": 70},
        {"field": "peak_t", "headerName": "T", "width": 80, "valueFormatter": {"function": "params.value == null ? '' : d3.format('.2f')(params.value)"}},
        {"headerName": "peak p-FWE", "children": [
            {"field": "p_fwe_peak", "headerName": "RFT", "width": 96, "valueFormatter": P_FORMAT, "headerTooltip": "SPM's RFT peak p-FWE"},
            {"field": "p_fwe_perm_peak", "headerName": "perm.", "width": 96, "valueFormatter": P_FORMAT,
             "headerTooltip": "share of sign flips whose maximum T reaches this peak's T"}]},
        {"headerName": "cluster p-FWE", "children": [
            {"field": "p_fwe_cluster", "headerName": "RFT", "width": 96, "valueFormatter": P_FORMAT, "headerTooltip": "SPM's RFT cluster p-FWE (extent)"},
            {"field": "p_fwe_perm_cluster", "headerName": "perm. extent", "width": 124, "valueFormatter": P_FORMAT,
             "headerTooltip": "share of sign flips whose largest cluster at the same height has at least k voxels"},
            {"field": "p_fwe_perm_mass", "headerName": "perm. mass", "width": 118, "valueFormatter": P_FORMAT,
             "headerTooltip": "share of sign flips whose largest cluster mass (sum of T - u) reaches this cluster's"}]},
        {"field": "p_fwe_perm_tfce", "headerName": "TFCE p-FWE", "width": 126, "valueFormatter": P_FORMAT,
         "headerTooltip": "share of sign flips whose maximum TFCE reaches the TFCE at this peak"},
        {"field": "label", "headerName": "Atlas label", "flex": 1, "minWidth": 140},
    ]
    grid = dag.AgGrid(id=ids.PERM_GRID, columnDefs=cols, rowData=[], getRowId="params.data.row",
                      defaultColDef={"sortable": True, "resizable": True}, style={"height": "220px", "width": "100%"},
                      className="ag-theme-quartz", dashGridOptions={"animateRows": False, "suppressCellFocus": True})
    return html.Div([
        html.Div("Permutation p-values (sign flips of per-participant contrast images: SnPM, randomise -1)", className="fw-semibold mt-2"),
        dbc.Row([
            dbc.Col(dbc.InputGroup([dbc.InputGroupText("permutations"),
                                    dbc.Input(id=ids.PERM_N, type="number", min=1, max=MAX_N_PERM, step=1, value=DEFAULT_N_PERM,
                                              debounce=True, persistence=True, persistence_type="session", style={"maxWidth": "7rem"})], size="sm"), width="auto"),
            dbc.Col(dbc.InputGroup([dbc.InputGroupText("seed"),
                                    dbc.Input(id=ids.PERM_SEED, type="number", min=0, step=1, value=0, debounce=True, persistence=True, persistence_type="session",
                                              style={"maxWidth": "5rem"})], size="sm"), width="auto"),
            dbc.Col(dbc.Checkbox(id=ids.PERM_TFCE, label="TFCE (E 0.5, H 2)", value=False, persistence=True, persistence_type="session"), width="auto", className="pt-1"),
            dbc.Col(dbc.Button("Run", id=ids.PERM_RUN, color="primary", size="sm", n_clicks=0), width="auto"),
            dbc.Col(dbc.Button("Cancel", id=ids.PERM_CANCEL, color="secondary", outline=True, size="sm", n_clicks=0, disabled=True), width="auto"),
            dbc.Col(dbc.Button("Use the paired model", id=ids.PERM_USE_PAIRED, color="link", size="sm", n_clicks=0,
                               style={"display": "none"}), width="auto"),
            dbc.Col(html.Div(dbc.Progress(id=ids.PERM_PROGRESS, value=0, max=1, label="", striped=True, animated=True,
                                          style={"height": "1.4rem"}), id=ids.PERM_PROGRESS_WRAP, style={"display": "none"})),
        ], className="g-2 align-items-center my-1"),
        html.Div(id=ids.PERM_STATUS, className="small mb-1"),
        html.Div(f"{n} participants: {'every one of the 2^' + str(n) + ' sign flips when that is fewer than asked' if n <= 20 else 'random sign flips'}; "
                 "the data as observed is the first flip, so p ≥ 1/permutations. Each direction is its own family, as SPM's.",
                 className="small text-muted mb-1"),
        grid,
        dbc.Row([
            dbc.Col(html.Div(dcc.Graph(id=ids.PERM_FIGURE, config={"displaylogo": False}, figure=figures.empty_figure("", 240)),
                             id=ids.PERM_FIGURE_WRAP, style={"display": "none"}), lg=8),
            dbc.Col(html.Div([
                dbc.InputGroup([dbc.InputGroupText("TFCE p-FWE <"),
                                dbc.Input(id=ids.PERM_ALPHA, type="number", min=0.0001, max=1, step=0.01, value=0.05, debounce=True, persistence=True, persistence_type="session",
                                          style={"maxWidth": "6rem"})], size="sm", className="mb-1"),
                dcc.Graph(id=ids.PERM_MAP, config={"displaylogo": False}, figure=figures.empty_figure("", 240)),
            ], id=ids.PERM_MAP_WRAP, style={"display": "none"}), lg=4),
        ], className="g-2"),
        dcc.Store(id=ids.PERM_REQUEST, data=None),
        dcc.Store(id=ids.PERM_DONE, data=None),
        # not None: a memory Store whose data is None sets it (to undefined) on mount,
        # which would call the background ``run`` on every page load
        dcc.Store(id=ids.PERM_START, data={}),
        dcc.Store(id=ids.PERM_FOLLOW, data={}),
    ])


def request_of(engine: Engine, state: dict, n_perm: Any, seed: Any, tfce: Any) -> perm.PermutationRequest:
    """The permutation question of a (checked) view state and the panel's settings;
    ValueError (its message for the panel) when it cannot be asked."""
    if state.get("svc"):
        raise ValueError("permutation p-values are for the whole volume: clear the small-volume regions to run them")
    if isinstance(n_perm, bool) or not isinstance(n_perm, int | float) or not float(n_perm).is_integer():
        raise ValueError(f"the number of permutations must be a whole number from 1 to {MAX_N_PERM}")
    if isinstance(seed, bool) or not isinstance(seed, int | float) or not float(seed).is_integer():
        raise ValueError("the seed must be a whole number from 0")
    study = engine.study
    subset = engine.subset(state["participants"])
    model = "design" if study.design_rows is not None else state["model"]
    _, df = engine.volume(state["contrast"], state["model"], subset)
    height = engine.height(state, df)
    request = perm.PermutationRequest(state["contrast"], float(height), _directions(state["direction"]), model, subset,
                                      int(n_perm), int(seed), bool(tfce))
    with engine.lock:
        perm.check_supported(engine.analysis, request.contrast, request.model, request.participants)  # refuses what is no sign-flip test
    return request


def checked_request(engine: Engine, data: Any) -> perm.PermutationRequest:
    """A request the page sends back, rebuilt and checked against the study (a crafted
    one raises ValueError or KeyError)."""
    if not isinstance(data, dict):
        raise ValueError("not a permutation request")
    request = perm.PermutationRequest.from_dict(data)
    subset = engine.subset(list(request.participants))
    if subset != request.participants or len(subset) < 2:
        raise ValueError("unknown or unordered participants")
    engine.study.contrast(request.contrast)
    if request.model not in ("design", "cells", "subjects", "paired"):
        raise ValueError("unknown model")
    return request


HIDDEN = {"display": "none"}  # a wrapper's style while its figure has nothing to show (and is not redrawn)


class Shown:
    """Observed statistics per request, computed once per process (the null's identity)."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def observed(self, engine: Engine, request: perm.PermutationRequest, key: str):
        if key not in self._cache:
            with engine.lock:
                self._cache[key] = perm.observed(engine.analysis, request)
            while len(self._cache) > 6:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[key]


def status_line(state: dict | None) -> str:
    if not state:
        return "Not run for these settings (Run computes the p-values and draws their null distributions)."
    status = state.get("status", "")
    done, total = int(state.get("done", 0)), int(state.get("total", 0))
    text = f"Job {STATUS_TEXT.get(status, status)}: {done} of {total} sign flips"
    if status == "done" and state.get("seconds"):
        text += f" in {float(state['seconds']):.1f} s"
    if status == "failed":
        text += f" ({state.get('error', '')})"
    return text + "."


def progress_label(state: dict) -> tuple[int, int, str]:
    done, total = int(state.get("done", 0)), max(int(state.get("total", 0)), 1)
    rate = float(state.get("rate", 0.0))
    left = state.get("left")
    text = f"{done} / {total} flips"
    if rate:
        text += f", {rate:.0f}/s"
    if left is not None:
        text += f", {float(left):.0f} s left"
    if state.get("queued"):
        text += f" ({state['queued']} chunks waiting for a worker)"
    return done, total, text


def outputs(engine: Engine, jobs: PermutationJobs, shown: Shown, state: dict, request: perm.PermutationRequest, alpha: Any):
    """Status, grid rows, null figure, TFCE map figure and its visibility of a request."""
    job = jobs.state(request)
    result = jobs.result(request) if job and job.get("status") == "done" else None
    table = engine.table(state, with_rft=engine.rft_ready(state["contrast"], state["model"], engine.subset(state["participants"])))
    frame = table.frame
    if result is not None:
        obs = shown.observed(engine, request, jobs.key(request))
        frame = perm.add_columns(engine.analysis, frame, result, obs, height=table.height)
    rows = []
    for i, rec in enumerate(frame.to_dict("records")):
        row = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in rec.items()
               if k in ("direction", "k", "peak_t", "p_fwe_peak", "p_fwe_cluster", "label", *perm.PERM_COLUMNS, perm.TFCE_COLUMN)}
        row.update(row=str(i), cluster=int(rec["cluster_id"]), xyz=f"{rec['x']:g} {rec['y']:g} {rec['z']:g}", k=int(rec["k"]))
        rows.append(row)
    text = status_line(job)
    if result is None:
        return text, rows, no_update, HIDDEN, no_update, HIDDEN
    used = f"{result.null.n} sign flips" + (" (every flip: an exact test)" if result.exhaustive else f", seed {request.seed}")
    text = f"{text} p-FWE from {used}, clusters at T > {request.height:.3f}."
    first = request.directions[0]
    main = frame[frame["direction"] == first].drop_duplicates("cluster_id")
    obs = shown.observed(engine, request, jobs.key(request))
    sign = 1.0 if first == "pos" else -1.0
    panels = [("max T", result.null.stats[first]["max_t"], [(float(t), f"cluster {c}") for t, c in zip(main["peak_t"], main["cluster_id"], strict=True)]),
              ("max cluster extent (voxels)", result.null.stats[first]["max_extent"], [(float(k), f"cluster {c}") for k, c in zip(main["k"], main["cluster_id"], strict=True)]),
              ("max cluster mass (sum of T − u)", result.null.stats[first]["max_mass"],
               [(float(m), f"cluster {c}") for m, c in zip(main[perm.MASS_COLUMN], main["cluster_id"], strict=True)])]
    if request.tfce and obs.tfce is not None:
        panels.append(("max TFCE", result.null.stats[first]["max_tfce"], [(float(np.max(sign * obs.tfce)), "observed max")]))
    fig = figures.permutation_null_figure(panels)
    if not request.tfce or obs.tfce is None:
        return text, rows, fig, {}, no_update, HIDDEN
    a = float(alpha) if isinstance(alpha, int | float) and not isinstance(alpha, bool) and 0 < float(alpha) <= 1 else 0.05
    keep = np.zeros(obs.t.shape, bool)
    for d in request.directions:
        keep |= perm.tfce_fwe_map(result, obs, d) < a
    vol = figures.to_ras(engine.study.unmask(np.where(keep, obs.t, np.nan).astype(np.float32)), engine.study.affine)[0]
    n_sig = int(keep.sum())
    text += f" TFCE: {n_sig} voxels at p-FWE < {a:g} (shown in the glass brain beside)."
    tfce_fig = figures.glass_brain_figure([(vol, f"TFCE p-FWE < {a:g}: {n_sig} voxels")], engine.grid, threshold=1e-6,
                                          vmax=max(float(np.nanmax(np.abs(obs.t))), 1.0), direction="both", outline=engine.mask, height=240)
    return text, rows, fig, {}, tfce_fig, {}


def token(request: perm.PermutationRequest, jobs: PermutationJobs, state: dict, alpha: Any) -> list:
    """What a drawn panel answers: the job (its key) and the view's other settings the
    drawing depends on (the extent k of the table, the TFCE map's alpha)."""
    return [jobs.key(request), int(state["k"]), alpha]


def register(app, engine: Engine, jobs: PermutationJobs, jobs_dir: str) -> None:
    """The panel's callbacks (``jobs_dir``: where the background callbacks' own
    bookkeeping goes).

    Graph (no cycle: a finished job's drawing goes through the browser, which keeps it
    only if it still answers the panel's current question)::

        VIEW, panel settings ── show ─> status, grid, figures, PERM_REQUEST {request, token, running}
        Run ── permStart ─> PERM_START ─────────────────────┬─ run (background: start or follow) ─> progress; PERM_DONE {token, outputs}
        PERM_REQUEST ── permFollow (only if running) ─> PERM_FOLLOW ┘
        PERM_DONE ── permShown (clientside, if its token is PERM_REQUEST's) ─> status, grid, figures
        Cancel ── cancel ─> the job's cancel flag

    A background callback forks the server process before its function runs, so ``run``
    is triggered only by a Run click or a running job to follow, never by a page load or
    a view change.
    """
    import os

    from dash import ctx

    from dashboard.app import views
    from dashboard.app.callbacks import cue_function
    from dashboard.app.jobs import uncached_manager

    shown = Shown()
    hide = HIDDEN
    # ``run`` forks a process per call: its two stores change only on a Run click and
    # while a job runs (tests/app/test_views.py and pm004 check that no page load or view
    # change starts one)
    app.clientside_callback(cue_function("permStart"), Output(ids.PERM_START, "data"), Input(ids.PERM_RUN, "n_clicks"),
                            prevent_initial_call=True)
    app.clientside_callback(cue_function("permFollow"), Output(ids.PERM_FOLLOW, "data"), Input(ids.PERM_REQUEST, "data"))

    @app.callback(
        Output(ids.PERM_STATUS, "children"), Output(ids.PERM_GRID, "rowData"), Output(ids.PERM_FIGURE, "figure"),
        Output(ids.PERM_FIGURE_WRAP, "style"), Output(ids.PERM_MAP, "figure"), Output(ids.PERM_MAP_WRAP, "style"), Output(ids.PERM_REQUEST, "data"),
        Output(ids.PERM_USE_PAIRED, "style"),
        Input(ids.VIEW, "data"), Input(ids.PERM_N, "value"), Input(ids.PERM_SEED, "value"), Input(ids.PERM_TFCE, "value"),
        Input(ids.PERM_ALPHA, "value"),
    )
    def show(state, n_perm, seed, tfce, alpha):
        try:
            state = views.checked_state(engine, state)
        except ValueError as exc:
            raise PreventUpdate from exc
        try:
            request = request_of(engine, state, n_perm, seed, tfce)
        except ValueError as exc:
            paired = {} if (engine.study.design_rows is None and engine.study.has_participant_images and state["model"] != "paired") else hide
            return html.Span(views.error_text(exc), className="text-muted"), [], no_update, hide, no_update, hide, None, paired
        try:
            drawn = outputs(engine, jobs, shown, state, request, alpha)
        except ValueError as exc:
            return html.Span(views.error_text(exc), className="text-danger"), [], no_update, hide, no_update, hide, None, hide
        job = jobs.state(request)
        data = {"request": request.to_dict(), "token": token(request, jobs, state, alpha), "state": state, "alpha": alpha,
                "running": bool(job and job.get("status") == "running")}
        return (*drawn, data, hide)

    @app.callback(
        Output(ids.PERM_DONE, "data"),
        Input(ids.PERM_START, "data"), Input(ids.PERM_FOLLOW, "data"), State(ids.PERM_REQUEST, "data"),
        background=True, manager=uncached_manager(os.path.join(jobs_dir, "permute-callbacks")),
        progress=[Output(ids.PERM_PROGRESS, "value"), Output(ids.PERM_PROGRESS, "max"), Output(ids.PERM_PROGRESS, "label")],
        progress_default=[0, 1, ""],
        running=[(Output(ids.PERM_RUN, "disabled"), True, False), (Output(ids.PERM_CANCEL, "disabled"), False, True),
                 (Output(ids.PERM_PROGRESS_WRAP, "style"), {}, {"display": "none"}),
                 (Output(ids.PERM_STATUS, "style"), {"display": "none"}, {})],
        interval=300,
        prevent_initial_call=True,
    )
    def run(set_progress, start, follow, current):
        # a Run click starts (or joins) the job of the panel's question; a new question
        # whose job is already running (a reload, another tab or user) is followed
        # (should both stores arrive in one call, a Run click wins)
        triggered = set(ctx.triggered_prop_ids.values())
        following = not (ids.PERM_START in triggered and start) and ids.PERM_FOLLOW in triggered
        asked = follow if following else current
        if not isinstance(asked, dict) or (following and not asked.get("running")) or (not following and not start):
            raise PreventUpdate
        try:
            request = checked_request(engine, asked.get("request"))
            state = views.checked_state(engine, asked.get("state"))
        except (KeyError, TypeError, ValueError) as exc:
            raise PreventUpdate from exc
        last = [0.0]

        def on_state(job: dict) -> None:
            now = time.perf_counter()
            if job.get("status") == "running" and now - last[0] > 0.2:
                last[0] = now
                set_progress(progress_label(job))

        if not following and hasattr(os, "nice"):
            os.nice(5)  # this forked job process yields to the server's requests (the page stays responsive)
        jobs.run(request, on_state, follow_only=following)
        try:
            drawn = outputs(engine, jobs, shown, state, request, asked.get("alpha"))
        except ValueError as exc:
            drawn = (views.error_text(exc), [], no_update, hide, no_update, hide)
        return {"token": asked.get("token"), "outputs": [x if x is not no_update else None for x in drawn]}

    app.clientside_callback(
        cue_function("permShown"),
        Output(ids.PERM_STATUS, "children", allow_duplicate=True), Output(ids.PERM_GRID, "rowData", allow_duplicate=True),
        Output(ids.PERM_FIGURE, "figure", allow_duplicate=True), Output(ids.PERM_FIGURE_WRAP, "style", allow_duplicate=True),
        Output(ids.PERM_MAP, "figure", allow_duplicate=True),
        Output(ids.PERM_MAP_WRAP, "style", allow_duplicate=True),
        Input(ids.PERM_DONE, "data"), State(ids.PERM_REQUEST, "data"),
        prevent_initial_call=True,
    )

    @app.callback(Output(ids.PERM_STATUS, "children", allow_duplicate=True), Input(ids.PERM_CANCEL, "n_clicks"),
                  State(ids.PERM_REQUEST, "data"), prevent_initial_call=True)
    def cancel(_clicks, asked):
        try:
            request = checked_request(engine, (asked or {}).get("request"))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PreventUpdate from exc
        jobs.cancel(request)
        return "Cancelling…"

    @app.callback(Output(ids.MODEL, "value", allow_duplicate=True), Input(ids.PERM_USE_PAIRED, "n_clicks"), prevent_initial_call=True)
    def use_paired(clicks):
        if not clicks:
            raise PreventUpdate
        return "paired"
