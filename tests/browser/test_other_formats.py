"""The app on folders other analysis packages wrote: an SPM12 second-level folder (real,
tests/data/spm_folders) and a plain folder of statistic maps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dashboard.app import Settings, create_app, ids
from tests.browser.helpers import TIMEOUT, click_radio, set_input, settle, table_text, wait_table_contains
from tests.conftest import SAMPLE

pytestmark = pytest.mark.browser

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders" / "ff_cells"


def _spm_rows(name: str) -> list[list]:
    return json.loads((SPM / "spm_tables" / name).read_text())["TabDat"]["dat"]


def test_of001_spm_folder_t_and_f_tables_are_spms(dash_duo):
    dash_duo.start_server(create_app(Settings(results_dir=SPM, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 84 · T > 3.19 (p < 0.001 unc.)", timeout=TIMEOUT)
    assert "22 of 22 participants · the folder's design, as estimated" in dash_duo.find_element(f"#{ids.STATUS}").text
    set_input(dash_duo, f"#{ids.EXTENT}", 0)
    first = _spm_rows("0001_p0.001_k0.json")[0]
    wait_table_contains(dash_duo, f"{first[8]:.2f}")
    text = table_text(dash_duo)
    assert f"{first[9]:.2f}" in text  # SPM's equivalent Z
    # the F contrast: SPM's F conventions (df [2, 84], Z from the F p-value)
    click_radio(dash_duo, ids.CONTRAST, "4")
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df [2, 84] · F > 7.51 (p < 0.001 unc.)", timeout=TIMEOUT)
    f_first = _spm_rows("0004_p0.001_k0.json")[0]
    wait_table_contains(dash_duo, f"{f_first[8]:.2f}")
    assert f"{f_first[9]:.2f}" in table_text(dash_duo)
    labels = dash_duo.find_element(f"#{ids.DIRECTION}").text
    assert "F: cue effect, placebo or N-AC" in labels
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_of002_plain_statistic_maps(dash_duo, tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    for c in ("placebo", "interaction"):
        stem = f"task-cue_contrast-{c}_stat-t_statmap"
        shutil.copy(SAMPLE / "group" / f"{stem}.nii.gz", folder / f"{stem}.nii.gz")
        shutil.copy(SAMPLE / "group" / f"{stem}.json", folder / f"{stem}.json")
    shutil.copy(SAMPLE / "group" / "task-cue_desc-brain_mask.nii.gz", folder / "brain_mask.nii.gz")
    dash_duo.start_server(create_app(Settings(results_dir=folder, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 84 · T > 3.19", timeout=TIMEOUT)
    contrasts = dash_duo.find_element(f"#{ids.CONTRAST}").text
    assert "Cocaine > neutral cues, placebo (synthetic sample)" in contrasts  # the sidecars' Description
    wait_table_contains(dash_duo, "Frontal")  # a labelled cluster of the sample
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_of003_spm_design_refits_a_participant_subset(dash_duo):
    """Participants of an SPM design come from its images' paths; excluding one refits the
    design's rows (df 21 -> 20) and re-estimates the RFT smoothness."""
    from tests.browser.helpers import js_click, wait_rows

    dash_duo.start_server(create_app(Settings(results_dir=SPM.parent / "onesample", warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21 · T > 3.53", timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "22 of 22 included", timeout=TIMEOUT)
    wait_rows(dash_duo, ids.CLUSTER_TABLE)
    before = table_text(dash_duo)
    wait_rows(dash_duo, ids.PARTICIPANT_GRID, 5)
    js_click(dash_duo, f"#{ids.PARTICIPANT_GRID} .ag-row[row-id='sub-01'] .ag-selection-checkbox input")
    dash_duo.wait_for_text_to_equal(f"#{ids.INCLUDED_COUNT}", "21 of 22 included", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20 · T > 3.55", timeout=TIMEOUT)
    dash_duo._wait_for(lambda d: table_text(dash_duo) != before, timeout=TIMEOUT, msg="cluster table did not change")
    dash_duo._wait_for(lambda d: "re-estimating" not in dash_duo.find_element(f"#{ids.CLUSTER_NOTE}").text, timeout=TIMEOUT,
                       msg="RFT p-values never came back")
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_of004_spm_design_cluster_values_regressed_on_its_covariate(dash_duo):
    """The regression panel on an SPM design: its condition column ("mean"), its covariate
    (SPM.xC), values from the design's images."""
    from tests.browser.helpers import click_table_row

    dash_duo.start_server(create_app(Settings(results_dir=SPM.parent / "onesample_cov", warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.REG_STATS}", "of 22", timeout=TIMEOUT)
    assert "cocaine_duration_years" in dash_duo.find_element(f"#{ids.SCATTER}").text
    settle(dash_duo)
    assert dash_duo.get_logs() == []
