"""Page layout: header (study, synthetic-data banner); left column of controls; centre
views (glass brain + orthogonal slices, or the three contrasts compared); cluster table
and regression below; participants last."""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard.app import ids
from dashboard.app.state import MIN_PARTICIPANTS, condition_options, default_state, direction_options, numeric_columns
from dashboard.atlas import region_names
from dashboard.figures import empty_figure
from dashboard.filters import quick_filters
from dashboard.results import Study
from dashboard.stats.models import model_df

# No cloud: no "send to Chart Studio"/"edit in Chart Studio" buttons, no link, no server
# URL (nothing leaves the machine); the camera button saves a PNG locally.
GRAPH_CONFIG: dcc.Graph.Config = {"displaylogo": False, "showSendToCloud": False, "showEditInChartStudio": False, "showLink": False,
                "plotlyServerURL": "", "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "sendDataToCloud"],
                "toImageButtonOptions": {"scale": 2}}
NO_IMAGES = "Needs participant images; this results folder has group maps only, so the stored (published) model is shown."

# p formatter: 3 significant digits; a missing RFT value says why
P_FORMAT = {"function": "params.value == null ? ((params.colDef.field.includes('cluster') && !params.data.is_main_peak) ? '' : "
                        "(params.data.rft_note || 'n/a')) : (params.value < 0.001 ? d3.format('.3~e')(params.value) : d3.format('.3~g')(params.value))"}
T_FORMAT = {"function": "params.value == null ? '' : d3.format('.2f')(params.value)"}
Z_FORMAT = {"function": "params.value == null ? 'Inf' : d3.format('.2f')(params.value)"}  # Z is only missing when infinite (SPM: p < 10 eps)
# set level: on the first row of each direction only (SPM prints it once per table)
SET_P_FORMAT = {"function": "params.data.c_set == null ? '' : (params.value == null ? (params.data.rft_note || 'n/a') : "
                            "(params.value < 0.001 ? d3.format('.3~e')(params.value) : d3.format('.3~g')(params.value)))"}
SET_C_FORMAT = {"function": "params.value == null ? '' : String(params.value)"}
# the participant offered for exclusion (callbacks.offer_exclusion) comes as data, in the
# grid's context; the rule itself never changes (no expression is built from an id)
HIGHLIGHT_RULES = {"participant-highlight": "params.context != null && params.data.participant_id === params.context.highlight"}


def synthetic_banner(study: Study) -> html.Div | None:
    """The notice every page of a synthetic study carries."""
    if not study.synthetic:
        return None
    return dbc.Alert(
        [
            html.Strong("Synthetic sample data. "),
            "Generated to imitate the published summary statistics of the N-AC cue-reactivity "
            "study; it is not participant data.",
        ],
        id=ids.SYNTHETIC_BANNER,
        color="warning",
        className="py-1 px-3 mb-2",
    )


def _field(label: str, control, html_for: str | None = None, className: str = "mb-3"):
    return html.Div([dbc.Label(label, html_for=html_for, className="fw-semibold mb-1"), control], className=className)


