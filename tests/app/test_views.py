"""Callback logic without a browser: view-state transitions, Patch use, table rows,
regression numbers (dashboard.app.views on a tiny real study and on the sample)."""

from __future__ import annotations

import pytest
from dash import Patch, no_update

from dashboard.app import Settings, create_app, ids, views
from dashboard.app import state as st
from dashboard.app.callbacks import INPUT_KINDS
from dashboard.app.engine import Engine
from dashboard.results import load_study
from tests.conftest import SAMPLE


@pytest.fixture
def engine(tiny_study):
    return Engine(load_study(tiny_study), template=False)


@pytest.fixture(scope="module")
def sample_engine():
    return Engine(load_study(SAMPLE), template=False)


def test_ap001_default_state_is_json_and_complete(engine):
    import json

    state = st.default_state(engine.study)
    assert json.loads(json.dumps(state)) == state
    assert set(state) == {"contrast", "direction", "p_unc", "p_kind", "t", "use_t", "k", "svc", "model", "point", "cluster", "covariate", "value",
                          "condition", "participants"}
    assert state["covariate"] == "cocaine_duration_years"


def test_ap002_next_state_controls_and_invalid_inputs(engine):
    s0 = st.default_state(engine.study)
    s1 = views.next_state(engine, s0, ids.T_VALUE, 4.0, INPUT_KINDS)
    assert s1["t"] == 4.0 and s0["t"] == 3.5  # the old state is not mutated
    s2 = views.next_state(engine, s1, ids.POINT_X, 7.4, INPUT_KINDS)
    assert s2["point"][0] in engine.grid.x  # snapped to a voxel centre
    for cid, bad in ((ids.P_UNC, None), (ids.P_UNC, 2), (ids.EXTENT, -1), (ids.T_VALUE, 0)):
        with pytest.raises(ValueError):
            views.next_state(engine, s0, cid, bad, INPUT_KINDS)
    with pytest.raises(ValueError):
        views.next_state(engine, s0, ids.PARTICIPANT_GRID, {"ids": ["sub-01", "sub-02"]}, INPUT_KINDS)
    s3 = views.next_state(engine, s0, ids.PARTICIPANT_GRID, [{"participant_id": p} for p in engine.all_ids[:5]], INPUT_KINDS)
    assert s3["participants"] == list(engine.all_ids[:5])


def test_ap003_point_move_patches_instead_of_redrawing(engine):
    s0 = st.default_state(engine.study)
    glass, slices, hover, status, _, rendered = views.draw_maps(engine, s0, None)
    assert isinstance(glass, dict) and all(isinstance(f, dict) for f in slices)
    assert len(hover["glass"]) == 3 and len(hover["slices"]) == 3
    assert "df 20" in status[0].children
    # same state: nothing to send
    glass, slices, hover, *_ = views.draw_maps(engine, s0, rendered)
    assert glass is no_update and all(f is no_update for f in slices) and hover is no_update
    # move x only: the sagittal slice changes, coronal/axial only move their crosshair
    s1 = dict(s0, point=[engine.grid.x[1], s0["point"][1], s0["point"][2]])
    glass, slices, hover, *_ = views.draw_maps(engine, s1, rendered)
    assert isinstance(glass, Patch) and all(isinstance(f, Patch) for f in slices) and isinstance(hover, Patch)
    # the figures' traces never change after the first draw (no replot in the browser):
    # only layout parts are patched, and the hover values only for the moved slice
    for patch in (glass, *slices):
        assert all(op["location"][0] == "layout" for op in patch.to_plotly_json()["operations"])
    assert {tuple(op["location"]) for op in hover.to_plotly_json()["operations"]} == {("slices", 0)}
    s2 = dict(s1, contrast=engine.study.contrasts[1].id)
    glass, slices, hover, *_ = views.draw_maps(engine, s2, {**rendered, "point": s1["point"], "index": list(engine.grid.index_of(s1["point"]))})
    for patch in (glass, *slices):
        assert all(op["location"][0] == "layout" for op in patch.to_plotly_json()["operations"])
    assert {tuple(op["location"]) for op in hover.to_plotly_json()["operations"]} == {("glass", a) for a in range(3)} | {("slices", a) for a in range(3)}


