"""The reviewer's checks on a real SPM12 design folder (tests/data/spm_folders/onesample_cov):
an uploaded peak table with its columns mapped by hand, influence, leave-one-out survival."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dashboard.app import Settings, create_app, ids
from tests.browser.helpers import (
    TIMEOUT,
    click_table_row,
    js_click,
    no_console_errors,
    open_tab,
    set_input,
    settle,
    wait_rows,
)
from tests.studies import folder_stamps

pytestmark = pytest.mark.browser

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders" / "onesample_cov"


def _mapping_selector(field: str) -> str:
    return f"[id='{json.dumps(ids.claim_mapping(field), sort_keys=True, separators=(',', ':'))}']"



def test_rs001_uploaded_spm_table_with_mapped_columns_reproduces(dash_duo, tmp_path):
    """SPM's own table of contrast 1 (p < 0.001, k 0), uploaded as a CSV whose coordinate
    columns no name rule knows: the mapping step asks for them, and once mapped every
    peak is reproduced; the folder is left as it was (nothing uploaded is written there)."""
    before = folder_stamps(SPM)
    rows = json.loads((SPM / "spm_tables" / "0001_p0.001_k0.json").read_text())["TabDat"]["dat"]
    lines = ["pos_a,pos_b,pos_c,T,equivZ"] + [f"{r[11][0]},{r[11][1]},{r[11][2]},{r[8]:.2f},{r[9]:.2f}" for r in rows]
    upload = tmp_path / "spm_peaks.csv"
    upload.write_text("\n".join(lines) + "\n")

    dash_duo.start_server(create_app(Settings(results_dir=SPM, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.EXTENT}", 0)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "≥ 0 voxels", timeout=TIMEOUT)
    open_tab(dash_duo, "Claim check")
    dash_duo.find_element(f"#{ids.CLAIM_UPLOAD} input[type=file]").send_keys(str(upload))
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_UPLOAD_NOTE}", f"Read {len(rows)} rows of spm_peaks.csv", timeout=TIMEOUT)
    # not recognised: the check says which columns it needs
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "no column for MNI x, y, z", timeout=TIMEOUT)
    for field, column in (("x", "pos_a"), ("y", "pos_b"), ("z", "pos_c")):
        dash_duo.select_dcc_dropdown(_mapping_selector(field), value=column)
        time.sleep(0.3)
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", f"{len(rows)} of {len(rows)} peaks reproduced within 4 mm", timeout=TIMEOUT)
    assert len(wait_rows(dash_duo, ids.CLAIM_GRID, 5)) >= 5
    # the uploaded table is also a layer of markers on the maps
    open_tab(dash_duo, "Explore")
    layer = dash_duo.find_element(f"#{ids.PEAK_LAYERS}")
    assert "uploaded: spm_peaks.csv" in layer.text
    settle(dash_duo)
    assert folder_stamps(SPM) == before
    no_console_errors(dash_duo)


def test_rs002_influence_and_leave_one_out_on_an_spm_design(dash_duo):
    dash_duo.start_server(create_app(Settings(results_dir=SPM, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    click_table_row(dash_duo, 0)
    dash_duo.wait_for_contains_text(f"#{ids.INFLUENCE_NOTE}", "changes the OLS slope most", timeout=TIMEOUT)
    js_click(dash_duo, f"#{ids.SURVIVAL_RUN}")
    dash_duo.wait_for_contains_text(f"#{ids.SURVIVAL_SUMMARY}", "leave-outs", timeout=60)
    assert len(wait_rows(dash_duo, ids.SURVIVAL_GRID, 5)) >= 5
    summary = dash_duo.find_element(f"#{ids.SURVIVAL_SUMMARY}").text
    assert "with all 22" in summary, summary
    df_cells = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(`#${arguments[0]} .ag-cell[col-id='df']`)).map(c => c.textContent)", ids.SURVIVAL_GRID)
    assert df_cells and set(df_cells) == {"19"}, df_cells  # the design refitted on 21 of 22: df 20 -> 19
    no_console_errors(dash_duo)


def test_rs003_correspondence_and_markers_on_an_spm_design(dash_duo, tmp_path):
    """The compare tab's correspondence on the SPM design's three contrasts (as
    dashboard.correspondence computes it), and an uploaded table's peaks as markers."""
    from dashboard.analysis import Analysis, Threshold
    from dashboard.correspondence import correspondence
    from dashboard.formats import open_study

    rows = json.loads((SPM / "spm_tables" / "0001_p0.001_k0.json").read_text())["TabDat"]["dat"][:4]
    upload = tmp_path / "four.tsv"
    upload.write_text("x\ty\tz\n" + "".join(f"{r[11][0]}\t{r[11][1]}\t{r[11][2]}\n" for r in rows))
    dash_duo.start_server(create_app(Settings(results_dir=SPM, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    open_tab(dash_duo, "Compare contrasts")
    dash_duo.wait_for_contains_text(f"#{ids.CORR_SUMMARY}", "clusters of this contrast overlap", timeout=TIMEOUT)
    analysis = Analysis(open_study(SPM, check_data=False))
    expected = correspondence(analysis, "1", threshold=Threshold(p_unc=0.001), extent=10)
    n = len(expected.drop_duplicates(["direction", "cluster_id"]))
    shared = len(expected.dropna(subset=["other_contrast"]).drop_duplicates(["direction", "cluster_id"]))
    assert dash_duo.find_element(f"#{ids.CORR_SUMMARY}").text.startswith(f"{shared} of {n} clusters")
    open_tab(dash_duo, "Claim check")
    dash_duo.find_element(f"#{ids.CLAIM_UPLOAD} input[type=file]").send_keys(str(upload))
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_UPLOAD_NOTE}", "Read 4 rows", timeout=TIMEOUT)
    open_tab(dash_duo, "Explore")
    js_click(dash_duo, f"#{ids.PEAK_LAYERS} input[value='__upload__']")
    dash_duo._wait_for(lambda d: len(d.find_elements("css selector", f"#{ids.GLASS_BRAIN} .annotation")) == 3 * len(rows), timeout=TIMEOUT,
                       msg="the uploaded peaks are not marked on the glass brain")
    no_console_errors(dash_duo)