def controls(study: Study, state: dict) -> dbc.Card:
    has_images = study.has_participant_images
    contrast_options = [{"label": c.label, "value": c.id} for c in study.contrasts]
    n = len(study.participant_ids)

    def df(model: str) -> str:
        if not has_images:  # the stored maps' df (from their sidecars); other models need the images
            stored = [gm.df for gm in study.group_maps.values() if gm.model in (model, None)]
            return f"df {stored[0]:g}" if stored and model == state["model"] else "needs participant images"
        try:
            value = model_df(model, n, len(study.conditions))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - label only
            return ""
        return f"df {value}" if value > 0 else "too few participants"

    model_options = [
        {"label": f"Cells, {df('cells')} (as published)", "value": "cells"},
        {"label": f"Cells + subjects, {df('subjects')}", "value": "subjects", "disabled": not has_images},
        {"label": f"Paired, {df('paired')} (per-participant contrast)", "value": "paired", "disabled": not has_images},
    ]
    if not study.conditions:  # an SPM, FSL or plain-maps folder: its own model, as stored
        source = study.description.get("SourceFormat", "the folder")
        model_options = [{"label": f"As estimated ({source})", "value": state["model"]}]
    model = html.Div(dbc.RadioItems(id=ids.MODEL, options=model_options, value=state["model"]), id=ids.MODEL_WRAPPER)
    return dbc.Card(
        dbc.CardBody(
            [
                _field("Contrast", dbc.RadioItems(id=ids.CONTRAST, options=contrast_options, value=state["contrast"],
                                                  className="contrast-radio")),
                # labels from the contrast's weights (state.direction_labels); they follow the contrast
                _field("Direction", dbc.RadioItems(id=ids.DIRECTION, value=state["direction"],
                                                   options=direction_options(study)[state["contrast"]])),
                dcc.Store(id=ids.DIRECTION_OPTIONS, data=direction_options(study)),
                html.Div(
                    [
                        dbc.Label("Voxel threshold", className="fw-semibold mb-1"),
                        dbc.Switch(id=ids.USE_T, label="threshold on T instead of p", value=state["use_t"], className="mb-1"),
                        # no min/max/step on the inputs: the browser would drop such entries silently;
                        # every entry is checked and an invalid one says why (assets/validate.js)
                        dbc.InputGroup([dbc.Select(id=ids.P_KIND, value=state["p_kind"], options=[
                                            {"label": "p unc. <", "value": "unc"}, {"label": "p FWE <", "value": "fwe"}],
                                            className="p-kind", style={"maxWidth": "7.5rem"}),
                                        dbc.Input(id=ids.P_UNC, type="number", value=state["p_unc"],
                                                                                   step="any", debounce=True),
                                        dbc.FormFeedback(id=ids.feedback(ids.P_UNC), type="invalid")], className="mb-1", size="sm"),
                        dbc.InputGroup([dbc.InputGroupText("T >"), dbc.Input(id=ids.T_VALUE, type="number", value=state["t"],
                                                                              step="any", debounce=True, disabled=not state["use_t"]),
                                        dbc.FormFeedback(id=ids.feedback(ids.T_VALUE), type="invalid")], size="sm"),
                    ],
                    className="mb-3",
                ),
                _field("Cluster extent k (voxels)", html.Div([
                    dbc.Input(id=ids.EXTENT, type="number", value=state["k"], step="any", debounce=True, size="sm"),
                    dbc.FormFeedback(id=ids.feedback(ids.EXTENT), type="invalid")]), ids.EXTENT),
                _field("Model", model),
                dbc.Tooltip(NO_IMAGES if not has_images else "Cells: 4 cell means, pooled error (df = 4n - 4, as published). "
                            "Cells + subjects: adds participant effects. Paired: one contrast image per participant (df = n - 1).",
                            target=ids.MODEL_WRAPPER, placement="right"),
                # busy state: a request that takes longer than 0.4 s (a refit, a new smoothness
                # estimate) shows "Computing…" over the status; the old content stays readable
                dcc.Loading(html.Div(id=ids.STATUS, className="status-line"), delay_show=400, show_initially=False,
                            overlay_style={"visibility": "visible", "opacity": 0.55},
                            custom_spinner=html.Div([dbc.Spinner(size="sm"), " Computing…"], className="busy-note"),
                            target_components={ids.STATUS: "children"}),  # type: ignore[arg-type]  # Dash types it as an empty TypedDict
            ]
        ),
        className="mb-3",
    )


def map_view(graph_id: str, className: str | None = None) -> html.Div:
    """A map figure with its pointer tooltip (T under the pointer, filled in the browser:
    assets/hover.js); the wrapper positions the tooltip over the graph."""
    return html.Div([dcc.Graph(id=graph_id, config=GRAPH_CONFIG, className=className, clear_on_unhover=True),
                     dcc.Tooltip(id=ids.tooltip(graph_id), className="map-tooltip", direction="right", border_color="#555")],
                    className="map-view")


def explore_tab(study: Study, state: dict) -> html.Div:
    slice_cols = [dbc.Col(map_view(gid, className="slice-graph"), md=4) for gid in ids.SLICES]
    point_inputs = dbc.Row(
        [
            dbc.Col(html.Span("Cursor (MNI mm)", className="fw-semibold"), width="auto"),
            *[
                dbc.Col(dbc.InputGroup([dbc.InputGroupText(name), dbc.Input(id=cid, type="number", step="any", debounce=True, value=v)], size="sm"),
                        width=2)
                for name, cid, v in zip("xyz", (ids.POINT_X, ids.POINT_Y, ids.POINT_Z), state["point"], strict=True)
            ],
            dbc.Col(html.Span(id=ids.POINT_TEXT, className="point-text"), className="text-end"),
        ],
        className="align-items-center g-2 my-1",
    )
    return html.Div(
        [
            peak_layers(study),
            map_view(ids.GLASS_BRAIN),
            point_inputs,
            dbc.Row(slice_cols, className="g-1"),
        ]
    )


