"""A results folder from a stranger: markup and script in every free-text field it has
(study name, condition and contrast labels, participants.tsv column names and values,
participants.json descriptions, units and levels) must show as text and never run.

``alert``/``confirm``/``prompt`` are replaced before any script of the page runs
(Chrome DevTools ``Page.addScriptToEvaluateOnNewDocument``, installed before the first
navigation, so it is in place for the initial HTML); every payload that could run sets
``window.__xss`` or calls ``alert``.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboard.app import Settings, create_app, ids
from tests.browser.helpers import (
    TIMEOUT,
    click_radio,
    click_table_row,
    js_click,
    quick_filter_selector,
    settle,
    wait_rows,
)
from tests.studies import write_tiny_study

pytestmark = pytest.mark.browser

NAME = '</title><script>window.__xss=1;alert(1)</script><img src=x onerror="window.__xss=2;alert(2)">'
LABELS = {  # condition id -> label
    "cocaine_placebo": "%{x} %{customdata} <b>bold</b><br>",
    "neutral_placebo": '<a href="javascript:alert(4)">x</a>',
    "cocaine_nac": '"><svg onload="window.__xss=3;alert(3)">',
    "neutral_nac": '<img src=x onerror="window.__xss=5;alert(5)">',
}
CONTRAST_LABELS = {"placebo": "<script>window.__xss=6;alert(6)</script>", "nac": "'\";alert(7);//",
                   "interaction": '</script><img src=x onerror="window.__xss=8;alert(8)">'}
DOTTED = 'dose.mg "><svg onload="window.__xss=9;alert(9)">'  # a participants.tsv column name (with a dot)
DOSES = ["1.5", '<img src=x onerror="window.__xss=10;alert(10)">', "2", "2.5", "3", "0.5"]  # its values
FEMALE = 'F<img src=x onerror="window.__xss=11;alert(11)">'  # a sex level
UNITS = 'years <a href="javascript:alert(12)">y</a>'
DESCRIPTION = '<img src=x onerror="window.__xss=13;alert(13)">duration'

HOOK = """
window.__hooked = true;
window.__alerts = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = function (message) { window.__alerts.push(name + ": " + String(message)); return name === "confirm" ? false : null; };
}
"""


def write_hostile_study(out: Path) -> Path:
    """The tiny study with a payload in every free-text field (participant ids stay valid BIDS ids)."""
    write_tiny_study(out)
    desc = json.loads((out / "dataset_description.json").read_text())
    (out / "dataset_description.json").write_text(json.dumps({**desc, "Name": NAME}))
    design = json.loads((out / "design.json").read_text())
    for c in design["Conditions"]:
        c["label"] = LABELS[c["id"]]
    for c in design["Contrasts"]:
        c["label"] = CONTRAST_LABELS[c["id"]]
    (out / "design.json").write_text(json.dumps(design))
    table = pd.read_csv(out / "participants.tsv", sep="\t", dtype=str)
    table["sex"] = table["sex"].replace({"F": FEMALE})
    table[DOTTED] = DOSES[: len(table)]
    lines = ["\t".join(table.columns), *("\t".join(row) for row in table.astype(str).itertuples(index=False))]
    (out / "participants.tsv").write_text("\n".join(lines) + "\n")  # BIDS TSV: no quoting
    columns = json.loads((out / "participants.json").read_text())
    columns["sex"]["Levels"] = {"M": "male", FEMALE: '<b onmouseover="alert(14)">female</b>'}
    columns["cocaine_duration_years"] = {"Description": DESCRIPTION, "Units": UNITS}
    columns[DOTTED] = {"Description": CONTRAST_LABELS["interaction"]}
    (out / "participants.json").write_text(json.dumps(columns))
    return out


_POINT_AT = """
const el = document.querySelector(arguments[0]), r = el.getBoundingClientRect();
for (const type of ["mouseover", "mouseenter", "mousemove"]) {
  el.dispatchEvent(new MouseEvent(type, {bubbles: true, clientX: r.x + 5, clientY: r.y + 5}));
}
"""


def _text(dash_duo, selector: str) -> str:
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent).join('\\n')", selector)


def _column(dash_duo, grid_id: str, col_id: str) -> list[str]:
    """Texts of a grid column's cells, scrolled into view (AG Grid writes the col-id
    attribute HTML-escaped; compared as a string, not a selector: it may hold any character)."""
    dash_duo.driver.execute_script("dash_ag_grid.getApi(arguments[0]).ensureColumnVisible(arguments[1])", grid_id, col_id)
    time.sleep(0.3)
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' .ag-cell'))"
        ".filter(c => c.getAttribute('col-id') === arguments[1]).map(c => c.textContent)", grid_id, html.escape(col_id))


def _wait_text(dash_duo, selector: str, text: str) -> None:
    dash_duo._wait_for(lambda d: text in _text(dash_duo, selector), timeout=TIMEOUT, msg=f"{selector} never showed {text!r}")


def _nothing_ran(dash_duo) -> None:
    ran = dash_duo.driver.execute_script("return [window.__hooked === true, window.__alerts, typeof window.__xss]")
    assert ran == [True, [], "undefined"], f"hook installed, alerts, window.__xss: {ran}"


def test_hx001_markup_in_a_results_folder_shows_as_text_and_never_runs(dash_duo, tmp_path):
    folder = write_hostile_study(tmp_path / "hostile")
    app = create_app(Settings(results_dir=folder))
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
    dash_duo.start_server(app)  # the first navigation: the hook is already in place
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=TIMEOUT)
    _nothing_ran(dash_duo)

    # the name: literal in the tab's title and the heading
    dash_duo._wait_for(lambda d: d.title != "Updating...", timeout=TIMEOUT, msg="page title stays 'Updating...'")
    assert dash_duo.driver.title == f"cue-dashboard: {NAME}"
    assert dash_duo.find_element(f"#{ids.STUDY_TITLE}").text == NAME
    assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, "head script:not([src]), body img[src='x'], svg[onload]")

    # labels: the contrast radio, the direction radio (from condition labels), the table
    assert CONTRAST_LABELS["placebo"] in _text(dash_duo, f"#{ids.CONTRAST}")
    _wait_text(dash_duo, f"#{ids.DIRECTION}", f"{LABELS['cocaine_placebo']} > {LABELS['neutral_placebo']}")
    click_radio(dash_duo, ids.CONTRAST, "nac")
    _wait_text(dash_duo, f"#{ids.DIRECTION}", f"{LABELS['cocaine_nac']} > {LABELS['neutral_nac']}")
    click_radio(dash_duo, ids.CONTRAST, "placebo")
    _wait_text(dash_duo, f"#{ids.DIRECTION}", LABELS["neutral_placebo"])
    click_table_row(dash_duo, 0)
    _wait_text(dash_duo, f"#{ids.CLUSTER_TABLE}", f"{LABELS['cocaine_placebo']} > {LABELS['neutral_placebo']}")

    # the regression: axis titles and hover label from column name, units and condition label, literally
    x_label, y_label = f"cocaine_duration_years ({UNITS})", f"eigenvariate, {LABELS['cocaine_placebo']}"
    _wait_text(dash_duo, f"#{ids.SCATTER} .g-xtitle", x_label)
    assert _text(dash_duo, f"#{ids.SCATTER} .g-ytitle") == y_label
    settle(dash_duo)  # the influence panel follows the scatter: hover once the page is still
    point = dash_duo.find_elements(f"#{ids.SCATTER} .scatterlayer .trace .point")[0]
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", point)
    ActionChains(dash_duo.driver).move_to_element(point).perform()
    _wait_text(dash_duo, f"#{ids.SCATTER} .hoverlayer", f"{y_label} = ")
    hover = _text(dash_duo, f"#{ids.SCATTER} .hoverlayer")
    assert f"{x_label} = " in hover and "sub-0" in hover, hover
    ActionChains(dash_duo.driver).move_to_element(point).click().perform()
    dash_duo.wait_for_contains_text(f"#{ids.EXCLUDE_BUTTON}", "Exclude sub-0", timeout=TIMEOUT)
    dash_duo.wait_for_element(f"#{ids.PARTICIPANT_GRID} .ag-row.participant-highlight", timeout=TIMEOUT)

    # participants: column names, values and levels as text; a dotted column name is a name
    wait_rows(dash_duo, ids.PARTICIPANT_GRID, 6)
    headers = _text(dash_duo, f"#{ids.PARTICIPANT_GRID} .ag-header-cell-text")
    assert DOTTED in headers, headers
    assert sorted(_column(dash_duo, ids.PARTICIPANT_GRID, DOTTED)) == sorted(DOSES), "a dotted column name was read as a path"
    assert FEMALE in _column(dash_duo, ids.PARTICIPANT_GRID, "sex")
    # the quick filter shows the level's description from participants.json, as text
    assert '<b onmouseover="alert(14)">female</b>' in _text(dash_duo, quick_filter_selector("sex"))
    # the header tooltip (participants.json Description and Units); AG Grid ignores
    # WebDriver's pointer here, so the pointer events are dispatched in the page
    dash_duo.driver.execute_script(_POINT_AT, f"#{ids.PARTICIPANT_GRID} .ag-header-cell[col-id='cocaine_duration_years'] .ag-header-cell-label")
    _wait_text(dash_duo, ".ag-tooltip", f"{DESCRIPTION} ({UNITS})")

    # the covariate and condition dropdowns
    assert x_label in _text(dash_duo, f"#{ids.COVARIATE}")
    assert LABELS["cocaine_placebo"] in _text(dash_duo, f"#{ids.CONDITION}")

    # the compare tab: one row title per contrast label
    js_click(dash_duo, f"#{ids.TABS} a.nav-link:not(.active)")
    dash_duo.wait_for_element(f"#{ids.COMPARE} .main-svg", timeout=TIMEOUT)
    for label in CONTRAST_LABELS.values():
        _wait_text(dash_duo, f"#{ids.COMPARE} .annotation-text", label)
    js_click(dash_duo, f"#{ids.TABS} a.nav-link:not(.active)")
    settle(dash_duo)
    time.sleep(0.5)  # onload/onerror handlers would have run by now

    _nothing_ran(dash_duo)
    assert dash_duo.driver.title == f"cue-dashboard: {NAME}"
    severe = [entry for entry in dash_duo.get_logs() if entry.get("level") == "SEVERE"]
    assert severe == [], severe


def test_hx002_markup_in_an_uploaded_peak_table_shows_as_text_and_never_runs(dash_duo, sample_engine, tmp_path):
    """An uploaded table is a stranger's too: payloads in its column names and cells show
    literally in the mapping dropdowns, the claim grid and the markers' hover labels."""
    from tests.browser.helpers import open_tab, start_sample

    region = '<img src=x onerror="window.__xss=20;alert(20)">cingulate'
    source = '%{x}<script>window.__xss=21</script><b>Doe</b> 2020'
    column = 'T"><svg onload="window.__xss=22;alert(22)">'
    table = tmp_path / "hostile peaks.tsv"
    table.write_text(f"x\ty\tz\t{column}\tregion\tsource\n-4\t-34\t32\t4.9\t{region}\t{source}\n30\t-34\t-4\t4.56\tx\ty\n")
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
    start_sample(dash_duo, sample_engine)
    open_tab(dash_duo, "Claim check")
    dash_duo.find_element(f"#{ids.CLAIM_UPLOAD} input[type=file]").send_keys(str(table))
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_UPLOAD_NOTE}", "Read 2 rows of hostile peaks.tsv", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "of 2 peaks reproduced", timeout=TIMEOUT)
    # the column name is a choice of the mapping's dropdowns; chosen for T, it shows as text
    selector = f"[id='{json.dumps(ids.claim_mapping('t'), sort_keys=True, separators=(',', ':'))}']"
    dash_duo.select_dcc_dropdown(selector, value=column)
    _wait_text(dash_duo, f"#{ids.CLAIM_MAPPING}", column)
    wait_rows(dash_duo, ids.CLAIM_GRID, 2)
    assert region in _text(dash_duo, f"#{ids.CLAIM_GRID}")  # the reason quotes the reported region, as text
    # as a marker layer: the hover label is the text
    open_tab(dash_duo, "Explore")
    dash_duo.find_element(f"#{ids.PEAK_LAYERS} input[value='__upload__']").click()
    dash_duo._wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, f"#{ids.GLASS_BRAIN} .annotation")) == 6, timeout=TIMEOUT,
                       msg="no markers of the uploaded table")
    marker = dash_duo.find_element(f"#{ids.GLASS_BRAIN} .annotation .annotation-text-g")
    ActionChains(dash_duo.driver).move_to_element(marker).perform()
    time.sleep(0.5)
    hover = _text(dash_duo, f"#{ids.GLASS_BRAIN} .hoverlayer")
    assert source in hover and region in hover, hover  # the marker's hover label holds the strings as text
    settle(dash_duo)
    time.sleep(0.5)
    _nothing_ran(dash_duo)
    severe = [entry for entry in dash_duo.get_logs() if entry.get("level") == "SEVERE"]
    assert severe == [], severe
