"""The reviewer views' callback logic without a browser: uploads and what the page sends
back of them, peak markers, row clicks, the leave-one-out request (dashboard.app.peaks,
dashboard.app.views)."""

from __future__ import annotations

import base64

import pytest

from dashboard.app import peaks, views
from dashboard.app import state as st
from dashboard.app.engine import Engine
from dashboard.results import load_study
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def engine():
    return Engine(load_study(SAMPLE), template=False)


def _upload(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def test_rw001_an_upload_round_trips_and_is_checked_when_it_comes_back(engine):
    store, guess = peaks.receive_upload(_upload("x,y,z,T,region\n-4,-34,32,4.9,PCC\n30,-34,-4,4.56,Hipp\n"), "C:\\Users\\me\\peaks.csv")
    assert store["name"] == "peaks.csv"  # the name only, never a client's path
    assert guess["x"] == "x" and guess["t"] == "T" and guess["region"] == "region"
    frame = peaks.uploaded_frame(store)
    assert list(frame.columns) == ["x", "y", "z", "T", "region"] and len(frame) == 2
    for bad in (None, [], {"columns": "x", "rows": []}, {"columns": ["x", "x"], "rows": [{}]},
                {"columns": ["x"], "rows": [{"y": 1}]}, {"columns": ["x"], "rows": [{"x": {"a": 1}}]},
                {"columns": ["x"], "rows": [{"x": True}]}, {"columns": ["x"], "rows": []},
                {"columns": [f"c{i}" for i in range(101)], "rows": [{}]}):
        with pytest.raises(ValueError):
            peaks.uploaded_frame(bad)


@pytest.mark.parametrize("contents, filename, message", [
    (None, "a.csv", "a.csv: nothing was uploaded"),
    ("data:text/csv;base64,@@@", "a.csv", "a.csv: the upload is not base64 data"),
    (_upload(""), "empty.csv", "empty.csv"),
])
def test_rw002_a_bad_upload_is_one_line_naming_the_file(contents, filename, message):
    with pytest.raises(ValueError) as err:
        peaks.receive_upload(contents, filename)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_rw003_mapping_takes_only_the_tables_columns():
    ids = [{"type": "claim-mapping-field", "field": f} for f in ("x", "y", "z", "t")]
    assert peaks.mapping_of(["a", "b", None, "nope"], ids, ["a", "b"]) == {"x": "a", "y": "b"}
    assert peaks.mapping_of("a", ids, ["a"]) == {}
    assert peaks.mapping_of(["a"], [{"field": 3}], ["a"]) == {}


def test_rw004_markers_of_a_folder_table_and_unknown_layers(engine):
    marks = peaks.markers(engine, ["literature_peaks", "no such table", 7], None)
    table = engine.study.tables["literature_peaks"]
    assert len(marks) == len(table)
    first = marks[0]
    assert first.xyz == tuple(float(v) for v in table.loc[0, ["x", "y", "z"]])
    assert first.lines[0] == "literature_peaks" and str(table.loc[0, "region"]) in first.lines
    assert peaks.markers(engine, "literature_peaks", None) == []  # not a list: nothing


def test_rw005_a_claim_row_click_takes_only_a_row_of_the_grid(engine):
    state = st.default_state(engine.study)
    summary, rows = views.claim_check(engine, state, "published_clusters")
    assert summary.startswith("19 of 21 peaks reproduced")
    contrast, direction, target, note = views.goto_row(engine, state, rows, {"rowId": "2"}, {"n": 4})
    assert (contrast, direction) == ("placebo", "pos") and target == {"point": [30.0, -34.0, -4.0], "n": 5}
    assert "(30, -34, -4)" in note
    for clicked, sent in (({"rowId": "99"}, rows), (None, rows), ({"rowId": "0"}, "rows"),
                          ({"rowId": "0"}, [{"row": "0", "checked_contrast": "nope", "checked_direction": "pos", "x": 0, "y": 0, "z": 0}]),
                          ({"rowId": "0"}, [{"row": "0", "checked_contrast": "placebo", "checked_direction": "pos", "x": "nan", "y": 0, "z": 0}])):
        with pytest.raises(ValueError):
            views.goto_row(engine, state, sent, clicked, None)


def test_rw006_a_leave_one_out_request_is_checked(engine):
    state = st.default_state(engine.study)
    request = {key: state[key] for key in views.SURVIVAL_KEYS}
    with pytest.raises(ValueError, match="no cluster selected"):
        views.survival_request(engine, request)
    chosen = dict(request, cluster={"direction": "pos", "peak": [14.0, 64.0, 14.0]}, contrast="interaction")
    assert views.survival_request(engine, chosen)["cluster"]["peak"] == [14.0, 64.0, 14.0]
    for bad in (dict(chosen, svc=["Precuneus_L"]), dict(chosen, participants=["sub-01"]), {**chosen, "extra": 1}, "x",
                dict(chosen, cluster={"direction": "up", "peak": [0, 0, 0]})):
        with pytest.raises(ValueError):
            views.survival_request(engine, bad)