# verdict colours of the claim check (assets/app.css); fixed rules, no code built from values
CLAIM_RULES = {"claim-match": "params.value === 'match'", "claim-near": "params.value === 'near'",
               "claim-not-found": "params.value === 'not found'", "claim-inconsistent": "params.value === 'inconsistent'"}


def claims_tab(study: Study) -> html.Div:
    """A peak table held against the maps (dashboard.claims), at the view's threshold: one
    row per table row with its verdict and the reason.  The table is one of the folder's
    (tables/*.tsv with x, y, z) or one the user uploads (kept by the page, never written
    anywhere), with its columns mapped to the fields when they are not recognised."""
    from dashboard.claims import MAX_UPLOAD_BYTES, peak_tables

    names = peak_tables(study)
    columns: list[dict] = [{"field": f, "headerName": h, "width": w} for f, h, w in (
        ("verdict", "Verdict", 135), ("checked_contrast", "Contrast", 120), ("checked_direction", "Dir.", 80), ("x", "x", 75),
        ("y", "y", 75), ("z", "z", 75))]
    columns.append({"field": "reason", "headerName": "Reason", "flex": 1, "minWidth": 400, "tooltipField": "reason"})
    columns[0]["cellClassRules"] = CLAIM_RULES
    grid = dag.AgGrid(id=ids.CLAIM_GRID, columnDefs=columns, rowData=[], defaultColDef={"sortable": True, "resizable": True, "filter": True},
                      getRowId="params.data.row",
                      dashGridOptions={"suppressFieldDotNotation": True, "tooltipShowDelay": 300, "enableCellTextSelection": True},
                      style={"height": "520px", "width": "100%"}, className="ag-theme-quartz")
    upload = dcc.Upload(id=ids.CLAIM_UPLOAD, children=html.Div(["Upload a peak table: drop a TSV/CSV here or ", html.A("choose a file")]),
                        className="claim-upload", multiple=False, max_size=MAX_UPLOAD_BYTES,
                        accept=".tsv,.csv,.txt,text/tab-separated-values,text/csv,text/plain")
    return html.Div([
        dbc.Row([dbc.Col(_field("Peak table", dcc.Dropdown(id=ids.CLAIM_TABLE, options=names, value=names[0] if names else None,
                                                           clearable=False, placeholder="upload a table")), md=4),
                 dbc.Col(upload, md=4, className="align-self-end mb-3"),
                 dbc.Col(html.Div(id=ids.CLAIM_UPLOAD_NOTE, className="small"), md=4, className="align-self-end mb-3")]),
        html.Div(id=ids.CLAIM_MAPPING, className="claim-mapping"),
        html.Div(id=ids.CLAIM_SUMMARY, className="fw-semibold mb-1"),
        html.Div("Each row at the current threshold, extent, model and participants: is the coordinate in a listed cluster, the "
                 "nearest listed peak, the map's value there, the atlas label, and whether its T and Z agree at the map's df. "
                 "Click a row to move the views to its coordinate and select the cluster there."
                 + ("" if names else " This folder has no peak tables of its own: upload one."),
                 className="small text-muted mb-2"),
        grid,
        html.Div(id=ids.CLAIM_GOTO_NOTE, className="small mt-1 claim-goto-note"),
    ], className="p-2")


def mapping_controls(columns: list[str], guess: dict[str, str | None]) -> html.Div:
    """One dropdown per field of a peak table (x, y, z, T, Z, k, p, region, contrast, source),
    each set to the column recognised for it; the user corrects what was not recognised."""
    from dashboard.claims import FIELDS

    options = [{"label": c, "value": c} for c in columns]
    cols = [dbc.Col(_field(label, dcc.Dropdown(id=ids.claim_mapping(field), options=options, value=guess.get(field), clearable=True,
                                               placeholder="—"), className="mb-1"), md=2, sm=4)
            for field, label in FIELDS.items()]
    return html.Div([html.Div("Columns: which column holds each field (recognised by name; correct any that are wrong or empty)",
                              className="small fw-semibold"), dbc.Row(cols, className="g-2")], className="mb-2 p-2 border rounded")


