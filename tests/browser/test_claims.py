"""The claim check tab: the sample's published table held against its maps in the page."""

from __future__ import annotations

import pytest

from dashboard.app import ids
from tests.browser.helpers import TIMEOUT, open_tab, set_input, settle, start_sample, view_state, wait_rows

pytestmark = pytest.mark.browser



def test_cl001_claim_check_of_the_published_table(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    open_tab(dash_duo, "Claim check")
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "19 of 21 peaks reproduced within 4 mm", timeout=TIMEOUT)
    rows = wait_rows(dash_duo, ids.CLAIM_GRID, 21)
    assert len(rows) >= 10  # the grid renders the rows in view
    text = dash_duo.find_element(f"#{ids.CLAIM_GRID}").text
    assert "inconsistent" in text and "T 4.76 and Z 4.61 disagree at df 84" in text
    assert dash_duo.find_elements(f"#{ids.CLAIM_GRID} .claim-inconsistent")
    # it follows the view: a stricter threshold loses clusters
    open_tab(dash_duo, "Explore")
    set_input(dash_duo, f"#{ids.EXTENT}", 200)
    open_tab(dash_duo, "Claim check")
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "1 of 21 peaks reproduced", timeout=TIMEOUT)
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_cl002_a_claim_row_click_moves_every_view(dash_duo, sample_engine):
    """Clicking a claim row sets the contrast control to the row's contrast, moves the
    cursor to its coordinate and selects the cluster there; the controls show that state."""
    start_sample(dash_duo, sample_engine)
    from tests.browser.helpers import click_radio, wait_table_contains

    click_radio(dash_duo, ids.CONTRAST, "nac")  # another contrast than the row's
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "cluster", timeout=TIMEOUT)
    settle(dash_duo)
    open_tab(dash_duo, "Claim check")
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "of 21 peaks", timeout=TIMEOUT)
    wait_rows(dash_duo, ids.CLAIM_GRID, 5)
    # row 2 of the published table: placebo, right hippocampus (30, -34, -4)
    cell = dash_duo.find_element(f"#{ids.CLAIM_GRID} .ag-row[row-id='2'] .ag-cell[col-id='x']")
    assert cell.text == "30"
    cell.click()
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_GOTO_NOTE}", "(30, -34, -4)", timeout=TIMEOUT)
    settle(dash_duo)
    # the Explore tab's views (hidden while this tab is shown) are at the row's coordinate
    point_text = dash_duo.driver.execute_script("return document.getElementById(arguments[0]).textContent", ids.POINT_TEXT)
    assert point_text.startswith("MNI (30, -34, -4) · T = "), point_text
    assert dash_duo.find_element(f"#{ids.CONTRAST} input[value='placebo']").is_selected()
    state = view_state(dash_duo)
    assert state["contrast"] == "placebo" and state["point"] == [30, -34, -4]
    assert state["cluster"] is not None and state["cluster"]["direction"] == "pos"
    # the selected cluster's row is the one selected in the cluster table, on placebo's table
    wait_table_contains(dash_duo, "30 -34 -4")
    selected = dash_duo.find_elements(f"#{ids.CLUSTER_TABLE} .ag-center-cols-container .ag-row-selected")
    assert selected, "no cluster-table row selected"
    peak = state["cluster"]["peak"]
    assert f"{peak[0]:g} {peak[1]:g} {peak[2]:g}" in selected[0].text
    assert dash_duo.get_logs() == []


def test_cl003_fast_clicks_on_claim_rows_end_on_the_last_row(dash_duo, sample_engine):
    """Three rows of different contrasts clicked in quick succession: what stays on the
    page is the last row's contrast, point and cluster, with the controls showing it."""
    import pandas as pd

    from tests.conftest import SAMPLE

    table = pd.read_csv(SAMPLE / "tables" / "published_clusters.tsv", sep="\t", keep_default_na=False)
    nac = next(i for i, c in enumerate(table["contrast"]) if c.startswith("nac"))
    start_sample(dash_duo, sample_engine)
    open_tab(dash_duo, "Claim check")
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "of 21 peaks", timeout=TIMEOUT)
    wait_rows(dash_duo, ids.CLAIM_GRID, 10)
    for row in (2, nac, 0):
        dash_duo.driver.execute_script(
            "document.querySelector(`#${arguments[0]} .ag-row[row-id='${arguments[1]}'] .ag-cell[col-id='x']`).click()", ids.CLAIM_GRID, str(row))
    last = table.iloc[0]
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_GOTO_NOTE}", f"({last['x']:g}, {last['y']:g}, {last['z']:g})", timeout=TIMEOUT)
    settle(dash_duo)
    state = view_state(dash_duo)
    assert state["contrast"] == "placebo" and state["point"] == [float(last["x"]), float(last["y"]), float(last["z"])]
    assert dash_duo.find_element(f"#{ids.CONTRAST} input[value='placebo']").is_selected()
    assert state["cluster"] is not None
    assert dash_duo.get_logs() == []
