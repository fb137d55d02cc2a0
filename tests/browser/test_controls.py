"""Controls: contrast, direction, threshold (p or T), extent, model; status text."""

from __future__ import annotations

import pytest

from dashboard.app import Settings, create_app, ids
from tests.browser.helpers import (
    TIMEOUT,
    choose_contrast,
    click_radio,
    no_console_errors,
    set_input,
    start_sample,
    wait_rows,
    wait_table_contains,
)
from tests.studies import write_tiny_study

pytestmark = pytest.mark.browser


def test_ui001_threshold_controls_update_status_and_table(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 84 · T > 3.19 (p < 0.001 unc.)", timeout=TIMEOUT)
    wait_rows(dash_duo, ids.CLUSTER_TABLE)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "16 clusters", timeout=TIMEOUT)
    # switch to a T threshold
    dash_duo.find_element(f"#{ids.USE_T}").click()
    set_input(dash_duo, f"#{ids.T_VALUE}", 4.5)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "T > 4.50", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "T > 4.50", timeout=TIMEOUT)
    # extent, contrast and direction all reach the table
    set_input(dash_duo, f"#{ids.EXTENT}", 1000)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "0 clusters of ≥ 1000 voxels", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.EXTENT}", 10)
    dash_duo.find_element(f"#{ids.USE_T}").click()  # back to p < 0.001
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "T > 3.19", timeout=TIMEOUT)
    choose_contrast(dash_duo, "Cue reactivity reduced by N-AC (placebo > N-AC)")
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "1 cluster of", timeout=TIMEOUT)
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_radio(dash_duo, ids.DIRECTION, "neg")
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "0 clusters of", timeout=TIMEOUT)
    no_console_errors(dash_duo)


def test_ui002_model_switch_changes_df(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    click_radio(dash_duo, ids.MODEL, "paired")
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    click_radio(dash_duo, ids.MODEL, "cells")
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 84", timeout=TIMEOUT)
    no_console_errors(dash_duo)


def test_ui003_model_disabled_without_participant_images(dash_duo, tmp_path):
    folder = write_tiny_study(tmp_path / "maps-only", with_images=False)
    app = create_app(Settings(results_dir=folder))
    dash_duo.start_server(app)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    for value in ("subjects", "paired"):
        assert dash_duo.find_element(f"#{ids.MODEL} input[value='{value}']").get_attribute("disabled") is not None
    assert dash_duo.find_element(f"#{ids.MODEL} input[value='cells']").get_attribute("disabled") is None
    dash_duo.wait_for_contains_text(f"#{ids.SCATTER}", "Needs participant images", timeout=TIMEOUT)
    no_console_errors(dash_duo)
