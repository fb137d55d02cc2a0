"""The reviewer's views in the page: each participant's influence on a cluster's
regression, leave-one-out cluster survival, literature peaks, cross-contrast correspondence."""

from __future__ import annotations

import time

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
    open_tab,
    settle,
    start_sample,
    view_state,
    wait_rows,
    wait_table_contains,
)

pytestmark = pytest.mark.browser
INTERACTION = "Cue reactivity reduced by N-AC (placebo > N-AC)"


def _grid_cell(dash_duo, grid: str, row_id: str, col: str) -> str:
    """The text of a grid cell, its column scrolled into view (AG Grid renders only the
    columns in view)."""
    dash_duo.driver.execute_script("dash_ag_grid.getApi(arguments[0]).ensureColumnVisible(arguments[1]);", grid, col)
    time.sleep(0.3)  # rendered in the next frames
    return dash_duo.driver.execute_script(
        "const c = document.querySelector(`#${arguments[0]} .ag-row[row-id='${arguments[1]}'] .ag-cell[col-id='${arguments[2]}']`);"
        "return c ? c.textContent : null;", grid, row_id, col)


def test_rv001_influence_bars_and_columns_follow_the_selected_cluster(dash_duo, sample_engine):
    _start_interaction_cluster(dash_duo, sample_engine)
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
    r2 = _grid_cell(dash_duo, ids.PARTICIPANT_GRID, most, "influence:r2")
    assert abs(float(r2) - inf.loo_r_squared[i]) < 1e-3, r2
    # refreshing the grid's rows kept everyone selected (the subset did not change)
    assert dash_duo.find_element(f"#{ids.INCLUDED_COUNT}").text == "22 of 22 included"
    assert len(view_state(dash_duo)["participants"]) == 22
    # excluding the most influential participant refits; the influence follows the new fit
    dash_duo.driver.execute_script("const api = dash_ag_grid.getApi(arguments[0]);"
                                   "api.ensureColumnVisible(api.getAllDisplayedColumns().find(c => !c.isPinned()));"
                                   "api.ensureNodeVisible(api.getRowNode(arguments[1]), 'middle');", ids.PARTICIPANT_GRID, most)
    time.sleep(0.3)
    js_click(dash_duo, f"#{ids.PARTICIPANT_GRID} .ag-row[row-id='{most}'] .ag-selection-checkbox input")
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "21 of 22 included", timeout=TIMEOUT)
    dash_duo._wait_for(lambda d: _grid_cell(dash_duo, ids.PARTICIPANT_GRID, most, "influence:cooks") == "",
                       timeout=TIMEOUT, msg="the left-out participant kept influence values")
    no_console_errors(dash_duo)


def _start_interaction_cluster(dash_duo, sample_engine) -> dict:
    start_sample(dash_duo, sample_engine)
    choose_contrast(dash_duo, INTERACTION)
    wait_table_contains(dash_duo, "Frontal_Sup_Medial_R")
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "voxels", timeout=TIMEOUT)
    settle(dash_duo)
    return view_state(dash_duo)


def test_rv002_leave_one_out_survival_runs_in_the_background(dash_duo, sample_engine):
    """The leave-one-out job shows progress from its first second, leaves the page usable,
    and its table is what dashboard.survival computes; asked again, it answers from the cache."""
    from dashboard.survival import leave_one_out

    state = _start_interaction_cluster(dash_duo, sample_engine)
    assert dash_duo.find_element(f"#{ids.SURVIVAL_STALE}").text.startswith("Run it for the selected cluster")
    js_click(dash_duo, f"#{ids.SURVIVAL_RUN}")
    t0 = time.perf_counter()
    dash_duo._wait_for(lambda d: "of 22 refits" in dash_duo.find_element(f"#{ids.SURVIVAL_PROGRESS}").text, timeout=5,
                       msg="no progress shown")
    first_progress = time.perf_counter() - t0
    assert first_progress < 2.0, first_progress
    assert dash_duo.find_element(f"#{ids.SURVIVAL_RUN}").get_attribute("disabled") is not None
    # the page stays usable while the job runs: a threshold change is answered meanwhile
    from tests.browser.helpers import set_input

    set_input(dash_duo, f"#{ids.EXTENT}", 11)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "≥ 11 voxels", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.SURVIVAL_STALE}", "Run it for the selected cluster", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.EXTENT}", 10)
    dash_duo.wait_for_contains_text(f"#{ids.SURVIVAL_SUMMARY}", "leave-outs", timeout=30)
    rows = wait_rows(dash_duo, ids.SURVIVAL_GRID, 5)
    assert rows
    # the table is leave_one_out's, computed here
    expected = leave_one_out(sample_engine.analysis, "interaction", tuple(state["cluster"]["peak"]), direction="pos",
                             threshold=sample_engine.threshold(state), extent=10, participants=tuple(state["participants"]))
    summary = dash_duo.find_element(f"#{ids.SURVIVAL_SUMMARY}").text
    assert expected.summary["text"] in summary, summary
    first = expected.frame.iloc[0]
    shown = _grid_cell(dash_duo, ids.SURVIVAL_GRID, str(first["participant_id"]), "k")
    assert shown == str(int(first["k"])), shown
    assert len(dash_duo.find_elements(f"#{ids.SURVIVAL_FIGURE} .scatterlayer .point")) == 2 * len(expected.frame)
    # asked again (another click, same question): from the cache, at once
    js_click(dash_duo, f"#{ids.SURVIVAL_RUN}")
    t0 = time.perf_counter()
    settle(dash_duo)
    assert time.perf_counter() - t0 < 3.0
    assert expected.summary["text"] in dash_duo.find_element(f"#{ids.SURVIVAL_SUMMARY}").text
    no_console_errors(dash_duo)


