"""Callbacks: wire component properties to :mod:`dashboard.app.views` (which does the
work from the engine and the view state).

Callback graph (``VIEW`` = the one serialisable view state, :mod:`dashboard.app.state`)::

    contrast, direction, use-T switch, p, T, k, model,          ┐
    covariate, value, condition, x/y/z inputs,                  │    VIEW (+ x/y/z inputs), and in the
    glass-brain / slice clickData, cluster-table cellClicked,   ├─ update ─> same response what changed of: glass brain +
    participant-grid selectedRows, regression-scatter clickData ┘    3 slices (Patches), status, cluster table
                                                                     (+ RFT_PENDING), regression scatter + stats
    RFT_PENDING ── estimate_rft ─> RFT_ROWS ── (clientside, only if still the table shown) ─> table rows with RFT p-values
    quick filters, "Include all", "Exclude sub-XX" ── select_participants ─> participant-grid selectedRows (-> update)
    regression-scatter clickData, grid selectedRows ── offer_exclusion ─> exclude button, grid highlight + scroll
    use-T switch ── (clientside) ─> p / T inputs enabled
    VIEW ─┬─ count_included (clientside) ─> "N of M included"
          ├─ (clientside, while the compare tab is shown) COMPARE_VIEW ─┬─ draw_compare (+ correspondence-grid selection) ─> glass brains, pair outlines
          │                                                             └─ correspondence ─> correspondence grid
          ├─ (clientside, while the claim tab is shown) CLAIM_VIEW ── check_claims (+ table choice, column mapping, UPLOAD) ─> verdicts
          ├─ survivalRequest (clientside) ─> SURVIVAL_REQUEST ── leave_one_out (background job, on click) ─> survival table, strip plot
          └─ (+ the panel's settings) permutation panel: show / run / permShown / cancel (graph in dashboard.app.permute.register)
    RENDERED_REGRESSION ── afterPaint (clientside) ─> INFLUENCE_REQUEST ── draw_influence ─> influence bars, participant-grid columns
    peak layers, RENDERED_MAPS ── peakView (clientside, only while a layer is on) ─> PEAK_VIEW ── draw_peaks ─> markers (annotation Patches), distances
    upload ── receive_upload ─> UPLOAD (kept by the page), mapping dropdowns, table and layer options
    claim-grid / peak-grid cellClicked ── goto_row ─> contrast and direction controls + GOTO (-> update)

Every value a request carries comes from the page and is checked before use
(:func:`views.checked_state` for the view state, the typed checks of
:mod:`dashboard.app.views` for inputs): a value that cannot be used is ignored
(``PreventUpdate``, HTTP 204) or answered with a message.  The clientside callbacks
are named functions in ``assets/*.js`` (namespace ``cue``): no JavaScript is built
here, and values reach the browser as data.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dash
from dash import ALL, ClientsideFunction, Input, Output, Patch, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.app import ids, layout, peaks, views
from dashboard.app import state as st
from dashboard.app.engine import Engine
from dashboard.figures import empty_figure as figures_empty
from dashboard.filters import quick_filters

log = logging.getLogger(__name__)

# input id -> what it changes in the view state (see views.next_state)
INPUT_KINDS = {
    ids.CONTRAST: "contrast", ids.DIRECTION: "direction", ids.USE_T: "use_t", ids.P_KIND: "p_kind", ids.P_UNC: "p_unc", ids.T_VALUE: "t",
    ids.EXTENT: "k", ids.SVC_REGIONS: "svc", ids.MODEL: "model", ids.COVARIATE: "covariate", ids.VALUE_TYPE: "value", ids.CONDITION: "condition",
    ids.POINT_X: "x", ids.POINT_Y: "y", ids.POINT_Z: "z", ids.GLASS_BRAIN: "glass",
    ids.SLICE_SAGITTAL: "slice0", ids.SLICE_CORONAL: "slice1", ids.SLICE_AXIAL: "slice2",
    ids.CLUSTER_TABLE: "table", ids.PARTICIPANT_GRID: "participants", ids.GOTO: "goto",
}
# the controls whose value *is* part of the view state (the rest are events: clicks,
# typed coordinates, the participant selection)
CONTROL_IDS = (ids.CONTRAST, ids.DIRECTION, ids.USE_T, ids.P_KIND, ids.P_UNC, ids.T_VALUE, ids.EXTENT, ids.SVC_REGIONS, ids.MODEL, ids.COVARIATE,
               ids.VALUE_TYPE, ids.CONDITION)
INPUT_PROPS = {ids.GLASS_BRAIN: "clickData", ids.SLICE_SAGITTAL: "clickData", ids.SLICE_CORONAL: "clickData",
               ids.SLICE_AXIAL: "clickData", ids.CLUSTER_TABLE: "cellClicked", ids.PARTICIPANT_GRID: "selectedRows", ids.GOTO: "data"}
# the clientside function (assets/hover.js) that shows T under the pointer over each map view
TOOLTIPS = {ids.GLASS_BRAIN: "glassTooltip", ids.SLICE_SAGITTAL: "sagittalTooltip", ids.SLICE_CORONAL: "coronalTooltip",
            ids.SLICE_AXIAL: "axialTooltip"}


def cue_function(name: str) -> ClientsideFunction:
    """A clientside callback of assets/*.js (namespace ``cue``)."""
    return ClientsideFunction(namespace="cue", function_name=name)


def checked_or_prevent(engine: Engine, state: Any) -> dict:
    """The view state a request carries, checked; a crafted one ends the request (204)."""
    try:
        return views.checked_state(engine, state)
    except ValueError as exc:
        log.info("view state refused: %s", exc)
        raise PreventUpdate from exc


def register(app: dash.Dash, engine: Engine, permutations: Any = None, jobs_dir: str = "") -> None:
    inputs = [Input(cid, INPUT_PROPS.get(cid, "value")) for cid in INPUT_KINDS]

    # One request per user action: the new view state and every view that changed come
    # back together (a state callback chained to three drawing callbacks cost a second
    # round trip, and the three competed for the engine lock and the GIL).
    @app.callback(
        Output(ids.VIEW, "data"), Output(ids.POINT_X, "value"), Output(ids.POINT_Y, "value"), Output(ids.POINT_Z, "value"),
        Output(ids.GLASS_BRAIN, "figure"), *[Output(s, "figure") for s in ids.SLICES], Output(ids.HOVER, "data"), Output(ids.STATUS, "children"),
        Output(ids.POINT_TEXT, "children"), Output(ids.RENDERED_MAPS, "data"),
        Output(ids.CLUSTER_TABLE, "rowData"), Output(ids.CLUSTER_NOTE, "children"), Output(ids.CLUSTER_FOOTER, "children"),
        Output(ids.RENDERED_TABLE, "data"), Output(ids.CLUSTER_TABLE, "selectedRows"),
        Output(ids.RFT_PENDING, "data"),
        Output(ids.SCATTER, "figure"), Output(ids.REG_STATS, "children"), Output(ids.RENDERED_REGRESSION, "data"),
        *inputs, Input(ids.SCATTER, "clickData"),
        State(ids.VIEW, "data"), State(ids.RENDERED_MAPS, "data"), State(ids.RENDERED_TABLE, "data"),
        State(ids.RENDERED_REGRESSION, "data"),
    )
    def update(*args):
        *values, click, state, rendered_maps, rendered_table, rendered_regression = args
        state = checked_or_prevent(engine, state)
        trigger = ctx.triggered_id
        # The controls are the truth: every control's value comes with every request, so
        # the new state is built from them, not from the stored VIEW alone (which is
        # stale while another request is in flight).  Dash drops the response of a
        # superseded request, so what lands on the page is built from the latest controls.
        by_id = dict(zip(INPUT_KINDS, values, strict=True))
        new = views.state_from_controls(engine, state, {INPUT_KINDS[cid]: by_id[cid] for cid in CONTROL_IDS})
        # the events of this request: a click, a point, a subset (a row of another table sets
        # the contrast control and asks to go to its point in the same response); none on the
        # first call, and an event input without a value (the GOTO store before any row
        # click) is no event
        events = [] if trigger is None else [t for t in ctx.triggered_prop_ids.values()
                                             if isinstance(t, str) and t not in CONTROL_IDS and t in INPUT_KINDS and by_id[t] is not None]
        ignored = 0
        for event in events:
            try:
                new = views.next_state(engine, new, event, by_id[event], INPUT_KINDS)
            except ValueError as exc:
                log.info("input ignored: %s", exc)
                ignored += 1
        if events and ignored == len(events) and new == state:
            raise PreventUpdate
        new = views.valid_cluster(engine, new)
        with engine.interactive():
            maps = _maps(new, rendered_maps)
            table = _table(new, rendered_table)
            selection = (views.selected_rows(engine, new) if (new.get("cluster") != state.get("cluster") or table[0] is not no_update
                                                                 or trigger is None) else no_update)
            regression = _regression(new, views.clicked_participant(click), rendered_regression)
        if trigger is None:  # the first view is on its way: participant images next
            engine.preload_participant_data()
        return (*_state_outputs(state, new, trigger), *maps, *table[:4], selection, table[4], *regression)

    def _state_outputs(state: dict, new: dict, trigger) -> tuple:
        """VIEW and the x/y/z inputs; outputs that did not change are not sent (each one
        re-renders its component)."""
        if trigger is None:  # first call: the inputs already show the state
            return (no_update,) * 4
        same_point = new["point"] == state["point"] and trigger not in (ids.POINT_X, ids.POINT_Y, ids.POINT_Z)
        x, y, z = (no_update,) * 3 if same_point else new["point"]
        return (new if new != state else no_update), x, y, z

    # T under the pointer: looked up in the browser (assets/hover.js) in the hover values
    # that come with the maps; no request while the pointer moves
    for gid in ids.MAP_VIEWS:
        app.clientside_callback(
            cue_function(TOOLTIPS[gid]),
            Output(ids.tooltip(gid), "show"), Output(ids.tooltip(gid), "bbox"), Output(ids.tooltip(gid), "children"),
            Input(gid, "hoverData"), State(ids.HOVER, "data"),
            prevent_initial_call=True,
        )

    # the direction labels follow the contrast (in the browser, from data sent once)
    app.clientside_callback(
        cue_function("directionOptions"),
        Output(ids.DIRECTION, "options"),
        Input(ids.CONTRAST, "value"), State(ids.DIRECTION_OPTIONS, "data"),
    )

    # p uncorrected <-> FWE: the p input takes SPM's default of that kind (0.001 / 0.05)
    app.clientside_callback(
        cue_function("pDefault"),
        Output(ids.P_UNC, "value"),
        Input(ids.P_KIND, "value"),
        prevent_initial_call=True,
    )

    # typed thresholds: marked invalid, with the reason, in the browser at once
    # (assets/validate.js; the functions are named, no code is built from values)
    for cid, function in ((ids.P_UNC, "pProblem"), (ids.T_VALUE, "tProblem"), (ids.EXTENT, "kProblem")):
        app.clientside_callback(
            cue_function(function),
            Output(cid, "invalid"), Output(ids.feedback(cid), "children"),
            Input(cid, "value"),
        )

    # which threshold input is active: in the browser, at once
    app.clientside_callback(
        cue_function("thresholdInputsDisabled"),
        Output(ids.P_UNC, "disabled"), Output(ids.T_VALUE, "disabled"), Output(ids.P_KIND, "disabled"),
        Input(ids.USE_T, "value"),
    )
    # switching from p to T keeps the threshold: T starts at the height now shown (to
    # SPM's two decimals), set in the browser before any request so nothing typed is overwritten
    app.clientside_callback(
        cue_function("tStart"),
        Output(ids.T_VALUE, "value"),
        Input(ids.USE_T, "value"), State(ids.RENDERED_MAPS, "data"),
        prevent_initial_call=True,
    )

    def _maps(state: dict, rendered) -> tuple:
        """glass brain, 3 slices, hover values, status, point text, RENDERED_MAPS."""
        try:
            glass, slices, hover, status, point_text, new_rendered = views.draw_maps(engine, state, rendered)
        except Exception as exc:  # say it on the page
            log.exception("draw_maps")
            return (no_update,) * 5 + (f"Cannot compute this view: {views.error_text(exc)}", no_update, no_update)
        return glass, *slices, hover, status, point_text, new_rendered

    def _table(state: dict, rendered) -> tuple:
        """rows, note, footer, RENDERED_TABLE, RFT_PENDING."""
        subset = engine.subset(state["participants"])
        ready = engine.rft_ready(state["contrast"], state["model"], subset)
        key = [*st.table_key(state), ready]
        if key == rendered:
            return (no_update,) * 5
        try:
            rows, note = views.table_rows(engine, state, with_rft=ready, pending=not ready)
            footer = views.table_footer(engine, state, with_rft=ready)
        except Exception as exc:
            log.exception("table")
            return [], f"Cannot compute the cluster table: {views.error_text(exc)}", "", key, None
        # no_update when nothing is pending: setting the store would fire estimate_rft
        # (one more request per action) only for it to find nothing to do
        return rows, note, footer, key, (no_update if ready else st.table_key(state))

    def _regression(state: dict, highlight: str | None, rendered) -> tuple:
        """scatter, stats box, RENDERED_REGRESSION."""
        # without a cluster the panel says so whatever the rest of the state: not redrawn
        key = [st.regression_key(state), highlight] if state["cluster"] else ["no cluster"]
        if key == rendered:
            return (no_update,) * 3
        try:
            fig, stats = views.draw_regression(engine, state, highlight)
        except Exception as exc:
            log.exception("regression")
            return figures_empty(f"Cannot compute the regression: {views.error_text(exc)}"), "", key
        return fig, stats, key

    # each participant's influence on the regression shown (LTS refits: ~50-90 ms), in its own
    # request once the scatter is painted, so a cluster click is not slowed by it
    if engine.study.can_refit:
        app.clientside_callback(cue_function("afterPaint"), Output(ids.INFLUENCE_REQUEST, "data"), Input(ids.RENDERED_REGRESSION, "data"),
                                prevent_initial_call=True)

        @app.callback(
            Output(ids.INFLUENCE, "figure"), Output(ids.INFLUENCE_NOTE, "children"), Output(ids.PARTICIPANT_GRID, "rowData"),
            Input(ids.INFLUENCE_REQUEST, "data"), State(ids.VIEW, "data"),
            prevent_initial_call=True,
        )
        def draw_influence(rendered, state):
            state = checked_or_prevent(engine, state)
            highlight = rendered[1] if isinstance(rendered, list) and len(rendered) == 2 and isinstance(rendered[1], str) else None
            try:
                return views.draw_influence(engine, state, highlight)
            except Exception as exc:
                log.exception("influence")
                return figures_empty(f"Cannot compute the influence: {views.error_text(exc)}", 220), "", no_update

    # leave-one-out survival of the selected cluster: a background job (jobs.py) with
    # progress and cancel; its result is cached by the question (SURVIVAL_REQUEST) and shown
    # only while that is still the selected cluster's (survivalShown)
    if engine.study.can_refit:
        app.clientside_callback(cue_function("survivalRequest"), Output(ids.SURVIVAL_REQUEST, "data"), Input(ids.VIEW, "data"))
        app.clientside_callback(
            cue_function("survivalShown"),
            Output(ids.SURVIVAL_RESULT, "style"), Output(ids.SURVIVAL_STALE, "children"),
            Input(ids.SURVIVAL_REQUEST, "data"), Input(ids.SURVIVAL_SHOWN, "data"),
        )

        @app.callback(
            Output(ids.SURVIVAL_SUMMARY, "children"), Output(ids.SURVIVAL_FIGURE, "figure"), Output(ids.SURVIVAL_GRID, "rowData"),
            Output(ids.SURVIVAL_SHOWN, "data"),
            Input(ids.SURVIVAL_RUN, "n_clicks"), State(ids.SURVIVAL_REQUEST, "data"),
            background=True,
            progress=[Output(ids.SURVIVAL_PROGRESS, "value"), Output(ids.SURVIVAL_PROGRESS, "label")],
            progress_default=[0, ""],
            running=[(Output(ids.SURVIVAL_RUN, "disabled"), True, False), (Output(ids.SURVIVAL_CANCEL, "disabled"), False, True),
                     (Output(ids.SURVIVAL_PROGRESS_WRAP, "style"), {}, {"display": "none"})],
            cancel=[Input(ids.SURVIVAL_CANCEL, "n_clicks")],
            cache_args_to_ignore=[0],  # the click count: the same question is answered from the cache
            interval=250,
            prevent_initial_call=True,
        )
        def leave_one_out(set_progress, _clicks, request):
            try:
                question = views.survival_request(engine, request)
            except ValueError as exc:
                return html.Span(views.error_text(exc), className="text-danger"), figures_empty("", 300), [], request
            total = len(question["participants"])
            started = time.perf_counter()

            def progress(done: int, _total: int) -> None:
                elapsed = time.perf_counter() - started
                left = f", about {elapsed / done * (_total - done):.0f} s left" if done else ""
                set_progress((done, f"{done} of {_total} refits{left}"))

            progress(0, total)
            try:
                data = views.run_survival(engine, question, progress)
            except ValueError as exc:
                return html.Span(views.error_text(exc), className="text-danger"), figures_empty("", 300), [], request
            summary, figure, rows = views.survival_outputs(engine, data)
            return summary, figure, rows, request

    # permutation p-values of the cluster table: background jobs (dashboard.app.permute)
    if permutations is not None and engine.study.can_refit:
        from dashboard.app import permute

        permute.register(app, engine, permutations, jobs_dir)

    # RFT p-values of a new participant subset / model: the smoothness estimate (about a
    # second) runs in its own request and its rows come back tagged with the table key
    # they answer; the browser puts them in the table only if that key is still the
    # table shown (RENDERED_TABLE, set by `update`), so a late answer can never put an
    # old table under newer controls.
    @app.callback(
        Output(ids.RFT_ROWS, "data"),
        Input(ids.RFT_PENDING, "data"), State(ids.VIEW, "data"),
        prevent_initial_call=True,
    )
    def estimate_rft(pending, state):
        state = checked_or_prevent(engine, state)
        if not isinstance(pending, list) or st.table_key(state) != pending:
            raise PreventUpdate
        # the estimate holds the engine lock for about a second: let the callbacks of the
        # same action (maps, regression) finish first
        engine.wait_interactive()
        if st.table_key(state) != pending:
            raise PreventUpdate
        try:
            rows, note = views.table_rows(engine, state, with_rft=True, pending=False)
            footer = views.table_footer(engine, state, with_rft=True)
        except Exception as exc:
            log.exception("estimate_rft")
            return {"key": pending, "rows": None, "note": f"RFT p-values failed: {views.error_text(exc)}", "footer": ""}
        return {"key": pending, "rows": rows, "note": note, "footer": footer}

    app.clientside_callback(
        cue_function("rftRows"),
        Output(ids.CLUSTER_TABLE, "rowData", allow_duplicate=True), Output(ids.CLUSTER_NOTE, "children", allow_duplicate=True),
        Output(ids.CLUSTER_FOOTER, "children", allow_duplicate=True), Output(ids.RENDERED_TABLE, "data", allow_duplicate=True),
        Input(ids.RFT_ROWS, "data"), State(ids.RENDERED_TABLE, "data"),
        prevent_initial_call=True,
    )

    # the highlighted participant reaches the grid as data (its context), read by the
    # grid's fixed row rule (layout.HIGHLIGHT_RULES, sent again so the rows are restyled)
    @app.callback(
        Output(ids.EXCLUDE_BUTTON, "children"), Output(ids.EXCLUDE_BUTTON, "style"),
        Output(ids.PARTICIPANT_GRID, "dashGridOptions"), Output(ids.PARTICIPANT_GRID, "rowClassRules"),
        Output(ids.PARTICIPANT_GRID, "scrollTo"),
        Input(ids.SCATTER, "clickData"), Input(ids.PARTICIPANT_GRID, "selectedRows"),
        prevent_initial_call=True,
    )
    def offer_exclusion(click, selected):
        pid = views.clicked_participant(click)
        if pid is not None and pid not in views.selected_ids(engine, selected):
            pid = None
        options = Patch()
        options["context"] = {"highlight": pid}
        if pid is None:
            return "Exclude", {"display": "none"}, options, dict(layout.HIGHLIGHT_RULES), no_update
        scroll = {"rowId": pid, "rowPosition": "middle"} if ctx.triggered_id == ids.SCATTER else no_update
        return f"Exclude {pid}", {"display": "inline-block"}, options, dict(layout.HIGHLIGHT_RULES), scroll

    quick = {"type": ids.QUICK_FILTER, "column": ALL}

    @app.callback(
        Output(ids.PARTICIPANT_GRID, "selectedRows"), Output(quick, "value"),
        Input(quick, "value"), Input(ids.RESET_PARTICIPANTS, "n_clicks"), Input(ids.EXCLUDE_BUTTON, "n_clicks"),
        State(quick, "id"), State(ids.PARTICIPANT_GRID, "selectedRows"), State(ids.SCATTER, "clickData"),
        prevent_initial_call=True,
    )
    def select_participants(values, _reset, _exclude, filter_ids, selected, click):
        trigger = ctx.triggered_id
        keep = [no_update] * len(filter_ids or [])
        if trigger == ids.EXCLUDE_BUTTON:
            pid = views.clicked_participant(click)
            current = views.selected_ids(engine, selected)
            if pid is None or pid not in current:
                raise PreventUpdate
            return {"ids": [p for p in current if p != pid]}, keep
        if trigger == ids.RESET_PARTICIPANTS:
            everyone = {f.column: f.everyone for f in quick_filters(engine.study)}
            return {"ids": list(engine.all_ids)}, [everyone.get(fid.get("column")) for fid in filter_ids]
        try:
            return {"ids": views.filter_participants(engine, values, filter_ids)}, keep
        except (ValueError, AttributeError) as exc:
            log.info("quick filter ignored: %s", exc)
            raise PreventUpdate from exc

    # "N of M included", in the browser: no request per action for a line of text (same
    # text as views.included_text); the participant ids come as data (a Store)
    app.clientside_callback(
        cue_function("includedText"),
        Output(ids.INCLUDED_COUNT, "children"),
        Input(ids.VIEW, "data"), Input(ids.PARTICIPANT_GRID, "selectedRows"), State(ids.PARTICIPANT_INFO, "data"),
    )

    # the compare figure is drawn only while its tab is shown; the guard runs in the
    # browser so that other actions send no request for it (the tab's id comes as data)
    app.clientside_callback(
        cue_function("whileCompareShown"),
        Output(ids.COMPARE_VIEW, "data"),
        Input(ids.TABS, "active_tab"), Input(ids.VIEW, "data"), State(ids.COMPARE_TAB, "tab_id"),
    )

    # the claim check likewise: computed only while its tab is shown
    app.clientside_callback(
        cue_function("whileCompareShown"),
        Output(ids.CLAIM_VIEW, "data"),
        Input(ids.TABS, "active_tab"), Input(ids.VIEW, "data"), State(ids.CLAIMS_TAB, "tab_id"),
    )

    mapping = {"type": ids.CLAIM_MAPPING_FIELD, "field": ALL}

    @app.callback(
        Output(ids.CLAIM_SUMMARY, "children"), Output(ids.CLAIM_GRID, "rowData"),
        Input(ids.CLAIM_VIEW, "data"), Input(ids.CLAIM_TABLE, "value"), Input(mapping, "value"),
        State(mapping, "id"), State(ids.UPLOAD, "data"),
        prevent_initial_call=True,  # nothing to check before the tab is shown (no request at page load)
    )
    def check_claims(state, name, fields, field_ids, upload):
        if not state or name is None:
            raise PreventUpdate
        columns: list[str] = upload["columns"] if isinstance(upload, dict) and isinstance(upload.get("columns"), list) else []
        try:
            return views.claim_check(engine, checked_or_prevent(engine, state), name, upload, peaks.mapping_of(fields, field_ids, columns))
        except ValueError as exc:  # a table whose columns do not give x, y, z (yet): say so
            log.info("claim check refused: %s", exc)
            return views.error_text(exc), []

    # an uploaded peak table: parsed here, kept by the page (never written to disk), offered
    # to the claim check and as a marker layer, with its columns mapped to the fields
    @app.callback(
        Output(ids.UPLOAD, "data"), Output(ids.CLAIM_UPLOAD_NOTE, "children"), Output(ids.CLAIM_MAPPING, "children"),
        Output(ids.CLAIM_TABLE, "options"), Output(ids.CLAIM_TABLE, "value"), Output(ids.PEAK_LAYERS, "options"),
        Input(ids.CLAIM_UPLOAD, "contents"), State(ids.CLAIM_UPLOAD, "filename"),
        prevent_initial_call=True,
    )
    def receive_upload(contents, filename):
        try:
            store, guess = peaks.receive_upload(contents, filename)
        except ValueError as exc:
            return no_update, html.Span(views.error_text(exc, 300), className="text-danger"), no_update, no_update, no_update, no_update
        options = peaks.layer_options(engine, store)
        note = f"Read {len(store['rows'])} rows of {store['name']}: kept in this page only."
        return (store, note, layout.mapping_controls(store["columns"], guess), options, peaks.UPLOAD_LAYER, options)

    # a click on a row of the claim check or of the peak-distance table: the views go to its
    # coordinate; a claim row also sets the contrast (and direction) controls, in the same
    # response, and `update` reads both (controls are the truth)
    @app.callback(
        Output(ids.CONTRAST, "value", allow_duplicate=True), Output(ids.DIRECTION, "value", allow_duplicate=True),
        Output(ids.GOTO, "data"), Output(ids.CLAIM_GOTO_NOTE, "children"),
        Input(ids.CLAIM_GRID, "cellClicked"), Input(ids.PEAK_GRID, "cellClicked"),
        State(ids.CLAIM_GRID, "rowData"), State(ids.PEAK_GRID, "rowData"), State(ids.VIEW, "data"), State(ids.GOTO, "data"),
        State(ids.CONTRAST, "value"), State(ids.DIRECTION, "value"),
        prevent_initial_call=True,
    )
    def goto_row(claim_click, peak_click, claim_rows, peak_rows, state, goto, contrast_shown, direction_shown):
        # compared with what the controls show, not with VIEW: after fast clicks, a response
        # may have set a control that VIEW does not hold yet
        state = dict(checked_or_prevent(engine, state), contrast=contrast_shown, direction=direction_shown)
        try:
            if ctx.triggered_id == ids.PEAK_GRID:
                target = views.goto_data(engine, peaks.goto_point(engine, peak_rows, peak_click), goto)
                return no_update, no_update, target, no_update
            contrast, direction, target, note = views.goto_row(engine, state, claim_rows, claim_click, goto)
        except ValueError as exc:
            log.info("row click ignored: %s", exc)
            raise PreventUpdate from exc
        return (contrast if contrast != state["contrast"] else no_update,
                direction if direction != state["direction"] else no_update, target, note)

    # peak markers and distances: the view goes on to the server only while a layer is marked
    # (or was just unmarked), so that other actions send no request for them
    app.clientside_callback(
        cue_function("peakView"),
        Output(ids.PEAK_VIEW, "data"),
        Input(ids.PEAK_LAYERS, "value"), Input(ids.RENDERED_MAPS, "data"), State(ids.VIEW, "data"), State(ids.PEAK_VIEW, "data"),
    )

    @app.callback(
        Output(ids.GLASS_BRAIN, "figure", allow_duplicate=True), *[Output(g, "figure", allow_duplicate=True) for g in ids.SLICES],
        Output(ids.PEAK_GRID, "rowData"), Output(ids.PEAK_SUMMARY, "children"), Output(ids.RENDERED_PEAKS, "data"),
        Input(ids.PEAK_VIEW, "data"), State(ids.UPLOAD, "data"), State(mapping, "value"), State(mapping, "id"), State(ids.RENDERED_PEAKS, "data"),
        prevent_initial_call=True,
    )
    def draw_peaks(view, upload, fields, field_ids, rendered):
        if not isinstance(view, dict) or not isinstance(view.get("rendered"), dict):
            raise PreventUpdate
        state = checked_or_prevent(engine, view.get("state"))
        columns: list[str] = upload["columns"] if isinstance(upload, dict) and isinstance(upload.get("columns"), list) else []
        try:
            return peaks.draw(engine, state, view.get("layers"), view["rendered"], upload, peaks.mapping_of(fields, field_ids, columns),
                              rendered)
        except ValueError as exc:
            log.info("peak layers refused: %s", exc)
            raise PreventUpdate from exc

    @app.callback(
        Output(ids.COMPARE, "figure"), Output(ids.COMPARE_STATUS, "children"),
        Input(ids.COMPARE_VIEW, "data"), Input(ids.CORR_GRID, "selectedRows"),
    )
    def draw_compare(state, selected):
        if not state:
            raise PreventUpdate
        return views.draw_compare(engine, checked_or_prevent(engine, state), selected)

    @app.callback(
        Output(ids.CORR_GRID, "rowData"), Output(ids.CORR_SUMMARY, "children"),
        Input(ids.COMPARE_VIEW, "data"),
        prevent_initial_call=True,  # computed once the compare tab is shown
    )
    def correspondence(state):
        if not state:
            raise PreventUpdate
        try:
            return views.correspondence_rows(engine, checked_or_prevent(engine, state))
        except ValueError as exc:
            return [], views.error_text(exc)
