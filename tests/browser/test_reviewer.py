"""The reviewer's views in the page: each participant's influence on a cluster's
regression, leave-one-out cluster survival, literature peaks, cross-contrast correspondence."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.app import ids
from dashboard.stats.influence import influence
from tests.browser.helpers import (
    TIMEOUT,
    choose_contrast,
    click_table_row,
    js_click,
    no_console_errors,
    settle,
    start_sample,
    view_state,
    wait_rows,
    wait_table_contains,
)

pytestmark = pytest.mark.browser
INTERACTION = "Cue reactivity reduced by N-AC (placebo > N-AC)"


def _grid_cell(dash_duo, grid: str, row_id: str, col: str) -> str:
    return dash_duo.driver.execute_script(
        "const c = document.querySelector(`#${arguments[0]} .ag-row[row-id='${arguments[1]}'] .ag-cell[col-id='${arguments[2]}']`);"
        "return c ? c.textContent : null;", grid, row_id, col)


def test_rv001_influence_bars_and_columns_follow_the_selected_cluster(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    choose_contrast(dash_duo, INTERACTION)
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.INFLUENCE_NOTE}", "changes the OLS slope most", timeout=TIMEOUT)
    settle(dash_duo)
    # what the page says is the influence of the regression it shows, computed here independently
    state = view_state(dash_duo)
    outcome = sample_engine.regression(state)
    frame = outcome.participants
    inf = influence(frame["covariate"].to_numpy(float), frame["value"].to_numpy(float))
    most = str(frame["participant_id"].iloc[inf.most_influential])
    note = dash_duo.find_element(f"#{ids.INFLUENCE_NOTE}").text
    assert note.startswith(f"Leaving out {most} changes the OLS slope most"), note
    # one bar per participant with values, in the figure
    bars = dash_duo.find_elements(f"#{ids.INFLUENCE} .barlayer .point")
    assert len(bars) == int(np.isfinite(inf.loo_slope).sum())
    # the participant grid gained the influence columns for every participant of the fit
    wait_rows(dash_duo, ids.PARTICIPANT_GRID, 5)
    i = inf.most_influential
    cooks = _grid_cell(dash_duo, ids.PARTICIPANT_GRID, most, "influence:cooks")
    assert cooks is not None and abs(float(cooks) - inf.cooks_distance[i]) < 1e-3, cooks
    dslope = _grid_cell(dash_duo, ids.PARTICIPANT_GRID, most, "influence:dslope_ols")
    assert abs(float(dslope) - (inf.loo_slope[i] - inf.slope)) < 1e-3, dslope
    # refreshing the grid's rows kept everyone selected (the subset did not change)
    assert dash_duo.find_element(f"#{ids.INCLUDED_COUNT}").text == "22 of 22 included"
    assert len(view_state(dash_duo)["participants"]) == 22
    # excluding the most influential participant refits; the influence follows the new fit
    js_click(dash_duo, f"#{ids.PARTICIPANT_GRID} .ag-row[row-id='{most}'] .ag-selection-checkbox input")
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "21 of 22 included", timeout=TIMEOUT)
    dash_duo._wait_for(lambda d: _grid_cell(dash_duo, ids.PARTICIPANT_GRID, most, "influence:cooks") == "",
                       timeout=TIMEOUT, msg="the left-out participant kept influence values")
    no_console_errors(dash_duo)
