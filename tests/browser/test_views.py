"""Glass brain + slices, cluster table, regression, participants, compare view."""

from __future__ import annotations

import re

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboard.app import ids
from dashboard.app import state as st
from tests.browser.helpers import (
    TIMEOUT,
    choose_contrast,
    click_graph,
    click_table_row,
    js_click,
    no_console_errors,
    quick_filter_selector,
    set_input,
    start_sample,
    table_text,
    wait_rows,
    wait_table_contains,
)

pytestmark = pytest.mark.browser
INTERACTION = "Cue reactivity reduced by N-AC (placebo > N-AC)"


def _point_text(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.POINT_TEXT}").text


def test_ui010_slices_follow_inputs_and_clicks(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_element(f"#{ids.SLICE_AXIAL} .main-svg", timeout=TIMEOUT)
    # the cursor starts at the global maximum of the first contrast's map
    start = st.default_state(sample_engine.study)["point"]
    vol0, _ = sample_engine.volume(st.default_state(sample_engine.study)["contrast"], "cells", sample_engine.subset(None))
    assert float(np.nanmax(vol0)) == pytest.approx(float(vol0[sample_engine.grid.index_of(tuple(start))]))
    x0, y0, z0 = (f"{v:g}" for v in start)
    dash_duo.wait_for_contains_text(f"#{ids.POINT_TEXT}", f"MNI ({x0}, {y0}, {z0})", timeout=TIMEOUT)
    # number inputs move the cursor; the slice titles follow
    set_input(dash_duo, f"#{ids.POINT_X}", 14)
    dash_duo.wait_for_contains_text(f"#{ids.SLICE_SAGITTAL}", "x = 14", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.POINT_Z}", -6.6)  # snapped to the 2 mm grid
    dash_duo.wait_for_contains_text(f"#{ids.POINT_TEXT}", f"MNI (14, {y0}, -6)", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.SLICE_AXIAL}", "z = -6", timeout=TIMEOUT)
    # a click on the axial slice moves x and y (not z)
    click_graph(dash_duo, ids.SLICE_AXIAL, 0.3, 0.3)
    dash_duo._wait_for(lambda d: f"MNI (14, {y0}, -6)" not in _point_text(dash_duo), timeout=TIMEOUT, msg="click did not move the point")
    text = _point_text(dash_duo)
    assert text.endswith(("-6)", "T")) or ", -6)" in text, text
    x = float(dash_duo.find_element(f"#{ids.POINT_X}").get_attribute("value"))
    assert x < 0, "left of the axial view is left (negative x)"
    # hovering a slice shows MNI coordinates and T under the pointer: the T the server
    # computed at that voxel (the browser looks it up in the hover values)
    state = st.default_state(sample_engine.study)
    vol, _ = sample_engine.volume(state["contrast"], state["model"], sample_engine.subset(None))
    layer = dash_duo.find_element(f"#{ids.SLICE_CORONAL} .nsewdrag")
    ActionChains(dash_duo.driver).move_to_element(layer).move_by_offset(3, 3).perform()
    tip = f"#{ids.tooltip(ids.SLICE_CORONAL)}"
    dash_duo.wait_for_contains_text(tip, "T = ", timeout=TIMEOUT)
    y = dash_duo.find_element(f"#{ids.POINT_Y}").get_attribute("value")
    xyz, t = _tooltip_point(dash_duo.find_element(tip).text)
    assert xyz[1] == float(y)  # the coronal slice's own y
    assert t == pytest.approx(float(vol[sample_engine.grid.index_of(xyz)]), abs=0.006)
    # the glass brain: the signed maximum along the projection (here the axial panel)
    layer = dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.GLASS_BRAIN} .nsewdrag")[2]
    ActionChains(dash_duo.driver).move_to_element(layer).move_by_offset(5, -20).perform()
    tip = f"#{ids.tooltip(ids.GLASS_BRAIN)}"
    dash_duo.wait_for_contains_text(tip, "along z", timeout=TIMEOUT)
    text = dash_duo.find_element(tip).text
    x, y = (float(v) for v in re.findall(r"[xy] = (-?[\d.]+)", text))
    i, j, _ = sample_engine.grid.index_of((x, y, 0.0))
    ray = vol[i, j, :]
    expected = ray[np.nanargmax(np.abs(ray))]
    assert float(re.search(r"T = (-?[\d.]+)", text).group(1)) == pytest.approx(float(expected), abs=0.006)
    # a click on the glass brain moves the point too
    before = _point_text(dash_duo)
    click_graph(dash_duo, ids.GLASS_BRAIN, 0.5, 0.5)
    dash_duo._wait_for(lambda d: _point_text(dash_duo) != before, timeout=TIMEOUT, msg="glass brain click did not move the point")
    assert "T = " in _point_text(dash_duo) or "outside" in _point_text(dash_duo)
    no_console_errors(dash_duo)


def _tooltip_point(text: str) -> tuple[tuple[float, float, float], float]:
    """((x, y, z), T) from a slice tooltip 'MNI (x, y, z)\nT = v'."""
    m = re.search(r"MNI \((-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\)\s*T = (-?[\d.]+)", text)
    assert m, text
    return (float(m.group(1)), float(m.group(2)), float(m.group(3))), float(m.group(4))


