"""Peak tables in the page: the folder's tables of MNI coordinates (its published table,
peaks of other studies) and one the user uploads, as marker layers on the maps, as
input of the claim check, and as a table of distances to the current clusters.

An uploaded table never touches the disk: it is parsed here (:func:`dashboard.claims.read_uploaded_table`),
kept by the page (a ``dcc.Store`` of plain records) and sent back with the requests that
use it, where :func:`uploaded_frame` checks it again (the page can send anything).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.app import state as st
from dashboard.app.engine import Engine
from dashboard.claims import MAX_UPLOAD_COLUMNS, MAX_UPLOAD_ROWS, cell_text, number_or_none
from dashboard.figures import PeakMarker

UPLOAD_LAYER = "__upload__"  # the layer value of the uploaded table (no folder table has this name: tables/*.tsv stems)


def layer_options(engine: Engine, upload: Any = None) -> list[dict[str, str]]:
    """The peak tables that can be drawn: the folder's (those with x, y, z columns) and
    the uploaded one."""
    from dashboard.claims import peak_tables

    options = [{"label": name, "value": name} for name in peak_tables(engine.study)]
    name = upload_name(upload)
    if name is not None:
        options.append({"label": f"uploaded: {name}", "value": UPLOAD_LAYER})
    return options


def upload_name(upload: Any) -> str | None:
    return upload["name"] if isinstance(upload, dict) and isinstance(upload.get("name"), str) else None


def upload_store(filename: str, frame: pd.DataFrame) -> dict[str, Any]:
    """What the page keeps of an uploaded table: its name, columns and rows as JSON values."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {"name": filename, "columns": [str(c) for c in frame.columns], "rows": records}


def uploaded_frame(upload: Any) -> pd.DataFrame:
    """The uploaded table the page sent back, checked (shape, names, plain values);
    ValueError for anything else."""
    if not isinstance(upload, dict):
        raise ValueError("no uploaded table")
    columns, rows = upload.get("columns"), upload.get("rows")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or not 0 < len(columns) <= MAX_UPLOAD_COLUMNS:
        raise ValueError("uploaded table: bad columns")
    if len(set(columns)) != len(columns):
        raise ValueError("uploaded table: duplicate column names")
    if not isinstance(rows, list) or not 0 < len(rows) <= MAX_UPLOAD_ROWS:
        raise ValueError("uploaded table: bad rows")
    known = set(columns)
    for row in rows:
        if not isinstance(row, dict) or not set(row) <= known:
            raise ValueError("uploaded table: a row is not one of the table's")
        for v in row.values():
            if v is not None and (isinstance(v, bool) or not isinstance(v, str | int | float)):
                raise ValueError("uploaded table: a value is not text or a number")
    return pd.DataFrame(rows, columns=columns)


def mapping_of(values: Any, field_ids: Any, columns: list[str]) -> dict[str, str]:
    """field -> column from the mapping dropdowns (pattern-matching values and ids), only
    columns the table has; an empty choice leaves the field to recognition."""
    out: dict[str, str] = {}
    if not isinstance(values, list) or not isinstance(field_ids, list) or len(values) != len(field_ids):
        return out
    for fid, value in zip(field_ids, values, strict=True):
        field = fid.get("field") if isinstance(fid, dict) else None
        if isinstance(field, str) and isinstance(value, str) and value in columns:
            out[field] = value
    return out