def test_ap004_table_rows_pending_rft_then_ready(engine):
    s0 = st.default_state(engine.study)
    subset = engine.subset(s0["participants"][:-1])
    s1 = dict(s0, participants=list(subset))
    assert not engine.rft_ready(s1["contrast"], s1["model"], subset)
    rows, note = views.table_rows(engine, s1, with_rft=False, pending=True)
    assert "re-estimating" in note and rows and rows[0]["p_fwe_peak"] is None and rows[0]["rft_note"] == "n/a (re-estimating)"
    rows, note = views.table_rows(engine, s1, with_rft=True, pending=False)
    assert rows[0]["p_fwe_peak"] is not None and "re-estimating" not in note
    assert engine.rft_ready(s1["contrast"], s1["model"], subset)
    direction, peak = views.parse_row_id(rows[0]["row_id"])
    assert direction == "pos" and peak == [rows[0]["x"], rows[0]["y"], rows[0]["z"]]


def test_ap005_sample_regression_matches_published_numbers(sample_engine):
    s = dict(st.default_state(sample_engine.study), contrast="interaction")
    rows, _ = views.table_rows(sample_engine, s, with_rft=False, pending=False)
    s = views.next_state(sample_engine, s, ids.CLUSTER_TABLE, {"rowId": rows[0]["row_id"]}, INPUT_KINDS)
    assert s["point"] == [14.0, 64.0, 14.0] and s["cluster"]["direction"] == "pos"
    out = sample_engine.regression(s)
    assert round(out.fit.intercept, 2) == -0.44 and round(out.fit.slope, 2) == 0.13 and abs(out.fit.r_squared - 0.45) < 0.01
    fig, stats = views.draw_regression(sample_engine, s)
    assert {t["name"].split(":")[0] for t in fig["data"]} >= {"kept by LTS", "down-weighted by LTS", "LTS", "OLS"}
    assert "0.13" in str(stats)


def test_ap006_quick_filters(sample_engine):
    """The sample's filters come from its design.json ViewDefaults; a filter keeps the
    participants whose value passes (and those with none)."""
    from dashboard.filters import quick_filters

    filters = quick_filters(sample_engine.study)
    assert [f.column for f in filters] == ["sex", "route", "urine_cocaine_before_placebo", "urine_cocaine_before_nac", "age",
                                           "cocaine_duration_years"]
    fids = [ids.quick_filter(f.column) for f in filters]
    everyone = [f.everyone for f in filters]
    all_ids = list(sample_engine.all_ids)
    assert views.filter_participants(sample_engine, everyone, fids) == all_ids
    route = [["nasal"] if f.column == "route" else v for f, v in zip(filters, everyone, strict=True)]
    assert len(views.filter_participants(sample_engine, route, fids)) == 19
    negative = [["negative"] if f.column == "urine_cocaine_before_placebo" else v for f, v in zip(filters, everyone, strict=True)]
    neg = views.filter_participants(sample_engine, negative, fids)
    assert 0 < len(neg) < 22 and "sub-01" not in neg  # sub-01 was positive before placebo
    for bad in ([["x"]] * len(fids), everyone[:-1]):
        with pytest.raises(ValueError):
            views.filter_participants(sample_engine, bad, fids)
    with pytest.raises(ValueError, match="unknown filter"):
        views.filter_participants(sample_engine, everyone, [*fids[:-1], ids.quick_filter("nothing")])


def test_ap007_app_factory_builds_layout(tiny_study):
    app = create_app(Settings(results_dir=tiny_study, warm=False, template=False))
    assert app.layout is not None


def test_ap008_server_side_redraw_is_fast(sample_engine):
    """Server share of the interaction budget: a point move is a Patch of a few
    arrays, a threshold change reuses the cached fit (generous bounds for slow CI)."""
    import time

    s0 = st.default_state(sample_engine.study)
    sample_engine.warm(s0)  # fit + RFT smoothness, as the app does at start-up
    *_, rendered = views.draw_maps(sample_engine, s0, None)
    t0 = time.perf_counter()
    views.draw_maps(sample_engine, dict(s0, point=[20.0, 10.0, 4.0]), rendered)
    assert time.perf_counter() - t0 < 0.1
    t0 = time.perf_counter()
    views.draw_maps(sample_engine, dict(s0, p_unc=0.0005), rendered)
    views.table_rows(sample_engine, dict(s0, p_unc=0.0005), with_rft=True, pending=False)
    assert time.perf_counter() - t0 < 0.5


def test_ap040_background_callbacks_start_only_on_a_click_or_a_running_job():
    """A background callback forks the server per call: none may be triggered by the
    view state (a fork per view change, and a fork while BLAS works in another request
    thread deadlocked the server), and the server's BLAS is single-threaded."""
    from threadpoolctl import threadpool_info

    app = create_app(Settings(results_dir=SAMPLE))
    triggers = {i["id"] + "." + i["property"] for v in app.callback_map.values() if v.get("background") for i in v["inputs"]}
    assert triggers == {f"{ids.SURVIVAL_RUN}.n_clicks", f"{ids.PERM_START}.data", f"{ids.PERM_FOLLOW}.data"}
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
