"""The checks that keep values sent by the page out of the engine: the view state key by
key, clicks, row ids, selections, quick filters (crafted requests end to end:
test_callback_fuzz.py), and error messages without the server's folders."""

from __future__ import annotations

import pytest

from dashboard.app import ids, views
from dashboard.app import state as st
from dashboard.app.engine import Engine
from dashboard.results import load_study


def test_ck001_view_state_checks(tiny_study):
    engine = Engine(load_study(tiny_study), template=False)
    good = st.default_state(engine.study)
    assert views.checked_state(engine, good) == good
    assert views.checked_state(engine, dict(good, participants=list(reversed(good["participants"]))))["participants"] == good["participants"]
    bad = {"contrast": {"a": 1}, "direction": "up", "p_unc": "small", "t": -1, "use_t": "yes", "p_kind": None, "k": float("inf"),
           "svc": "Hippocampus_R", "model": "bayes", "point": [0, 0], "cluster": {"direction": "pos", "peak": "x"},
           "covariate": "nope", "value": 3, "condition": [], "participants": ["sub-99", "sub-01", "sub-02", "sub-03"]}
    for key, value in bad.items():
        with pytest.raises(ValueError, match=key if key != "participants" else "unknown"):
            views.checked_state(engine, dict(good, **{key: value}))
    for value in ([1, 2], None, {k: v for k, v in good.items() if k != "k"}, dict(good, k=10 ** 400),
                  dict(good, participants=good["participants"][:3])):
        with pytest.raises(ValueError):
            views.checked_state(engine, value)


def test_ck002_typed_event_checks(tiny_study):
    engine = Engine(load_study(tiny_study), template=False)
    assert views.clicked_xy({"points": [{"curveNumber": 2, "x": 3, "y": -6.0, "z": 1}]}) == {"points": [{"curveNumber": 2, "x": 3.0, "y": -6.0}]}
    for click in (None, {}, {"points": []}, {"points": "abc"}, {"points": [{"x": "a", "y": 1}]}, {"points": [{"x": float("nan"), "y": 1}]},
                  {"points": [{"curveNumber": True, "x": 1, "y": 1}]}):
        with pytest.raises(ValueError):
            views.clicked_xy(click)
    assert views.parse_row_id("neg|2|-3|4.5|6|0") == ("neg", [-3.0, 4.5, 6.0])
    for rid in ("pos|1", "up|1|0|0|0|0", "pos|1|a|b|c|0", "pos|1|nan|0|0|0", 5, None):
        with pytest.raises(ValueError):
            views.parse_row_id(rid)
    assert views.selected_ids(engine, {"ids": ["sub-02", "sub-01", 3, ["x"]]}) == ["sub-01", "sub-02"]
    assert views.selected_ids(engine, [{"participant_id": "sub-03"}, {"participant_id": {}}, "sub-04"]) == ["sub-03"]
    assert views.selected_ids(engine, {"ids": "sub-01"}) == [] and views.selected_ids(engine, 7) == []
    assert views.clicked_participant({"points": [{"customdata": {}}]}) is None
    sex, age = ids.quick_filter("sex"), ids.quick_filter("age")
    with pytest.raises(ValueError):
        views.filter_participants(engine, ["M", None], [sex, age])  # levels not a list
    with pytest.raises(ValueError):
        views.filter_participants(engine, [None, ["young", "old"]], [sex, age])  # range of words
    with pytest.raises(ValueError):
        views.filter_participants(engine, [None], [{"type": ids.QUICK_FILTER, "column": ["x"]}])


def test_ck003_error_text_keeps_file_names_not_folders(tmp_path):
    exc = FileNotFoundError(2, "No such file or directory", f"{tmp_path}/study/sub-01/x_statmap.nii.gz")
    text = views.error_text(exc)
    assert str(tmp_path) not in text and "/" not in text and "x_statmap.nii.gz" in text
    assert views.error_text(ValueError("p must be < 1\n and > 0")) == "p must be < 1 and > 0"
    assert len(views.error_text(ValueError("x" * 500))) == 200