def layer_frame(engine: Engine, layer: str, upload: Any, mapping: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """(table, field -> column) of one layer; ValueError for an unknown layer or a table
    without coordinates."""
    from dashboard.claims import peak_tables, recognise_columns

    if layer == UPLOAD_LAYER:
        frame = uploaded_frame(upload)
        return frame, recognise_columns(list(frame.columns), mapping or None)
    if layer not in peak_tables(engine.study):
        raise ValueError("no such peak table")
    frame = engine.study.tables[layer]
    return frame, recognise_columns(list(frame.columns))


def _layers(engine: Engine, layers: Any, upload: Any, mapping: dict[str, str] | None):
    """(layer value, title, table, field -> column) of each chosen layer that exists and
    has coordinates (anything else the page sent is skipped)."""
    if not isinstance(layers, list):
        return
    for layer in layers:
        if not isinstance(layer, str):
            continue
        try:
            frame, cols = layer_frame(engine, layer, upload, mapping)
        except ValueError:
            continue
        yield layer, (f"uploaded: {upload_name(upload)}" if layer == UPLOAD_LAYER else layer), frame, cols


def _reported(z: Any, t: Any) -> str:
    return " · ".join(f"{name} {v:g}" for name, value in (("Z", z), ("T", t)) for v in [number_or_none(value)] if v is not None)


def markers(engine: Engine, layers: Any, upload: Any, mapping: dict[str, str] | None = None) -> list[PeakMarker]:
    """The peaks of the chosen layers with their hover lines (table, source, region,
    contrast, reported Z or T, coordinate); rows without three finite coordinates are left out."""
    out: list[PeakMarker] = []
    for _, title, frame, cols in _layers(engine, layers, upload, mapping):
        for _, row in frame.iterrows():
            xyz = [number_or_none(row[cols[a]]) for a in ("x", "y", "z")]
            if xyz[0] is None or xyz[1] is None or xyz[2] is None:
                continue
            lines = [title, *(text for f in ("source", "region", "contrast") if f in cols for text in [cell_text(row[cols[f]]).strip()] if text)]
            where = f"MNI ({xyz[0]:g}, {xyz[1]:g}, {xyz[2]:g})"
            reported = _reported(row[cols["zscore"]] if "zscore" in cols else None, row[cols["t"]] if "t" in cols else None)
            lines.append(f"{reported} · {where}" if reported else where)
            out.append(PeakMarker((xyz[0], xyz[1], xyz[2]), tuple(lines)))
    return out


def distances(engine: Engine, state: dict, layers: Any, upload: Any, mapping: dict[str, str] | None = None) -> tuple[list[dict], str]:
    """Rows of the distance table (each peak of the chosen layers: distance to the nearest
    listed cluster of the view's contrast and direction(s), the map's value there:
    :func:`dashboard.claims.peak_distances`) and a summary line."""
    from dashboard.claims import peak_distances

    rows: list[dict] = []
    subset = engine.subset(state["participants"])
    directions = ("pos", "neg") if state["direction"] == "both" else (state["direction"],)
    for layer, title, frame, cols in _layers(engine, layers, upload, mapping):
        with engine.lock:
            found = peak_distances(engine.analysis, frame, contrast=state["contrast"], directions=directions, threshold=engine.threshold(state),
                                   extent=int(state["k"]), model=engine._model(state["model"]), participants=subset, mapping=cols)
        for i, got in enumerate(found.to_dict("records")):
            dist, value = number_or_none(got["nearest_cluster_mm"]), number_or_none(got["map_value"])
            cluster = None
            if dist is not None:
                cluster = (f"#{int(got['nearest_cluster_id'])} ({got['nearest_cluster_direction']}) peak "
                           f"{got['nearest_cluster_x']:g} {got['nearest_cluster_y']:g} {got['nearest_cluster_z']:g}")
            rows.append({"row": f"{layer}|{i}", "layer": title, "source": cell_text(got["source"]).strip(), "region": cell_text(got["region"]).strip(),
                         "reported": _reported(got["reported_z"], got["reported_t"]),
                         "x": number_or_none(got["x"]), "y": number_or_none(got["y"]), "z": number_or_none(got["z"]),
                         "nearest_cluster_mm": None if dist is None else round(dist, 1), "nearest_cluster": cluster,
                         "map_value": None if value is None else round(value, 2)})
    inside = sum(1 for r in rows if r["nearest_cluster_mm"] == 0)
    near = sum(1 for r in rows if r["nearest_cluster_mm"] is not None and 0 < r["nearest_cluster_mm"] <= 10)
    line = f"{len(rows)} peaks: {inside} inside a listed cluster of this view, {near} within 10 mm of one" if rows else ""
    return rows, line


def goto_point(engine: Engine, rows: Any, clicked: Any) -> list[float]:
    """The coordinate of a clicked row of the distance table (checked; ValueError otherwise)."""
    from dashboard.app.views import clicked_row

    row = clicked_row(rows, clicked)
    return st.checked_field(engine.choices, "point", [row.get("x"), row.get("y"), row.get("z")])


def receive_upload(contents: Any, filename: Any) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(store, field -> recognised column) of a dcc.Upload's ``contents`` (a base64 data
    URL) and file name; ValueError with one line naming the file and the problem."""
    import base64
    import binascii

    from dashboard.claims import column_guess, read_uploaded_table, shown_name

    name = shown_name(filename)  # the file's own name only, printable, as read_uploaded_table's messages give it
    if not isinstance(contents, str) or "," not in contents:
        raise ValueError(f"{name}: nothing was uploaded")
    try:
        content = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name}: the upload is not base64 data") from exc
    frame = read_uploaded_table(name, content)  # its limits: MAX_UPLOAD_BYTES, _ROWS, _COLUMNS
    return upload_store(name, frame), column_guess([str(c) for c in frame.columns])


def draw(engine: Engine, state: dict, layers: Any, rendered_maps: dict[str, Any], upload: Any, mapping: dict[str, str],
         rendered: Any) -> tuple:
    """Markers of the chosen layers on the glass brain and the three slices (annotation
    patches, after each slice's fixed annotations), and the distance table (only when what
    it depends on changed since ``rendered``)."""
    from dash import Patch, no_update

    from dashboard import figures

    marks = markers(engine, layers, upload, mapping)
    point = rendered_maps.get("point")
    if not isinstance(point, list) or len(point) != 3:
        raise ValueError("no rendered point")
    point = [st.finite_number(v) for v in point]
    glass = Patch()
    glass["layout"]["annotations"] = [a for axis in (0, 1, 2) for a in figures.peak_markers(marks, axis, axes=axis + 1)]
    slices = []
    for axis in (0, 1, 2):
        patch = Patch()
        patch["layout"]["annotations"] = figures.slice_annotations(axis, point[axis]) + figures.peak_markers(marks, axis, plane=point[axis])
        slices.append(patch)
    key = [list(layers) if isinstance(layers, list) else [], upload_name(upload), mapping, st.table_key(state), state["direction"]]
    if key == rendered:
        return (glass, *slices, no_update, no_update, no_update)
    rows, line = distances(engine, state, layers, upload, mapping)
    return (glass, *slices, rows, f"({line})" if line else "", key)