def test_rv003_leave_one_out_can_be_cancelled(dash_duo, sample_engine):
    _start_interaction_cluster(dash_duo, sample_engine)
    from tests.browser.helpers import set_input

    set_input(dash_duo, f"#{ids.EXTENT}", 12)  # a question not cached by another test
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "≥ 12 voxels", timeout=TIMEOUT)
    settle(dash_duo)
    js_click(dash_duo, f"#{ids.SURVIVAL_RUN}")
    dash_duo._wait_for(lambda d: "of 22 refits" in dash_duo.find_element(f"#{ids.SURVIVAL_PROGRESS}").text, timeout=5,
                       msg="no progress shown")
    js_click(dash_duo, f"#{ids.SURVIVAL_CANCEL}")
    dash_duo._wait_for(lambda d: dash_duo.find_element(f"#{ids.SURVIVAL_RUN}").get_attribute("disabled") is None, timeout=TIMEOUT,
                       msg="the run button stayed disabled after cancel")
    assert not dash_duo.find_element(f"#{ids.SURVIVAL_PROGRESS_WRAP}").is_displayed()
    assert not dash_duo.find_element(f"#{ids.SURVIVAL_RESULT}").is_displayed()
    no_console_errors(dash_duo)


def test_rv004_correspondence_table_and_pair_outlines(dash_duo, sample_engine):
    """The compare tab lists, for every cluster of the contrast, the overlapping clusters of
    the others (dashboard.correspondence at the view's threshold); a row click outlines both."""
    from dashboard.analysis import Threshold
    from dashboard.correspondence import correspondence

    start_sample(dash_duo, sample_engine)
    open_tab(dash_duo, "Compare contrasts")
    dash_duo.wait_for_contains_text(f"#{ids.CORR_SUMMARY}", "clusters of this contrast overlap", timeout=TIMEOUT)
    expected = correspondence(sample_engine.analysis, "placebo", threshold=Threshold(p_unc=0.001), extent=10)
    pairs = expected.dropna(subset=["other_contrast"])
    n_clusters = len(expected.drop_duplicates(["direction", "cluster_id"]))
    n_shared = len(pairs.drop_duplicates(["direction", "cluster_id"]))
    assert dash_duo.find_element(f"#{ids.CORR_SUMMARY}").text.startswith(f"{n_shared} of {n_clusters} clusters"), \
        dash_duo.find_element(f"#{ids.CORR_SUMMARY}").text
    wait_rows(dash_duo, ids.CORR_GRID, 3)
    best = pairs.sort_values("dice", ascending=False).iloc[0]
    row_id = (f"{best['direction']}|{best['x']:g}|{best['y']:g}|{best['z']:g}|{best['other_contrast']}|{best['other_direction']}|"
              f"{best['other_x']}|{best['other_y']}|{best['other_z']}")
    assert _grid_cell(dash_duo, ids.CORR_GRID, row_id, "common_voxels") == str(int(best["common_voxels"]))
    assert _grid_cell(dash_duo, ids.CORR_GRID, row_id, "dice") == f"{best['dice']:.3f}".rstrip("0").rstrip(".")
    before = len(dash_duo.find_elements(f"#{ids.COMPARE} path[style*='rgb(231, 41, 138)']"))
    assert before == 0
    js_click(dash_duo, f"#{ids.CORR_GRID} .ag-row[row-id='{row_id}'] .ag-cell[col-id='dice']")
    # both clusters outlined: green (this contrast's) and magenta (the other's), on the glass brains
    dash_duo._wait_for(lambda d: len(d.find_elements("css selector", f"#{ids.COMPARE} .shapelayer path[style*='rgb(231, 41, 138)']")) >= 3,
                       timeout=TIMEOUT, msg="the other contrast's cluster is not outlined")
    assert len(dash_duo.find_elements(f"#{ids.COMPARE} .shapelayer path[style*='rgb(44, 160, 44)']")) >= 3
    no_console_errors(dash_duo)