def peak_layers(study: Study) -> html.Div:
    """The peak tables to mark on the maps (markers with hover) and the table of each
    peak's distance to the current contrast's clusters."""
    from dashboard.claims import peak_tables

    names = peak_tables(study)
    grid = dag.AgGrid(
        id=ids.PEAK_GRID, rowData=[], getRowId="params.data.row",
        columnDefs=[{"field": "layer", "headerName": "Table", "width": 150, "tooltipField": "layer"},
                    {"field": "source", "headerName": "Source", "flex": 1, "minWidth": 160, "tooltipField": "source"},
                    {"field": "region", "headerName": "Region", "width": 170, "tooltipField": "region"},
                    {"field": "reported", "headerName": "Reported", "width": 100},
                    {"field": "x", "headerName": "x", "width": 65}, {"field": "y", "headerName": "y", "width": 65},
                    {"field": "z", "headerName": "z", "width": 65},
                    {"field": "nearest_cluster_mm", "headerName": "to cluster (mm)", "width": 130, "filter": "agNumberColumnFilter",
                     "headerTooltip": "distance from the peak to the nearest voxel of a listed cluster of this view (0: inside one)"},
                    {"field": "nearest_cluster", "headerName": "Nearest cluster", "width": 200, "tooltipField": "nearest_cluster"},
                    {"field": "map_value", "headerName": "map value", "width": 105, "headerTooltip": "the map's statistic at the peak"}],
        defaultColDef={"sortable": True, "resizable": True, "filter": True},
        dashGridOptions={"suppressFieldDotNotation": True, "tooltipShowDelay": 300, "animateRows": False},
        style={"height": "260px", "width": "100%"}, className="ag-theme-quartz",
    )
    return html.Div([
        dbc.Row([dbc.Col(html.Span("Peaks on the maps", className="fw-semibold small"), width="auto"),
                 dbc.Col(dbc.Checklist(id=ids.PEAK_LAYERS, options=[{"label": n, "value": n} for n in names], value=[], inline=True,
                                       className="small"), className="peak-layers")], className="align-items-center g-2"),
        html.Details([html.Summary(["Distances of the marked peaks to this view's clusters ", html.Span(id=ids.PEAK_SUMMARY)],
                                   className="small"), grid], className="mt-1", id=ids.PEAK_DETAILS),
    ], className="my-1")


