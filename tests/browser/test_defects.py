"""Small things a new user met, each tried as the user did it."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from dashboard.app import Settings, create_app, ids
from tests.browser.helpers import (
    TIMEOUT,
    click_graph,
    click_radio,
    click_table_row,
    no_console_errors,
    set_input,
    settle,
    start_sample,
    wait_table_contains,
)
from tests.studies import write_tiny_study

pytestmark = pytest.mark.browser


def _feedback(dash_duo, input_id: str) -> str:
    return dash_duo.find_element(f"#{ids.feedback(input_id)}").text


@pytest.mark.parametrize("typed,reason", [("2", "between 0 and 1"), ("0", "between 0 and 1"), ("abc", "enter a number"), ("-1", "between 0 and 1")])
def test_ui030_invalid_p_is_marked_with_a_reason_and_not_used(dash_duo, sample_engine, typed, reason):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "T > 3.19", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.P_UNC}", typed)
    dash_duo._wait_for(lambda d: "is-invalid" in d.find_element("id", ids.P_UNC).get_attribute("class"), timeout=TIMEOUT,
                       msg="invalid p not marked")
    if typed != "abc":  # (a number input holds no text: the browser reports it empty)
        assert reason in _feedback(dash_duo, ids.P_UNC)
    assert "T > 3.19 (p < 0.001 unc.)" in dash_duo.find_element(f"#{ids.STATUS}").text  # the last valid threshold stays
    set_input(dash_duo, f"#{ids.P_UNC}", 0.005)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "p < 0.005", timeout=TIMEOUT)
    assert "is-invalid" not in dash_duo.find_element(f"#{ids.P_UNC}").get_attribute("class")


def test_ui031_t_taken_as_typed_and_switch_keeps_the_threshold(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "T > 3.19", timeout=TIMEOUT)
    dash_duo.find_element(f"#{ids.USE_T}").click()
    dash_duo._wait_for(lambda d: d.find_element("id", ids.T_VALUE).get_attribute("value") == "3.19", timeout=TIMEOUT,
                       msg="switching to T did not start at the current height")
    for typed in ("3.25", "3.71", "3.19"):
        set_input(dash_duo, f"#{ids.T_VALUE}", typed)
        dash_duo.wait_for_contains_text(f"#{ids.STATUS}", f"T > {typed}", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.T_VALUE}", 0)
    dash_duo._wait_for(lambda d: "is-invalid" in d.find_element("id", ids.T_VALUE).get_attribute("class"), timeout=TIMEOUT,
                       msg="T = 0 not marked invalid")
    assert "greater than 0" in _feedback(dash_duo, ids.T_VALUE)
    set_input(dash_duo, f"#{ids.EXTENT}", 2.5)
    dash_duo._wait_for(lambda d: "is-invalid" in d.find_element("id", ids.EXTENT).get_attribute("class"), timeout=TIMEOUT,
                       msg="k = 2.5 not marked invalid")
    no_console_errors(dash_duo)


def test_ui032_direction_labels_come_from_the_contrast(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    labels = lambda: dash_duo.find_element(f"#{ids.DIRECTION}").text  # noqa: E731
    assert "Cocaine cue, placebo > Neutral cue, placebo" in labels()
    click_radio(dash_duo, ids.CONTRAST, "interaction")
    dash_duo._wait_for(lambda d: "Cocaine cue, placebo + Neutral cue, N-AC > Neutral cue, placebo + Cocaine cue, N-AC" in labels(),
                       timeout=TIMEOUT, msg="direction labels did not follow the contrast")
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    assert "Cocaine cue, placebo + Neutral cue, N-AC >" in dash_duo.find_element(f"#{ids.CLUSTER_TABLE}").text


def test_ui033_no_cloud_buttons_and_no_nan_hover_in_compare(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_element(f"#{ids.SLICE_AXIAL} .modebar", timeout=TIMEOUT)
    titles = dash_duo.driver.execute_script("return Array.from(document.querySelectorAll('.modebar-btn')).map(b => b.getAttribute('data-title'))")
    assert titles and not [t for t in titles if t and ("Cloud" in t or "Chart Studio" in t)], titles
    dash_duo.driver.execute_script(
        "Array.from(document.querySelectorAll('.nav-link')).find(a => a.textContent.includes('Compare')).click()")
    dash_duo.wait_for_element(f"#{ids.COMPARE} .nsewdrag", timeout=TIMEOUT)
    settle(dash_duo)  # the tab's figures drawn and laid out before the pointer moves over them
    layer = dash_duo.find_element(f"#{ids.COMPARE} .nsewdrag")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", layer)
    ActionChains(dash_duo.driver).move_to_element(layer).move_by_offset(-layer.size["width"] // 2 + 3, -layer.size["height"] // 2 + 3).perform()
    hover = dash_duo.driver.execute_script("return Array.from(document.querySelectorAll('.hoverlayer')).map(h => h.textContent).join(' ')")
    assert "NaN" not in hover, hover


def test_ui034_click_outside_clusters_deselects_and_typed_peak_selects(dash_duo, sample_engine):
    dash_duo.driver.set_window_size(1920, 1080)
    start_sample(dash_duo, sample_engine)
    click_radio(dash_duo, ids.CONTRAST, "interaction")
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "Cluster at (14, 64, 14)", timeout=TIMEOUT)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", dash_duo.find_element(f"#{ids.SLICE_AXIAL}"))
    settle(dash_duo)  # the row's redraw finished: a click on a figure Plotly is replacing is lost
    click_graph(dash_duo, ids.SLICE_AXIAL, 0.25, 0.6)  # left, behind the centre: no interaction cluster there
    dash_duo.wait_for_contains_text(f"#{ids.SCATTER}", "Select a cluster", timeout=TIMEOUT)
    for cid, v in ((ids.POINT_X, 14), (ids.POINT_Y, 64), (ids.POINT_Z, 14)):
        set_input(dash_duo, f"#{cid}", v)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "Cluster at (14, 64, 14)", timeout=TIMEOUT)
    dash_duo._wait_for(lambda d: d.find_elements("css selector", f"#{ids.CLUSTER_TABLE} .ag-row-selected"), timeout=TIMEOUT,
                       msg="typing the peak did not select its table row")
    no_console_errors(dash_duo)


def test_ui035_group_maps_only_folder_says_what_does_not_apply(dash_duo, tmp_path):
    folder = write_tiny_study(tmp_path / "maps-only", with_images=False)
    dash_duo.start_server(create_app(Settings(results_dir=folder)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    models = dash_duo.find_element(f"#{ids.MODEL}").text
    assert "df -" not in models and "needs participant images" in models, models
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "group maps only", timeout=TIMEOUT)
    assert not dash_duo.find_element(f"#{ids.REG_NOTE}").is_displayed()
    no_console_errors(dash_duo)


def test_ui036_fwe_height_threshold(dash_duo, sample_engine):
    from dashboard.analysis import Threshold

    start_sample(dash_duo, sample_engine)
    from selenium.webdriver.support.ui import Select  # a dbc.Select is a native <select>

    Select(dash_duo.find_element(f"#{ids.P_KIND}")).select_by_value("fwe")
    table = sample_engine.analysis.clusters("placebo", threshold=Threshold(p_fwe=0.05), extent=10, label_atlas=None)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", f"T > {table.height:.2f} (p < 0.05 FWE)", timeout=TIMEOUT)
    assert dash_duo.find_element(f"#{ids.P_UNC}").get_attribute("value") == "0.05"  # SPM's default for FWE
    Select(dash_duo.find_element(f"#{ids.P_KIND}")).select_by_value("unc")
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "T > 3.19 (p < 0.001 unc.)", timeout=TIMEOUT)
    no_console_errors(dash_duo)


def test_ui037_small_volume_correction_in_the_app_is_the_cli_table(dash_duo, sample_engine):
    from dashboard.analysis import Threshold
    from dashboard.atlas import region_mask

    start_sample(dash_duo, sample_engine)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "16 clusters", timeout=TIMEOUT)
    from selenium.webdriver.common.keys import Keys

    dash_duo.find_element(f"#{ids.SVC_REGIONS}").click()  # open it and type the region's name, as with 120 regions
    box = dash_duo.driver.switch_to.active_element
    box.send_keys("Hippocampus_R")
    time.sleep(0.5)
    dash_duo.driver.switch_to.active_element.send_keys(Keys.ENTER)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "small-volume correction in Hippocampus_R", timeout=TIMEOUT)
    study = sample_engine.study
    svc = sample_engine.analysis.clusters("placebo", threshold=Threshold(p_unc=0.001), extent=10, label_atlas=None,
                                          svc_mask=region_mask(["Hippocampus_R"], study.shape, study.affine, "aal"))
    n = int(svc.table["cluster_id"].nunique())
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", f"{n} cluster", timeout=TIMEOUT)
    footer = lambda: dash_duo.driver.execute_script(f"return document.getElementById('{ids.CLUSTER_FOOTER}').textContent")  # noqa: E731
    dash_duo._wait_for(lambda d: "table shows 16 local maxima more than 4.0mm apart" in footer(), timeout=TIMEOUT,
                       msg="the SVC footer (16 maxima, 4 mm) is not shown")  # (folded: read its text, not what is displayed)
    assert "Degrees of freedom = [1.0, 84.0]" in footer()
    no_console_errors(dash_duo)
