"""Fast sequences of clicks, as real users make them: the page must end showing what its
controls say (no lost update while a request is in flight), and stay so.

Every request is slowed down (the engine's T volumes take 0.4 s more), so the actions
of a sequence overlap for certain; the code under test is the real one."""

from __future__ import annotations

import time

import pytest

from dashboard.app import ids, views
from dashboard.app import state as st
from tests.browser.helpers import (
    TIMEOUT,
    click_table_row,
    no_console_errors,
    set_input,
    start_sample,
    wait_table_contains,
)

pytestmark = pytest.mark.browser

DELAY_S = 0.4


@pytest.fixture
def slow_engine(sample_engine, monkeypatch):
    real = sample_engine.volume

    def slow_volume(*args, **kwargs):
        time.sleep(DELAY_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_engine, "volume", slow_volume)
    return sample_engine


def _radio(dash_duo, component_id: str, value: str) -> None:
    """Click a radio option as the user does, through the browser's own click (the page
    may be scrolled, or scroll, while a burst is under way)."""
    el = dash_duo.find_element(f"#{component_id} input[value='{value}']")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", el)


def _checked(dash_duo, component_id: str) -> str:
    return dash_duo.driver.execute_script(f"return document.querySelector('#{component_id} input:checked').value")


def _controls(dash_duo, engine) -> dict:
    """The view state the controls on the page say (everything else at its default)."""
    state = st.default_state(engine.study)
    state.update(contrast=_checked(dash_duo, ids.CONTRAST), direction=_checked(dash_duo, ids.DIRECTION),
                 model=_checked(dash_duo, ids.MODEL), p_unc=float(dash_duo.find_element(f"#{ids.P_UNC}").get_attribute("value")),
                 k=int(float(dash_duo.find_element(f"#{ids.EXTENT}").get_attribute("value"))))
    return state


def _disagreement(dash_duo, engine) -> str:
    """'' when status, table note, table rows and regression agree with the controls."""
    state = _controls(dash_duo, engine)
    _, df = engine.volume(state["contrast"], state["model"], engine.subset(None))
    expected_status = engine.describe(state, df)
    status = dash_duo.find_element(f"#{ids.STATUS}").text
    if expected_status not in status or f"model {state['model']}" not in status:
        return f"status {status!r} for controls {state}"
    rows, note = views.table_rows(engine, state, with_rft=False, pending=False)
    shown_note = dash_duo.find_element(f"#{ids.CLUSTER_NOTE}").text
    if note.split(" · ")[0].split(". ")[0] not in shown_note:
        return f"note {shown_note!r}, expected {note!r}"
    labels = dash_duo.driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{ids.CLUSTER_TABLE} .ag-center-cols-container .ag-row'))"
        ".sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))"
        ".map(r => r.querySelector('[col-id=label]').textContent)")
    if labels != [r["label"] for r in rows][: len(labels)] or len(labels) != min(len(rows), len(labels)) or (rows and not labels):
        return f"table rows {labels[:3]} for expected {[r['label'] for r in rows][:3]}"
    return ""


def _settles_on_controls(dash_duo, engine) -> None:
    deadline = time.time() + TIMEOUT
    while (why := _disagreement(dash_duo, engine)) and time.time() < deadline:
        time.sleep(0.2)
    assert why == "", f"the page never agreed with its controls: {why}"
    time.sleep(4 * DELAY_S + 0.5)  # a late answer to an earlier request must not undo it
    assert _disagreement(dash_duo, engine) == ""


def test_ui020_model_then_direction_during_refit(dash_duo, slow_engine):
    start_sample(dash_duo, slow_engine)
    _radio(dash_duo, ids.MODEL, "subjects")
    _radio(dash_duo, ids.DIRECTION, "both")
    _settles_on_controls(dash_duo, slow_engine)
    assert "df 63" in dash_duo.find_element(f"#{ids.STATUS}").text
    no_console_errors(dash_duo)


def test_ui021_contrast_direction_contrast_in_a_burst(dash_duo, slow_engine):
    start_sample(dash_duo, slow_engine)
    _radio(dash_duo, ids.CONTRAST, "interaction")
    _radio(dash_duo, ids.DIRECTION, "neg")
    _radio(dash_duo, ids.CONTRAST, "nac")
    _radio(dash_duo, ids.DIRECTION, "pos")
    _radio(dash_duo, ids.CONTRAST, "placebo")
    _settles_on_controls(dash_duo, slow_engine)
    no_console_errors(dash_duo)


def test_ui022_threshold_extent_contrast_typed_fast(dash_duo, slow_engine):
    start_sample(dash_duo, slow_engine)
    set_input(dash_duo, f"#{ids.P_UNC}", 0.005)
    set_input(dash_duo, f"#{ids.EXTENT}", 50)
    _radio(dash_duo, ids.CONTRAST, "interaction")
    _settles_on_controls(dash_duo, slow_engine)
    no_console_errors(dash_duo)


def test_ui023_selected_cluster_never_outlives_its_contrast(dash_duo, slow_engine):
    start_sample(dash_duo, slow_engine)
    _radio(dash_duo, ids.CONTRAST, "interaction")
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_table_row(dash_duo, 0)
    set_input(dash_duo, f"#{ids.EXTENT}", 12)  # a request built on the state with the cluster...
    _radio(dash_duo, ids.CONTRAST, "nac")  # ...while the contrast changes
    _settles_on_controls(dash_duo, slow_engine)
    dash_duo.wait_for_contains_text(f"#{ids.SCATTER}", "Select a cluster", timeout=TIMEOUT)
    no_console_errors(dash_duo)


def test_ui024_a_long_request_shows_a_busy_state(dash_duo, slow_engine):
    start_sample(dash_duo, slow_engine)
    _settles_on_controls(dash_duo, slow_engine)
    _radio(dash_duo, ids.MODEL, "paired")  # > 0.4 s with the slowed engine
    dash_duo.wait_for_contains_text("body", "Computing…", timeout=TIMEOUT)
    _settles_on_controls(dash_duo, slow_engine)
    assert "Computing…" not in dash_duo.find_element("body").text