def compare_tab() -> html.Div:
    """The contrasts' glass brains at one threshold, and which clusters of the current
    contrast are (partly) clusters of the others (dashboard.correspondence); a row click
    outlines the pair on every glass brain."""
    cols = [{"field": "cluster", "headerName": "Cluster (this contrast)", "width": 210, "tooltipField": "cluster"},
            {"field": "other", "headerName": "Overlapping cluster of", "flex": 1, "minWidth": 260, "tooltipField": "other"},
            {"field": "common_voxels", "headerName": "common voxels", "width": 130, "filter": "agNumberColumnFilter"},
            {"field": "dice", "headerName": "Dice", "width": 105, "filter": "agNumberColumnFilter",
             "headerTooltip": "2 |A ∩ B| / (|A| + |B|)"},
            {"field": "peak_distance_mm", "headerName": "peak distance (mm)", "width": 150, "filter": "agNumberColumnFilter"}]
    grid = dag.AgGrid(id=ids.CORR_GRID, columnDefs=cols, rowData=[], getRowId="params.data.row",
                      defaultColDef={"sortable": True, "resizable": True, "filter": True},
                      dashGridOptions={"rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                                       "suppressFieldDotNotation": True, "animateRows": False, "tooltipShowDelay": 300},
                      style={"height": "300px", "width": "100%"}, className="ag-theme-quartz")
    return html.Div(
        [
            html.Div(id=ids.COMPARE_STATUS, className="text-muted my-1"),
            dcc.Graph(id=ids.COMPARE, config=GRAPH_CONFIG),
            html.Div([html.Span("Correspondence: ", className="fw-semibold"), html.Span(id=ids.CORR_SUMMARY),
                      html.Span(" Click a row to outline the pair (green: this contrast's cluster, magenta: the other's).",
                                className="text-muted")], className="small mt-2 mb-1"),
            grid,
        ]
    )


def cluster_panel(study: Study | None = None) -> dbc.Card:
    def num(field: str, header: str, width: int, fmt: dict | None = None, tip: str | None = None) -> dict:
        col = {"field": field, "headerName": header, "width": width, "filter": "agNumberColumnFilter"}
        if fmt:
            col["valueFormatter"] = fmt
        if tip:
            col["headerTooltip"] = tip
        return col

    # SPM12's columns and their order (spm_list('Table')); x y z, atlas label and direction after
    cols = [
        {"headerName": "set", "children": [
            num("p_set", "p", 96, SET_P_FORMAT, "set-level p: P(Poisson(<c>) >= c) (spm_P(c,k,u))"),
            num("c_set", "c", 70, SET_C_FORMAT, "number of clusters listed")]},
        {"headerName": "cluster", "children": [
            num("p_fwe_cluster", "p FWE", 112, P_FORMAT, "cluster-level p, FWE-corrected (RFT)"),
            num("p_fdr_cluster", "q FDR", 112, P_FORMAT, "cluster-level q, topological FDR over every cluster at the height threshold"),
            num("k", "k", 76, None, "cluster size (voxels)"),
            num("p_unc_cluster", "p unc", 112, P_FORMAT, "cluster-level p, uncorrected"),
        ]},
        {"headerName": "peak", "children": [
            num("p_fwe_peak", "p FWE", 112, P_FORMAT, "peak-level p, FWE-corrected (RFT, Bonferroni-capped)"),
            num("p_fdr_peak", "q FDR", 112, P_FORMAT, "peak-level q, topological FDR over every local maximum at the height threshold"),
            num("peak_t", "T", 80, T_FORMAT, "T at the local maximum"),
            num("z_score", "(Z)", 84, Z_FORMAT, "equivalent Z of SPM's p unc: Φ⁻¹(1 − p)"),
            num("p_unc", "p unc", 112, P_FORMAT, "peak-level p, uncorrected, as SPM prints it (spm_P with R = 1)"),
        ]},
        {"field": "xyz", "headerName": "x y z (mm)", "width": 130, "sortable": False},
        {"field": "label", "headerName": "Atlas label (AAL)", "flex": 1, "minWidth": 150, "tooltipField": "label"},
        {"field": "direction_label", "headerName": "Direction", "width": 150, "tooltipField": "direction_label"},
        {"field": "cluster_id", "headerName": "#", "width": 70, "filter": "agNumberColumnFilter", "headerTooltip": "cluster number"},
    ]
    grid = dag.AgGrid(
        id=ids.CLUSTER_TABLE,
        columnDefs=cols,
        rowData=[],
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": False},
        getRowId="params.data.row_id",
        rowClassRules={"sub-peak": "!params.data.is_main_peak"},
        dashGridOptions={"rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                         "domLayout": "normal", "tooltipShowDelay": 300, "suppressCellFocus": True,
                         # rows replaced at once: no 400 ms row animation competing with the next redraw
                         "animateRows": False},
        style={"height": "260px", "width": "100%"},
        className="ag-theme-quartz cluster-grid",
    )
    return dbc.Card(
        [
            dbc.CardHeader(dbc.Row([
                dbc.Col(html.Span("Clusters (SPM12 table)", className="fw-semibold"), width="auto"),
                dbc.Col(dcc.Dropdown(id=ids.SVC_REGIONS, multi=True, value=[], options=region_names("aal"),
                                     placeholder="Small-volume correction: choose AAL regions (none = whole volume)",
                                     className="svc-dropdown"), className="ms-auto", md=6),
            ], className="align-items-center g-2")),
            dbc.CardBody([html.Div(id=ids.CLUSTER_NOTE, className="small text-muted mb-1"), grid,
                          html.Details([html.Summary("SPM footer (thresholds, expected clusters, critical values, smoothness)"),
                                        html.Pre(id=ids.CLUSTER_FOOTER, className="spm-footer")], className="small mt-1"),
                          *permutation_details(study)],
                         className="p-2"),
        ],
        className="mb-3",
    )


def permutation_details(study: Study | None) -> list:
    """The folded permutation panel (dashboard.app.permute), where participants' images
    can be refitted; nothing for a folder of group maps only."""
    if study is None or not study.can_refit:
        return []
    from dashboard.app import permute

    return [html.Details([html.Summary("Permutation p-values: max T, cluster extent and mass, TFCE (background job)",
                                       id="perm-summary"),
                          permute.panel(study)], id="perm-details", className="small mt-1")]


def regression_panel(study: Study, state: dict) -> dbc.Card:
    covariates = numeric_columns(study)

    def cov_label(col: str) -> str:
        info = study.participant_columns.get(col, {}) if isinstance(study.participant_columns, dict) else {}
        units = info.get("Units") if isinstance(info, dict) else None
        return f"{col} ({units})" if units else col

    controls_row = dbc.Row(
        [
            dbc.Col(_field("Covariate", dcc.Dropdown(id=ids.COVARIATE, options=[{"label": cov_label(c), "value": c} for c in covariates],
                                                     value=state["covariate"], clearable=False), className="mb-1"), md=5),
            dbc.Col(_field("Condition", dcc.Dropdown(id=ids.CONDITION, options=[{"label": label, "value": c} for c, label in condition_options(study)],
                                                     value=state["condition"], clearable=False), className="mb-1"), md=4),
            dbc.Col(_field("Value", dbc.RadioItems(id=ids.VALUE_TYPE, value=state["value"], options=[
                {"label": "eigenvariate", "value": "eigenvariate"}, {"label": "mean", "value": "mean"}]), className="mb-1"), md=3),
        ],
        className="g-2",
    )
    return dbc.Card(
        [
            dbc.CardHeader(html.Span("Cluster values vs covariate", className="fw-semibold")),
            dbc.CardBody(
                [
                    controls_row,
                    dbc.Row(
                        [
                            dbc.Col(dcc.Graph(id=ids.SCATTER, config=GRAPH_CONFIG), md=8),
                            dbc.Col([html.Div(id=ids.REG_STATS, className="reg-stats"),
                                     dbc.Button("Exclude", id=ids.EXCLUDE_BUTTON, color="danger", outline=True, size="sm",
                                                className="mt-2", style={"display": "none"}),
                                     html.Div([html.Div("Influence of each participant", className="fw-semibold small mt-3"),
                                               html.Div(id=ids.INFLUENCE_NOTE, className="small influence-note"),
                                               dcc.Graph(id=ids.INFLUENCE, config={**GRAPH_CONFIG, "displayModeBar": False},
                                                         figure=empty_figure("Influence: select a cluster.", 220))],
                                              style=None if study.can_refit else {"display": "none"})], md=4),
                        ],
                        className="g-2",
                    ),
                    dbc.Alert(
                        [html.Strong("Circularity: "), "these values come from a cluster selected on the same data, so the "
                         "effect sizes (slope, R²) are biased upwards; use them to inspect, not to estimate."],
                        id=ids.REG_NOTE, color="light", className="small py-1 px-2 mt-2 mb-0",
                        style=None if study.can_refit else {"display": "none"},  # no values, no caveat
                    ),
                ],
                className="p-2",
            ),
        ],
        className="mb-3",
    )


# grid columns of the participant table filled from the selected cluster's regression
# (field -> header, tooltip); the colon keeps them apart from participants.tsv's names
INFLUENCE_COLUMNS = {
    "influence:dslope_ols": ("Δ slope left out (OLS)", "jackknife: OLS slope without this participant minus the slope with everyone"),
    "influence:dslope_lts": ("Δ slope left out (LTS)", "LTS refitted without this participant, minus the LTS slope with everyone"),
    "influence:r2": ("R² left out (OLS)", "jackknife: the OLS R² without this participant"),
    "influence:cooks": ("Cook's D", "Cook's distance of the OLS fit (statsmodels' OLSInfluence definition)"),
    "influence:dfbetas": ("DFBETAS slope", "DFBETAS of the OLS slope; |DFBETAS| > 2/sqrt(n) is the usual flag"),
}


def survival_panel(study: Study) -> dbc.Card:
    """Leave each participant out, refit, and see whether the selected cluster survives:
    a background job (Dash background callback) with progress and cancel."""
    n = len(study.participant_ids)
    cols = [{"field": "participant_id", "headerName": "left out", "width": 120, "pinned": "left"},
            {"field": "survives", "headerName": "survives", "width": 100},
            {"field": "peak_t", "headerName": "peak", "width": 90, "valueFormatter": T_FORMAT},
            {"field": "k", "headerName": "k", "width": 80},
            {"field": "p_fwe_cluster", "headerName": "cluster p FWE", "width": 125, "valueFormatter": P_FORMAT},
            {"field": "dice", "headerName": "Dice", "width": 85, "valueFormatter": T_FORMAT,
             "headerTooltip": "overlap with the cluster of everyone: 2|A∩B| / (|A| + |B|)"},
            {"field": "max_t_in_original", "headerName": "max in cluster", "width": 120, "valueFormatter": T_FORMAT,
             "headerTooltip": "the refit's highest value over the voxels of the cluster of everyone"},
            {"field": "df", "headerName": "df", "width": 70}]
    grid = dag.AgGrid(id=ids.SURVIVAL_GRID, columnDefs=cols, rowData=[], getRowId="params.data.participant_id",
                      defaultColDef={"sortable": True, "resizable": True, "filter": True},
                      dashGridOptions={"suppressFieldDotNotation": True, "animateRows": False, "tooltipShowDelay": 300},
                      style={"height": "300px", "width": "100%"}, className="ag-theme-quartz")
    body = [
        dbc.Row([
            dbc.Col(dbc.Button(f"Leave each participant out ({n} refits)", id=ids.SURVIVAL_RUN, color="primary", size="sm", n_clicks=0),
                    width="auto"),
            dbc.Col(dbc.Button("Cancel", id=ids.SURVIVAL_CANCEL, color="secondary", outline=True, size="sm", disabled=True), width="auto"),
            dbc.Col(html.Div(dbc.Progress(id=ids.SURVIVAL_PROGRESS, value=0, max=n, label="", striped=True, animated=True,
                                          style={"height": "1.4rem"}), id=ids.SURVIVAL_PROGRESS_WRAP, style={"display": "none"})),
        ], className="align-items-center g-2 mb-2"),
        html.Div(id=ids.SURVIVAL_STALE, className="small text-muted"),
        html.Div([html.Div(id=ids.SURVIVAL_SUMMARY, className="mb-1"),
                  dbc.Row([dbc.Col(dcc.Graph(id=ids.SURVIVAL_FIGURE, config=GRAPH_CONFIG, figure=empty_figure("", 300)), md=7),
                           dbc.Col(grid, md=5)], className="g-2")],
                 id=ids.SURVIVAL_RESULT, style={"display": "none"}),
    ]
    return dbc.Card([dbc.CardHeader(html.Span("Does the selected cluster survive leaving each participant out?", className="fw-semibold")),
                     dbc.CardBody(body, className="p-2")], className="mb-3", style=None if study.can_refit else {"display": "none"})


def participant_rows(study: Study) -> list[dict]:
    frame = study.participants.reset_index()
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def participants_panel(study: Study) -> dbc.Card:
    frame = study.participants.reset_index()
    cols = []
    for i, col in enumerate(frame.columns):
        numeric = pd.to_numeric(frame[col], errors="coerce").notna().sum() >= max(1, frame[col].notna().sum() // 2) and col != "participant_id"
        cdef = {"field": col, "headerName": col, "filter": "agNumberColumnFilter" if numeric else "agTextColumnFilter",
                "minWidth": 110 if col != "participant_id" else 150, "headerTooltip": _describe(study, col)}
        if i == 0:
            cdef["pinned"] = "left"
        cols.append(cdef)
    if study.can_refit:  # filled from the selected cluster's regression (views.draw_influence)
        for field, (header, tip) in INFLUENCE_COLUMNS.items():
            cols.append({"field": field, "headerName": header, "headerTooltip": tip, "filter": "agNumberColumnFilter", "minWidth": 130,
                         "headerClass": "influence-header", "cellClass": "influence-cell"})
    has_images = study.can_refit  # subsets can be refitted (participant images, or a package design with its images)
    # the folder's own filters (dashboard.filters: ViewDefaults.QuickFilters, else its
    # declared columns); each a pattern-matching id, so the callback takes them all
    filters = []
    for f in quick_filters(study):
        if f.kind == "levels":
            control = dbc.Checklist(id=ids.quick_filter(f.column), options=[{"label": label, "value": value} for value, label in f.levels],
                                    value=f.everyone, inline=True)
            filters.append(dbc.Col(_field(f.label, control, className="mb-1"), width="auto"))
        else:
            control = dcc.RangeSlider(id=ids.quick_filter(f.column), min=f.low, max=f.high, value=[f.low, f.high], step=0.1,
                                      marks={f.low: f"{f.low:g}", f.high: f"{f.high:g}"}, tooltip={"placement": "top", "always_visible": False})
            filters.append(dbc.Col(_field(f.label, control, className="mb-1"), md=4))
    filters.append(dbc.Col(dbc.Button("Include all", id=ids.RESET_PARTICIPANTS, color="secondary", outline=True, size="sm"), width="auto",
                           className="align-self-center"))
    filters.append(dbc.Col(html.Div("A change of quick filter selects every participant who passes all of them: exclusions made "
                                    "by hand in the grid or from the scatter are undone.", className="small text-muted"), width=12))
    grid = dag.AgGrid(
        id=ids.PARTICIPANT_GRID,
        columnDefs=cols,
        rowData=participant_rows(study),
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True},
        getRowId="params.data.participant_id",
        selectedRows={"ids": list(study.participant_ids)},
        dashGridOptions={"rowSelection": {"mode": "multiRow", "checkboxes": has_images, "headerCheckbox": has_images,
                                          "enableClickSelection": False, "selectAll": "filtered"},
                         "suppressCellFocus": True, "tooltipShowDelay": 300, "animateRows": False,
                         # column names are participants.tsv's: "a.b" is a name, not a path into the row
                         "suppressFieldDotNotation": True,
                         "context": {"highlight": None}},
        rowClassRules=HIGHLIGHT_RULES,
        style={"height": "420px", "width": "100%"},
        className="ag-theme-quartz",
    )
    note = None if has_images else dbc.Alert("Excluding participants " + NO_IMAGES[0].lower() + NO_IMAGES[1:], color="light", className="small py-1")
    return dbc.Card(
        [
            dbc.CardHeader([html.Span("Participants ", className="fw-semibold"),
                            html.Span(id=ids.INCLUDED_COUNT, className="badge bg-primary ms-2 included-count")]),
            dbc.CardBody([note, dbc.Row(filters, className="g-3 mb-2 align-items-end", style=None if has_images else {"display": "none"}), grid],
                         className="p-2"),
        ],
        className="mb-3",
    )


def _describe(study: Study, col: str) -> str:
    info = study.participant_columns.get(col, {}) if isinstance(study.participant_columns, dict) else {}
    if not isinstance(info, dict):
        return col
    text = info.get("Description", col)
    return f"{text} ({info['Units']})" if info.get("Units") else text


def study_switch(studies: list[tuple[str, str]] | None, current: str) -> html.Nav | None:
    """Links to the other studies this server was started with (``serve DIR1 DIR2``):
    (name, URL prefix) pairs; the studies are fixed at start-up, never a typed path."""
    if not studies or len(studies) < 2:
        return None
    links = [dbc.NavLink(name, href=url, active=(url == current), external_link=True, className="py-1 px-2") for name, url in studies]
    return html.Nav(dbc.Nav(links, pills=True, className="small"), id=ids.STUDY_SWITCH, className="ms-auto")


def build_layout(study: Study, studies: list[tuple[str, str]] | None = None, current: str = "/") -> html.Div:
    state = default_state(study)
    return dbc.Container(
        [
            dcc.Store(id=ids.VIEW, data=state),
            dcc.Store(id=ids.RENDERED_MAPS, data=None),
            dcc.Store(id=ids.HOVER, data=None),
            dcc.Store(id=ids.RENDERED_TABLE, data=None),
            dcc.Store(id=ids.RFT_PENDING, data=None),
            dcc.Store(id=ids.RFT_ROWS, data=None),
            dcc.Store(id=ids.PARTICIPANT_INFO, data={"ids": list(study.participant_ids), "minimum": MIN_PARTICIPANTS,
                                                     "images": study.can_refit}),
            dcc.Store(id=ids.RENDERED_REGRESSION, data=None),
            dcc.Store(id=ids.INFLUENCE_REQUEST, data=None),
            dcc.Store(id=ids.COMPARE_VIEW, data=None),
            dcc.Store(id=ids.CLAIM_VIEW, data=None),
            dcc.Store(id=ids.GOTO, data=None),
            dcc.Store(id=ids.UPLOAD, data=None),
            dcc.Store(id=ids.PEAK_VIEW, data=None),
            dcc.Store(id=ids.RENDERED_PEAKS, data=None),
            html.Div(
                [html.H1(study.name, id=ids.STUDY_TITLE, className="h4 my-2 me-3"), synthetic_banner(study), study_switch(studies, current)],
                className="d-flex flex-wrap align-items-center",
            ),
            dbc.Row(
                [
                    dbc.Col(controls(study, state), xl=2, lg=3),
                    dbc.Col(
                        dbc.Tabs(
                            [
                                dbc.Tab(explore_tab(study, state), label="Explore", tab_id=ids.TAB_EXPLORE),
                                dbc.Tab(compare_tab(), label="Compare contrasts", tab_id=ids.TAB_COMPARE, id=ids.COMPARE_TAB),
                                dbc.Tab(claims_tab(study), label="Claim check", tab_id=ids.TAB_CLAIMS, id=ids.CLAIMS_TAB),
                            ],
                            id=ids.TABS,
                            active_tab=ids.TAB_EXPLORE,
                        ),
                        xl=10, lg=9,
                    ),
                ]
            ),
            dbc.Row(dbc.Col(cluster_panel(study)), className="mt-2"),
            dbc.Row(
                [
                    dbc.Col(regression_panel(study, state), xl=6),
                    dbc.Col(participants_panel(study), xl=6),
                ],
            ),
            dbc.Row(dbc.Col(survival_panel(study))),
            dcc.Store(id=ids.SURVIVAL_REQUEST, data=None),
            dcc.Store(id=ids.SURVIVAL_SHOWN, data=None),
        ],
        fluid=True,
        className="pb-4",
    )