def test_rv005_literature_peaks_marked_with_distances(dash_duo, sample_engine):
    """A peak table of other studies, switched on: markers on the glass brain (every peak,
    in each projection) and on the slices (those within the slab of the slice), the
    distance table (dashboard.claims.peak_distances at the view), and a row click moves
    the cursor to that peak."""
    import pandas as pd

    from dashboard.analysis import Threshold
    from dashboard.claims import peak_distances
    from dashboard.figures import MARKER_SLAB_MM

    start_sample(dash_duo, sample_engine)
    table = pd.read_csv("sample_results/tables/literature_peaks.tsv", sep="\t")
    dash_duo.find_element(f"#{ids.PEAK_LAYERS} input[value='literature_peaks']").click()

    def markers(graph: str) -> int:
        return int(dash_duo.driver.execute_script(
            "return Array.from(document.querySelectorAll(`#${arguments[0]} .annotation-text`)).filter(t => t.textContent === '◆').length",
            graph))

    dash_duo._wait_for(lambda d: markers(ids.GLASS_BRAIN) == 3 * len(table), timeout=TIMEOUT, msg="glass-brain markers")
    state = view_state(dash_duo)
    for axis, graph in enumerate(ids.SLICES):
        expected = int((abs(table["xyz"[axis]] - state["point"][axis]) <= MARKER_SLAB_MM).sum())
        assert markers(graph) == expected, (graph, markers(graph), expected)
    # the distance table is peak_distances at the view's threshold and contrast
    js_click(dash_duo, f"#{ids.PEAK_DETAILS} summary")
    wait_rows(dash_duo, ids.PEAK_GRID, 3)
    got = peak_distances(sample_engine.analysis, table, contrast=state["contrast"], directions=("pos",), threshold=Threshold(p_unc=0.001),
                         extent=10)
    inside = int((got["nearest_cluster_mm"] == 0).sum())
    dash_duo.wait_for_contains_text(f"#{ids.PEAK_SUMMARY}", f"{len(table)} peaks: {inside} inside a listed cluster", timeout=TIMEOUT)
    shown = _grid_cell(dash_duo, ids.PEAK_GRID, "literature_peaks|0", "nearest_cluster_mm")
    assert shown == f"{got['nearest_cluster_mm'].iloc[0]:.1f}".rstrip("0").rstrip("."), shown
    # a row click sends the cursor to the peak (snapped to the grid), markers follow the slices
    js_click(dash_duo, f"#{ids.PEAK_GRID} .ag-row[row-id='literature_peaks|1'] .ag-cell[col-id='x']")
    x, y, z = (float(v) for v in table.loc[1, ["x", "y", "z"]])
    dash_duo._wait_for(lambda d: all(abs(a - b) <= 1.0 for a, b in zip(view_state(dash_duo)["point"], (x, y, z), strict=True)),
                       timeout=TIMEOUT, msg="the cursor did not go to the peak")
    settle(dash_duo)
    point = view_state(dash_duo)["point"]
    for axis, graph in enumerate(ids.SLICES):
        expected = int((abs(table["xyz"[axis]] - point[axis]) <= MARKER_SLAB_MM).sum())
        dash_duo._wait_for(lambda d, g=graph, e=expected: markers(g) == e, timeout=TIMEOUT, msg=f"{graph} markers")
    # switched off: no markers left
    dash_duo.find_element(f"#{ids.PEAK_LAYERS} input[value='literature_peaks']").click()
    dash_duo._wait_for(lambda d: markers(ids.GLASS_BRAIN) == 0 and all(markers(g) == 0 for g in ids.SLICES), timeout=TIMEOUT,
                       msg="markers left after switching off")
    no_console_errors(dash_duo)