def test_ui011_table_row_moves_views_and_outlines_cluster(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    choose_contrast(dash_duo, INTERACTION)
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    assert "4.57" in table_text(dash_duo)  # peak T, 2 decimals
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.POINT_TEXT}", "MNI (14, 64, 14) · T = 4.57", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.SLICE_SAGITTAL}", "x = 14", timeout=TIMEOUT)
    assert dash_duo.find_element(f"#{ids.POINT_Y}").get_attribute("value") == "64"
    # the selected cluster is outlined in every slice (a path shape drawn by plotly)
    js = ("const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
          "return !!gd && (gd.layout.shapes || []).some(s => s.name === 'selected cluster') && "
          "gd.querySelectorAll('.shapelayer path').length >= 3;")
    for sid in ids.SLICES:
        dash_duo._wait_for(lambda d, sid=sid: d.execute_script(js, sid), timeout=TIMEOUT, msg=f"no cluster outline in {sid}")
    no_console_errors(dash_duo)


def test_ui012_regression_for_selected_cluster(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_contains_text(f"#{ids.SCATTER}", "Select a cluster", timeout=TIMEOUT)
    choose_contrast(dash_duo, INTERACTION)
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "0.13", timeout=TIMEOUT)
    stats = dash_duo.find_element(f"#{ids.REG_STATS}").text
    assert "-0.44" in stats and "0.45" in stats and "21 of 22" in stats, stats
    assert "Circularity" in dash_duo.find_element(f"#{ids.REG_NOTE}").text
    # LTS down-weighted participant drawn as a red x; both lines in the legend
    legend = dash_duo.find_element(f"#{ids.SCATTER} .legend").text
    assert "LTS" in legend and "OLS" in legend and "down-weighted" in legend, legend
    no_console_errors(dash_duo)


def test_ui013_excluding_a_participant_changes_count_and_table(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "22 of 22 included", timeout=TIMEOUT)
    wait_rows(dash_duo, ids.CLUSTER_TABLE)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "16 clusters", timeout=TIMEOUT)
    before = table_text(dash_duo)
    wait_rows(dash_duo, ids.PARTICIPANT_GRID, 5)
    js_click(dash_duo, f"#{ids.PARTICIPANT_GRID} .ag-row[row-id='sub-01'] .ag-selection-checkbox input")
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "21 of 22 included", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 80", timeout=TIMEOUT)
    dash_duo._wait_for(lambda d: table_text(dash_duo) != before, timeout=TIMEOUT, msg="cluster table did not change")
    # RFT p-values come back after re-estimation
    dash_duo._wait_for(lambda d: "re-estimating" not in dash_duo.find_element(f"#{ids.CLUSTER_NOTE}").text, timeout=TIMEOUT,
                       msg="RFT p-values never came back")
    no_console_errors(dash_duo)


def test_ui014_scatter_click_offers_exclusion(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    choose_contrast(dash_duo, INTERACTION)
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "0.13", timeout=TIMEOUT)
    # click the LTS outlier (red x)
    point = dash_duo.find_elements(f"#{ids.SCATTER} .scatterlayer .trace:nth-of-type(2) .point")[0]
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", point)
    ActionChains(dash_duo.driver).move_to_element(point).click().perform()
    dash_duo.wait_for_contains_text(f"#{ids.EXCLUDE_BUTTON}", "Exclude sub-10", timeout=TIMEOUT)
    dash_duo.wait_for_element(f"#{ids.PARTICIPANT_GRID} .ag-row.participant-highlight", timeout=TIMEOUT)
    js_click(dash_duo, f"#{ids.EXCLUDE_BUTTON}")
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "21 of 22 included", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "of 21", timeout=TIMEOUT)
    no_console_errors(dash_duo)


def test_ui015_quick_filter_subsets_participants(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "22 of 22 included", timeout=TIMEOUT)
    js_click(dash_duo, f"{quick_filter_selector('route')} input[value='inhaled']")  # untick inhaled users (3)
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "19 of 22 included", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "19 of 22 participants", timeout=TIMEOUT)
    js_click(dash_duo, f"#{ids.RESET_PARTICIPANTS}")
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "22 of 22 included", timeout=TIMEOUT)
    no_console_errors(dash_duo)


def test_ui016_compare_tab_shows_three_contrasts(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.find_element(f"#{ids.TABS} a.nav-link:not(.active)").click()
    dash_duo.wait_for_contains_text(f"#{ids.COMPARE_STATUS}", "same threshold and colour scale", timeout=TIMEOUT)
    dash_duo.wait_for_element(f"#{ids.COMPARE} .main-svg", timeout=TIMEOUT)
    text = dash_duo.find_element(f"#{ids.COMPARE}").text
    for label in ("Cocaine > neutral cues, placebo", "Cocaine > neutral cues, N-AC", INTERACTION):
        assert label in text, text
    no_console_errors(dash_duo)
