"""What the callbacks do, as plain functions of (engine, state): testable without a
browser (tests/app).  Callbacks in :mod:`dashboard.app.callbacks` only wire these to
component properties."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from dash import Patch, html, no_update

from dashboard import figures
from dashboard.app import state as st
from dashboard.app.engine import Engine
from dashboard.app.state import MIN_PARTICIPANTS, direction_labels

RFT_PENDING_NOTE = "n/a (re-estimating)"


# -- view state ------------------------------------------------------------------------
def checked_state(engine: Engine, value: Any) -> dict:
    """The view state the page sent, checked against the study (:func:`state.checked_state`);
    ValueError for a crafted or corrupted one."""
    return st.checked_state(engine.choices, value)


def snap(engine: Engine, point) -> list[float]:
    """Nearest voxel centre (mm) of a point, clipped to the grid."""
    i, j, k = engine.grid.index_of(tuple(st.finite_number(v) for v in point))
    return [float(engine.grid.x[i]), float(engine.grid.y[j]), float(engine.grid.z[k])]


def selected_ids(engine: Engine, selected: Any) -> list[str]:
    """Participant ids (study order) from an AgGrid ``selectedRows`` value (``{"ids": [...]}``
    or a list of rows); anything else selects nobody."""
    wanted: set[str] = set()
    if isinstance(selected, dict) and isinstance(selected.get("ids"), list):
        wanted = {p for p in selected["ids"] if isinstance(p, str)}
    elif isinstance(selected, list):
        wanted = {row["participant_id"] for row in selected if isinstance(row, dict) and isinstance(row.get("participant_id"), str)}
    return [p for p in engine.all_ids if p in wanted]


def clicked_participant(click: Any) -> str | None:
    """The participant id of a click on the regression scatter (its customdata), else None."""
    try:
        pid = click["points"][0]["customdata"]
    except (TypeError, KeyError, IndexError):
        return None
    return pid if isinstance(pid, str) else None


def clicked_xy(click: Any) -> dict[str, Any]:
    """A plotly ``clickData`` reduced to its first point's curve number and finite x, y
    (what :mod:`dashboard.figures` reads); ValueError for anything else."""
    try:
        point = click["points"][0]
    except (TypeError, KeyError, IndexError) as exc:
        raise ValueError("no clicked point") from exc
    if not isinstance(point, dict):
        raise ValueError("no clicked point")
    curve = point.get("curveNumber", 0)
    if isinstance(curve, bool) or not isinstance(curve, int):
        raise ValueError("curveNumber is not an integer")
    return {"points": [{"curveNumber": curve, "x": st.finite_number(point.get("x")), "y": st.finite_number(point.get("y"))}]}


def row_id(direction: str, cluster_id: int, xyz, index: int) -> str:
    return f"{direction}|{cluster_id}|{xyz[0]:g}|{xyz[1]:g}|{xyz[2]:g}|{index}"


def parse_row_id(rid: Any) -> tuple[str, list[float]]:
    """(direction, peak) of a cluster-table row id (:func:`row_id`); ValueError for anything else."""
    parts = rid.split("|") if isinstance(rid, str) else []
    if len(parts) != 6 or parts[0] not in st.SIGNS:
        raise ValueError("not a cluster-table row id")
    return parts[0], [st.finite_number(v) for v in parts[2:5]]


def cluster_at(engine: Engine, state: dict, point) -> dict | None:
    """The listed cluster containing a point, as {"direction", "peak" (main peak)}."""
    try:
        result = engine.table(state, with_rft=False)
    except Exception:  # noqa: BLE001 - no table, no cluster
        return None
    i, j, k = engine.grid.index_of(tuple(point))
    for direction, lab in result.labels.items():
        value = lab[i, j, k]
        if not value:
            continue
        rows = result.frame[(result.frame["direction"] == direction) & result.frame["is_main_peak"]]
        for _, row in rows.iterrows():
            pi, pj, pk = engine.grid.index_of((row["x"], row["y"], row["z"]))
            if lab[pi, pj, pk] == value:
                return {"direction": direction, "peak": [float(row["x"]), float(row["y"]), float(row["z"])]}
    return None


def next_state(engine: Engine, state: dict, trigger: str | None, value: Any, ids_map: dict[str, str]) -> dict:
    """The view state after one user action (``trigger`` = id of the changed input,
    ``ids_map`` names the ids: see callbacks).  Raises ``ValueError`` for an input that
    cannot be used (the state is then kept)."""
    return apply_input(engine, state, ids_map.get(trigger or "", ""), value)


def state_from_controls(engine: Engine, state: dict, controls: dict[str, Any]) -> dict:
    """The view state with every control's current value (``controls``: kind -> value, as
    in :func:`apply_input`).  The page's controls are the truth, so a request built on a
    stale stored state still answers what the controls show.  An invalid entry leaves
    the last valid value in the state (the input itself says why: :func:`input_problem`)."""
    new = dict(state)
    for kind, value in controls.items():
        if kind in ("contrast", "direction", "svc") and (value or None) == (new.get(kind) or None):
            continue  # unchanged: keep the selected cluster
        try:
            new = apply_input(engine, new, kind, value)
        except ValueError:
            pass
    return new


def valid_cluster(engine: Engine, state: dict) -> dict:
    """The state with its selected cluster only if the current table lists it (a cluster
    of another contrast, threshold or subset is dropped, never shown under these controls)."""
    chosen = state.get("cluster")
    if not chosen:
        return state
    found = cluster_at(engine, state, chosen["peak"])
    if found is None or found["direction"] != chosen.get("direction"):
        return dict(state, cluster=None)
    return state if found == chosen else dict(state, cluster=found)


input_problem = st.input_problem  # the rules of a typed threshold (also in assets/validate.js)
# the inputs whose value is a view-state value (the others are events: points, clicks, rows, a selection)
CONTROL_KINDS = ("contrast", "direction", "use_t", "p_kind", "p_unc", "t", "k", "svc", "model", "covariate", "value", "condition")


def apply_input(engine: Engine, state: dict, kind: str, value: Any) -> dict:
    """The view state after one input of the given kind took ``value``; ``ValueError``
    when the value cannot be used (every value is checked here: it comes from the page)."""
    new = dict(state)
    if kind in CONTROL_KINDS:
        new[kind] = st.checked_field(engine.choices, kind, value)
        if kind in ("contrast", "direction", "svc"):  # another table: no cluster selected
            new["cluster"] = None
    elif kind in ("x", "y", "z"):
        if value is None:
            raise ValueError("coordinate missing")
        point = list(state["point"])
        point["xyz".index(kind)] = st.finite_number(value)
        new["point"] = snap(engine, point)
        new["cluster"] = cluster_at(engine, new, new["point"])  # typing a peak's coordinates selects its cluster
    elif kind.startswith("slice"):
        axis = int(kind[-1])
        new["point"] = snap(engine, figures.slice_click_to_point(axis, clicked_xy(value), tuple(state["point"])))
        new["cluster"] = cluster_at(engine, new, new["point"])  # outside every cluster: none selected
    elif kind == "glass":
        click = clicked_xy(value)
        shown = engine.shown(state)
        new["point"] = snap(engine, figures.glass_click_to_point(click, tuple(state["point"]), shown, engine.grid))
        new["cluster"] = cluster_at(engine, new, new["point"])
    elif kind == "table":
        if not isinstance(value, dict) or value.get("rowId") is None:
            raise ValueError("no row")
        direction, peak = parse_row_id(value["rowId"])
        new["point"] = snap(engine, peak)
        new["cluster"] = {"direction": direction, "peak": peak}
    elif kind == "goto":  # a row of another table (claim check, correspondence): its point and the cluster there
        if not isinstance(value, dict):
            raise ValueError("no point to go to")
        new["point"] = snap(engine, st.checked_field(engine.choices, "point", value.get("point")))
        new["cluster"] = cluster_at(engine, new, new["point"])
    elif kind == "participants":
        if not engine.study.can_refit:
            raise ValueError("subsets need participant images")
        chosen = selected_ids(engine, value)
        if len(chosen) < MIN_PARTICIPANTS:
            raise ValueError(f"at least {MIN_PARTICIPANTS} participants are needed")
        new["participants"] = chosen
    return new


def error_text(exc: BaseException, limit: int = 200) -> str:
    """An exception as one line for the page: absolute paths cut to their file name (the
    server's folders are nobody's business), at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ABSOLUTE_PATH.sub(lambda m: m[1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(?:/[^/\s'\"():,]+)+/([^/\s'\"():,]*)")


# -- maps ------------------------------------------------------------------------------
def _vmax(engine: Engine, state: dict) -> float:
    """Colour-scale limit: max |T| over all contrasts with *all* participants, so the
    scale stays put when participants are excluded (and that redraw is a Patch)."""
    return engine.vmax([c.id for c in engine.study.contrasts], state["model"], engine.all_ids)


def draw_maps(engine: Engine, state: dict, rendered: dict | None):
    """(glass figure, 3 slice figures, hover values, status text, point text, rendered).

    Sends only what changed since ``rendered`` (what the page shows now): full figures
    when the model changed (colour scale) or on the first call, else a ``Patch`` of the
    layout parts that depend on what changed -- threshold/extent/direction/contrast/
    participants: map images; slice position: that slice's image and title; point:
    crosshair and glass-brain markers; selected cluster: outline -- and ``no_update``
    for a figure with nothing new.  The figures' traces never change (static capture
    heatmaps), so plotly.js never replots them.  The hover values (T under the pointer,
    :func:`dashboard.figures.hover_values`) follow the T volume and the slice positions."""
    subset = engine.subset(state["participants"])
    vol, df = engine.volume(state["contrast"], state["model"], subset)
    height = engine.height(state, df)
    point = tuple(state["point"])
    prev = rendered if isinstance(rendered, dict) else {}  # the page's copy of what it shows: anything else redraws all
    keys = {"base": [state["model"]], "vol": [state["contrast"], state["model"], list(subset)], "map": st.table_key(state),
            "cluster": state["cluster"], "point": list(point)}
    full = prev.get("base") != keys["base"]
    vol_changed = full or prev.get("vol") != keys["vol"]
    map_changed = vol_changed or prev.get("map") != keys["map"]
    cluster_changed = map_changed or prev.get("cluster") != keys["cluster"]
    point_changed = prev.get("point") != keys["point"]
    shown = engine.shown(state)  # threshold and extent
    vmax = _vmax(engine, state)
    index = engine.grid.index_of(point)
    prev_index = prev.get("index") if isinstance(prev.get("index"), list) and len(prev["index"]) == 3 else None
    moved = [prev_index is None or prev_index[axis] != index[axis] for axis in (0, 1, 2)]
    cluster = None
    if state["cluster"]:
        cluster = engine.cluster_mask(engine.table(state, with_rft=False), state["cluster"])

    def slice_image(axis: int) -> str:
        return _image(engine, ("slice", keys["map"], axis, index[axis], vmax),
                      lambda: figures.slice_image(axis, index[axis], template=engine.template, shown=shown, vmax=vmax))

    def glass_image(axis: int) -> str:
        return _image(engine, ("glass", keys["map"], axis, vmax), lambda: figures.glass_shown(shown, axis, height, state["direction"], vmax))

    def slice_hover(axis: int) -> dict:
        return figures.slice_hover(axis, index[axis], vol, engine.grid)

    glass: Any  # each view: the whole figure, a Patch of it, or no_update
    hover: Any
    slices: list[Any]
    if full:
        glass = figures.glass_brain_figure(shown, engine.grid, threshold=height, vmax=vmax, direction=state["direction"],
                                           outline=engine.mask, point=point, custom_hover=True)
        slices = [figures.slice_figure(axis, slice_image(axis), engine.grid, point, vmax=vmax, showscale=(axis == 2), cluster=cluster)
                  for axis in (0, 1, 2)]
        hover = {"glass": [figures.glass_hover(vol, axis, engine.grid) for axis in (0, 1, 2)], "slices": [slice_hover(axis) for axis in (0, 1, 2)]}
    else:
        glass = Patch() if (map_changed or point_changed) else no_update
        hover = Patch() if (vol_changed or any(moved)) else no_update
        for axis in (0, 1, 2):
            if map_changed:
                glass["layout"]["images"][axis]["source"] = glass_image(axis)
            if point_changed:
                glass["layout"]["shapes"][axis] = figures.glass_marker(point, axis)
            if vol_changed:
                hover["glass"][axis] = figures.glass_hover(vol, axis, engine.grid)
            if vol_changed or moved[axis]:
                hover["slices"][axis] = slice_hover(axis)
        slices = []
        for axis in (0, 1, 2):
            new_image = moved[axis] or map_changed
            if not new_image and not point_changed and not cluster_changed:
                slices.append(no_update)
                continue
            patch = Patch()
            if new_image:
                patch["layout"]["images"][0]["source"] = slice_image(axis)
            if moved[axis]:
                patch["layout"]["annotations"][0]["text"] = figures.slice_title(axis, point[axis])
            if point_changed or cluster_changed:
                patch["layout"]["shapes"] = figures.slice_shapes(axis, point, engine.grid, cluster)
            slices.append(patch)
    t_here = vol[index]
    point_text = f"MNI ({point[0]:g}, {point[1]:g}, {point[2]:g}) · T = {t_here:.2f}" if np.isfinite(t_here) else \
        f"MNI ({point[0]:g}, {point[1]:g}, {point[2]:g}) · outside the mask"
    status = [html.Span(engine.describe(state, df), className="fw-semibold"),
              html.Br(), html.Span(_model_text(engine, len(subset), state["model"]))]
    return glass, slices, hover, status, point_text, {**keys, "index": list(index), "height": float(height)}


def _model_text(engine: Engine, n: int, model: str) -> str:
    """'21 of 22 participants · model cells', or what a package's folder is shown with."""
    if not engine.all_ids:
        return "the folder's stored maps (no participant images)"
    if engine.study.design_rows is not None:
        refit = "refitted" if n != len(engine.all_ids) else "as estimated"
        return f"{n} of {len(engine.all_ids)} participants · the folder's design, {refit}"
    return f"{n} of {len(engine.all_ids)} participants · model {model}"


def _image(engine: Engine, key, make) -> str:
    """A drawn map image (PNG data URI), cached: going back to a threshold or slice
    sends the same string without recomputing it."""
    import json

    k = json.dumps(key)
    hit = engine.images.get(k)
    return hit if hit is not None else engine.images.put(k, make())


def correspondence_rows(engine: Engine, state: dict) -> tuple[list[dict], str]:
    """Rows of the correspondence table of the view's contrast (every listed cluster, each
    overlapping cluster of the other contrasts) and a summary line."""
    from dashboard.correspondence import correspondence

    with engine.lock:
        frame = correspondence(engine.analysis, state["contrast"], threshold=engine.threshold(state), extent=int(state["k"]),
                               participants=engine.subset(state["participants"]), model=engine._model(state["model"]))
    labels = {c.id: c.label for c in engine.study.contrasts}
    rows = []
    for rec in frame.to_dict("records"):
        other_key = f"{rec.get('other_contrast')}|{rec.get('other_direction')}|{rec.get('other_x')}|{rec.get('other_y')}|{rec.get('other_z')}"
        row = {"row": f"{rec['direction']}|{rec['x']:g}|{rec['y']:g}|{rec['z']:g}|{other_key}", "cluster": f"#{int(rec['cluster_id'])} {rec['direction']}, k {int(rec['k'])} at "
                                         f"({rec['x']:g}, {rec['y']:g}, {rec['z']:g})",
               "a": {"direction": rec["direction"], "peak": [float(rec["x"]), float(rec["y"]), float(rec["z"])]},
               "other": "", "common_voxels": 0, "dice": None, "peak_distance_mm": None, "b": None}
        if isinstance(rec.get("other_contrast"), str):
            row.update(other=f"{labels.get(rec['other_contrast'], rec['other_contrast'])}: #{int(rec['other_cluster_id'])} "
                             f"{rec['other_direction']}, k {int(rec['other_k'])} at ({rec['other_x']:g}, {rec['other_y']:g}, {rec['other_z']:g})",
                       common_voxels=int(rec["common_voxels"]), dice=round(float(rec["dice"]), 3),
                       peak_distance_mm=round(float(rec["peak_distance_mm"]), 1),
                       b={"contrast": rec["other_contrast"], "direction": rec["other_direction"],
                          "peak": [float(rec["other_x"]), float(rec["other_y"]), float(rec["other_z"])]})
        else:
            row["other"] = "no overlapping cluster in the other contrasts"
        rows.append(row)
    n = len({r["cluster"] for r in rows})
    shared = len({r["cluster"] for r in rows if r["b"] is not None})
    return rows, f"{shared} of {n} clusters of this contrast overlap a cluster of another contrast at this threshold and extent."


def _pair(engine: Engine, state: dict, selected: Any) -> list[tuple[str, dict]]:
    """(contrast, cluster) of the selected correspondence row's two clusters, checked."""
    if not isinstance(selected, list) or not selected or not isinstance(selected[0], dict):
        return []
    row = selected[0]
    out = []
    for contrast, cluster in ((state["contrast"], row.get("a")), ((row.get("b") or {}).get("contrast"), row.get("b"))):
        if not isinstance(cluster, dict):
            continue
        try:
            out.append((st.checked_field(engine.choices, "contrast", contrast),
                        st.checked_field(engine.choices, "cluster", {"direction": cluster.get("direction"), "peak": cluster.get("peak")})))
        except ValueError:
            continue
    return out


PAIR_COLOURS = ("#2ca02c", "#e7298a")  # this contrast's cluster, the other's


def draw_compare(engine: Engine, state: dict, selected: Any = None):
    subset = engine.subset(state["participants"])
    vols = []
    df = None
    for c in engine.study.contrasts:
        _, df = engine.volume(c.id, state["model"], subset)
        vols.append((engine.shown(dict(state, contrast=c.id)), c.label))
    if df is None:
        raise ValueError("the study defines no contrast")
    height = engine.height(state, df)
    vmax = _vmax(engine, state)
    fig = figures.glass_brain_figure(vols, engine.grid, threshold=height, vmax=vmax, direction=state["direction"], outline=engine.mask,
                                     height=300 * len(vols))
    for (contrast, cluster), colour in zip(_pair(engine, state, selected), PAIR_COLOURS, strict=False):
        both = dict(state, contrast=contrast, direction="both")
        mask = engine.cluster_mask(engine.table(both, with_rft=False), cluster)
        if mask is not None:
            fig["layout"]["shapes"] = fig["layout"].get("shapes", []) + figures.mip_outlines(mask, engine.grid, len(vols), colour)
    text = (f"All contrasts at the same threshold and colour scale (|T| up to {vmax:.1f}): {engine.describe(state, df)}, "
            f"clusters of ≥ {int(state['k'])} voxels")
    return fig, text


# -- cluster table ---------------------------------------------------------------------
def table_rows(engine: Engine, state: dict, *, with_rft: bool, pending: bool) -> tuple[list[dict], str]:
    """Rows of SPM's table for the grid, and the line that says what they were computed with."""
    result = engine.table(state, with_rft=with_rft)
    frame = result.frame
    note_value = RFT_PENDING_NOTE if pending else "n/a"
    labels = direction_labels(engine.study, state["contrast"])
    rows = []
    for i, rec in enumerate(frame.to_dict("records")):
        row: dict[str, Any] = {str(k): (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in rec.items()}
        for key in ("cluster_id", "k"):
            row[key] = int(row[key])
        if row.get("c_set") is not None:
            row["c_set"] = int(row["c_set"])
        row["is_main_peak"] = bool(row["is_main_peak"])
        xyz = (rec["x"], rec["y"], rec["z"])
        row["row_id"] = row_id(rec["direction"], rec["cluster_id"], xyz, i)
        row["direction_label"] = labels.get(rec["direction"], rec["direction"])
        row["xyz"] = f"{xyz[0]:g} {xyz[1]:g} {xyz[2]:g}"
        row["rft_note"] = note_value
        if not row["is_main_peak"]:  # SPM prints cluster-level values on a cluster's first row only
            for key in ("p_fwe_cluster", "p_fdr_cluster", "p_unc_cluster"):
                row[key] = None
        rows.append(row)
    n_clusters = int(frame.loc[frame["is_main_peak"], "cluster_id"].nunique()) if len(frame) else 0
    text = f"{n_clusters} cluster{'s' if n_clusters != 1 else ''} of ≥ {int(state['k'])} voxels at {engine.describe(state, result.df)}"
    if state.get("svc"):
        text += f" · small-volume correction in {' + '.join(state['svc'])} (AAL)"
    if pending:
        text += " · p-FWE/p-FDR: n/a (re-estimating smoothness for this participant subset / model)"
    elif not result.with_rft:
        text += " · no smoothness estimate: RFT p-values n/a"
    text += ". Click a row to go to its peak. p(unc) and Z as SPM prints them (spm_P, R = 1)."
    return rows, text


def selected_rows(engine: Engine, state: dict) -> dict:
    """AG Grid ``selectedRows`` of the cluster table: the main-peak row of the selected
    cluster (so a cluster chosen in the views or by typing its peak is the row shown
    selected), none without a selection."""
    chosen = state.get("cluster")
    if not chosen:
        return {"ids": []}
    frame = engine.table(state, with_rft=False).frame
    for i, rec in enumerate(frame.to_dict("records")):
        if rec["direction"] == chosen["direction"] and rec["is_main_peak"] and [rec["x"], rec["y"], rec["z"]] == list(chosen["peak"]):
            return {"ids": [row_id(rec["direction"], rec["cluster_id"], (rec["x"], rec["y"], rec["z"]), i)]}
    return {"ids": []}


def table_footer(engine: Engine, state: dict, *, with_rft: bool) -> str:
    """SPM's footer of each shown direction, as ``spm_list`` prints it ("" without RFT)."""
    result = engine.table(state, with_rft=with_rft)
    labels = direction_labels(engine.study, state["contrast"])
    parts = []
    for direction, footer in result.footers.items():
        head = [f"{labels.get(direction, direction)}:"] if len(result.footers) > 1 else []
        parts.append("\n".join([*head, *footer.lines()]))
    if not parts:
        return "RFT not available (no smoothness estimate): no footer." if not result.with_rft else ""
    return "\n\n".join(parts)


# -- regression ------------------------------------------------------------------------
def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if p >= 0.001 else f"{p:.2e}"


def stats_box(outcome) -> html.Table:
    lts, ols = (outcome.fit, outcome.other) if outcome.fit.method == "lts" else (outcome.other, outcome.fit)
    rows = [
        ("Intercept", f"{lts.intercept:.2f}", f"{ols.intercept:.2f}"),
        ("Slope", f"{lts.slope:.2f}", f"{ols.slope:.2f}"),
        ("R²", f"{lts.r_squared:.2f}", f"{ols.r_squared:.2f}"),
        ("p (slope)", _fmt_p(lts.p_value), _fmt_p(ols.p_value)),
        ("N used", f"{lts.n_eff:g} of {lts.n}", f"{ols.n_eff:g} of {ols.n}"),
    ]
    return html.Table(
        [html.Thead(html.Tr([html.Th(""), html.Th("LTS"), html.Th("OLS")])),
         html.Tbody([html.Tr([html.Th(name), html.Td(a, className="lts"), html.Td(b)]) for name, a, b in rows])],
        className="table table-sm mb-1 reg-table",
    )


def draw_regression(engine: Engine, state: dict, highlight: str | None = None):
    """(figure, stats children) for the selected cluster."""
    if not engine.study.can_refit:
        return figures.empty_figure("Needs participant images (this folder has group maps only)."), ""
    if not state["cluster"]:
        return figures.empty_figure("Select a cluster: click a row of the table or a blob in the views."), ""
    if not state["covariate"]:
        return figures.empty_figure("participants.tsv has no numeric column."), ""
    try:
        outcome = engine.regression(state)
    except ValueError as exc:
        return figures.empty_figure(error_text(exc, 120)), ""
    cov = state["covariate"]
    info = engine.study.participant_columns.get(cov, {}) if isinstance(engine.study.participant_columns, dict) else {}
    units = info.get("Units") if isinstance(info, dict) else None
    cond = dict(st.condition_options(engine.study)).get(state["condition"], state["condition"])
    x_label = f"{cov} ({units})" if units else cov
    y_label = f"{state['value']}, {cond}"
    fig = figures.regression_figure(outcome.participants, outcome.fit if outcome.fit.method == "lts" else outcome.other,
                                    outcome.other if outcome.fit.method == "lts" else outcome.fit,
                                    x_label=x_label, y_label=y_label, highlight=highlight)
    peak = ", ".join(f"{v:g}" for v in state["cluster"]["peak"])
    stats = [html.Div(f"Cluster at ({peak}), {outcome.cluster_size} voxels", className="small text-muted mb-1"), stats_box(outcome),
             html.Div("Red x: down-weighted by LTS (outliers).", className="small text-muted")]
    return fig, stats


def draw_influence(engine: Engine, state: dict, highlight: str | None = None):
    """(bar figure, note, participant-grid rows) of how much each participant drives the
    selected cluster's regression; without one, the figure says why and the columns are blank."""
    from dashboard.app.layout import INFLUENCE_COLUMNS, participant_rows

    rows = participant_rows(engine.study)
    if not engine.study.can_refit or not state["cluster"] or not state["covariate"]:
        return figures.empty_figure("Influence: select a cluster.", height=220), "", rows
    try:
        outcome, inf = engine.influence(state)
    except ValueError as exc:
        return figures.empty_figure(error_text(exc, 120), height=220), "", rows
    frame = outcome.participants
    lts_slope = outcome.fit.slope if outcome.fit.method == "lts" else outcome.other.slope
    d_ols = inf.loo_slope - inf.slope
    d_lts = inf.lts_loo_slope - lts_slope
    pids = [str(p) for p in frame["participant_id"]]
    fig = figures.influence_figure(pids, d_ols, d_lts, inf.dfbetas_slope, inf.cooks_distance, highlight=highlight)
    i = inf.most_influential
    note = (f"Leaving out {pids[i]} changes the OLS slope most: {inf.slope:.3g} → {inf.loo_slope[i]:.3g} "
            f"(Cook's D {inf.cooks_distance[i]:.2f}, DFBETAS {inf.dfbetas_slope[i]:.2f}); LTS without {pids[i]}: {inf.lts_loo_slope[i]:.3g}.")
    by_id = {p: k for k, p in enumerate(pids)}
    values = {"influence:dslope_ols": d_ols, "influence:dslope_lts": d_lts, "influence:r2": inf.loo_r_squared, "influence:cooks": inf.cooks_distance,
              "influence:dfbetas": inf.dfbetas_slope}
    assert set(values) == set(INFLUENCE_COLUMNS)
    for row in rows:
        k = by_id.get(row["participant_id"])
        for col, arr in values.items():
            v = float(arr[k]) if k is not None else float("nan")
            row[col] = round(v, 4) if np.isfinite(v) else None
    return fig, note, rows


# -- participants ----------------------------------------------------------------------
def filter_participants(engine: Engine, values: list[Any], filter_ids: list[Any]) -> list[str]:
    """Participant ids passing the quick filters (values in the order of their pattern
    ids); ValueError for a filter or value the page cannot send."""
    from dashboard.filters import filter_participants as passing
    from dashboard.filters import quick_filters

    filters = quick_filters(engine.study)
    by_column = {f.column: f for f in filters}
    if not isinstance(values, list) or not isinstance(filter_ids, list) or len(values) != len(filter_ids):
        raise ValueError("quick filters: values and ids do not match")
    chosen: dict[str, Any] = {}
    for fid, value in zip(filter_ids, values, strict=True):
        column = fid.get("column") if isinstance(fid, dict) else None
        if not isinstance(column, str) or column not in by_column:
            raise ValueError("quick filters: unknown filter")
        chosen[column] = value
    return passing(engine.study, filters, chosen)


def included_text(engine: Engine, state: dict, selected) -> str:
    n_sel = len(selected_ids(engine, selected)) if selected is not None else len(state["participants"])
    text = f"{len(state['participants'])} of {len(engine.all_ids)} included"
    if n_sel < MIN_PARTICIPANTS:
        text += f" (select at least {MIN_PARTICIPANTS})"
    return text


def claim_check(engine: Engine, state: dict, name: Any, upload: Any = None, mapping: dict[str, str] | None = None):
    """(summary, rows) of the claim check of one of the folder's peak tables, or of the
    uploaded one (``name`` :data:`peaks.UPLOAD_LAYER`, its columns mapped by ``mapping``),
    at the view's threshold, extent, model and participants."""
    from dashboard.app.peaks import layer_frame
    from dashboard.claims import check_table

    if not isinstance(name, str):
        raise ValueError("no peak table chosen")
    table, cols = layer_frame(engine, name, upload, mapping)
    with engine.lock:
        rows, line = check_table(engine.analysis, table, mapping=cols, threshold=engine.threshold(state), extent=int(state["k"]),
                                 model=engine._model(state["model"]), participants=engine.subset(state["participants"]),
                                 fallback_contrast=state["contrast"])
    shown = rows.astype(object).where(rows.notna(), None).to_dict("records")
    for i, row in enumerate(shown):
        row["row"] = str(i)  # the grid's row id (a click names its row by it)
    return line, shown


def goto_row(engine: Engine, state: dict, rows: Any, clicked: Any, goto: Any) -> tuple[str, str, dict, str]:
    """(contrast, direction, GOTO data, note) for a click on a row of a table of points
    (the claim check): its contrast and direction become the controls' values (the
    direction only when one is shown) and the views go to its coordinate.  Every value
    comes from the page: ValueError for a row that is not one of the grid's."""
    row = clicked_row(rows, clicked)
    contrast = st.checked_field(engine.choices, "contrast", row.get("checked_contrast"))
    direction = state["direction"]
    if direction != "both":
        direction = st.checked_field(engine.choices, "direction", row.get("checked_direction"))
    target = goto_data(engine, st.checked_field(engine.choices, "point", [row.get("x"), row.get("y"), row.get("z")]), goto)
    point = target["point"]
    label = next((c.label for c in engine.study.contrasts if c.id == contrast), contrast)
    note = (f"Views moved to MNI ({point[0]:g}, {point[1]:g}, {point[2]:g}) on {label}; the cluster there is selected in the table "
            "below (Explore shows the maps).")
    return contrast, direction, target, note


def clicked_row(rows: Any, clicked: Any) -> dict:
    """The row of a grid's ``rowData`` that an AG Grid ``cellClicked`` names (rows carry
    their id as ``row``); ValueError when the click or the rows are not the grid's."""
    if not isinstance(clicked, dict) or not isinstance(rows, list):
        raise ValueError("no row clicked")
    rid = clicked.get("rowId")
    row = next((r for r in rows if isinstance(r, dict) and isinstance(r.get("row"), str) and r["row"] == rid), None)
    if row is None:
        raise ValueError("the clicked row is not in the grid")
    return row


def goto_data(engine: Engine, point: list[float], goto: Any) -> dict:
    """The GOTO store's next value: the voxel centre of ``point`` and a click count (so
    that going to the same point twice is still a change)."""
    n = goto.get("n", 0) if isinstance(goto, dict) and isinstance(goto.get("n"), int) else 0
    return {"point": snap(engine, point), "n": n + 1}


# -- leave-one-out survival of the selected cluster (a background job) -------------------
SURVIVAL_KEYS = ("contrast", "direction", "use_t", "t", "p_kind", "p_unc", "k", "svc", "model", "participants", "cluster")


def survival_request(engine: Engine, request: Any) -> dict:
    """The question a leave-one-out run answers (the view state's keys it depends on, as
    assets/clientside.js ``survivalRequest`` builds it), checked; ValueError otherwise."""
    if not isinstance(request, dict) or set(request) != set(SURVIVAL_KEYS):
        raise ValueError("not a leave-one-out request")
    out = {key: st.checked_field(engine.choices, key, request[key]) for key in SURVIVAL_KEYS}
    if out["cluster"] is None:
        raise ValueError("no cluster selected")
    if out["svc"]:
        raise ValueError("leave-one-out runs on the whole volume: clear the small-volume regions first")
    if not engine.study.can_refit:
        raise ValueError("leave-one-out needs participant images (this folder has group maps only)")
    return out


def run_survival(engine: Engine, request: dict, progress=None) -> dict:
    """Leave each participant of the request's subset out, refit, and see whether its
    cluster survives (:func:`dashboard.survival.leave_one_out`); plain JSON values."""
    from dashboard.survival import leave_one_out

    cluster = request["cluster"]
    result = leave_one_out(engine.analysis, request["contrast"], tuple(cluster["peak"]), direction=cluster["direction"],
                           threshold=engine.threshold(request), extent=int(request["k"]), model=engine._model(request["model"]),  # type: ignore[arg-type]
                           participants=engine.subset(request["participants"]), progress=progress)
    return result.to_dict()


def survival_outputs(engine: Engine, data: dict) -> tuple[Any, dict, list[dict]]:
    """(summary children, strip figure, table rows) of a finished leave-one-out run."""
    full, rows, summary = data["full"], data["rows"], data["summary"]
    stat = engine.analysis.map_field(data["contrast"], data["model"], tuple(data["participants"]), float(full["df"])).stat
    peak = ", ".join(f"{v:g}" for v in (full["x"], full["y"], full["z"]))
    p_full = full.get("p_fwe_cluster")
    head = (f"Cluster at ({peak}), {full['k']} voxels, peak {stat} {full['peak_t']:.2f}"
            + (f", cluster p-FWE {p_full:.3g}" if p_full is not None else "") + f", with all {len(data['participants'])}: ")
    text = [html.Span(head + str(summary.get("text", "")), className="fw-semibold"), html.Br(),
            html.Span(f"Each refit at its own df and the same threshold kind; {data['note']}.", className="small text-muted")]
    fig = figures.survival_figure(rows, full, stat=stat)
    shown = []
    for r in rows:
        shown.append({key: (round(v, 4) if isinstance(v, float) else v) for key, v in r.items()})
    return text, fig, shown
