"""Permutation p-values in the browser: a job with progress that survives a reload,
cancel, a finished job found again, and the table's permutation columns equal to what
the CLI prints for the same settings (real SPM12 one-sample folder); the pooled models
refused with a way to the paired model, and TFCE with its map (the sample); served with
Celery, the job runs on two real workers."""

from __future__ import annotations

import io
import json
import re
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from dashboard import cli
from dashboard.app import Settings, create_app, ids
from tests.browser.helpers import TIMEOUT, js_click, no_console_errors, set_input, settle, start_sample, wait_rows
from tests.studies import folder_stamps

pytestmark = pytest.mark.browser

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders" / "onesample"
JOB_TIMEOUT = 120


def _open_panel(dash_duo) -> None:
    js_click(dash_duo, "#perm-summary")
    dash_duo.wait_for_element(f"#{ids.PERM_RUN}", timeout=TIMEOUT)


def _status(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.PERM_STATUS}").text


def _wait_status(dash_duo, text: str, timeout: float = JOB_TIMEOUT) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = _status(dash_duo)
        if text in now:
            return now
        time.sleep(0.2)
    raise AssertionError(f"permutation status never showed {text!r}: {_status(dash_duo)!r}")


def _flips_done(dash_duo) -> int:
    """Flips done, as the progress bar's label says ('1234 / 60000 flips, ...')."""
    label = dash_duo.find_element(f"#{ids.PERM_PROGRESS}").text
    m = re.match(r"(\d+) / (\d+) flips", label)
    return int(m.group(1)) if m else -1


def _wait_progress_above(dash_duo, floor: int, timeout: float = JOB_TIMEOUT) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if dash_duo.find_element(f"#{ids.PERM_PROGRESS_WRAP}").is_displayed():
            done = _flips_done(dash_duo)
            if done > floor:
                return done
        time.sleep(0.2)
    raise AssertionError(f"progress never passed {floor} flips; status {_status(dash_duo)!r}")


def _grid_rows(dash_duo) -> list[dict]:
    """The permutation grid's rows as the page holds them (AG Grid's rowData)."""
    return dash_duo.driver.execute_script(
        "const s = window.store.getState(); const path = s.paths.strs[arguments[0]];"
        "let node = s.layout; for (const p of path) node = node[p]; return node.props.rowData;", ids.PERM_GRID) or []


def _cli_rows(*args: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["permute", *args, "--format", "json"]) == 0
    return json.loads(out.getvalue())


def test_pm001_job_progress_reload_cancel_finish_and_cli_agreement(dash_duo):
    """On SPM12's one-sample folder: a long job's progress advances, a reload finds it
    running and follows it, Cancel stops it; a short job finishes and is found again after
    a reload; with clusters in the table its permutation p-values equal the CLI's."""
    before = folder_stamps(SPM)
    dash_duo.start_server(create_app(Settings(results_dir=SPM, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    _open_panel(dash_duo)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)

    set_input(dash_duo, f"#{ids.PERM_N}", 90000)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    js_click(dash_duo, f"#{ids.PERM_RUN}")
    first = _wait_progress_above(dash_duo, 0)
    second = _wait_progress_above(dash_duo, first)
    assert second > first

    dash_duo.driver.refresh()  # the job goes on; the new page finds it and follows it
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    _open_panel(dash_duo)
    assert dash_duo.find_element(f"#{ids.PERM_N}").get_attribute("value") == "90000"  # the panel's settings are kept
    third = _wait_progress_above(dash_duo, second)
    _wait_progress_above(dash_duo, third)
    js_click(dash_duo, f"#{ids.PERM_CANCEL}")
    stopped = re.search(r"Job cancelled: (\d+) of 90000 sign flips", _wait_status(dash_duo, "Job cancelled"))
    assert stopped and third < int(stopped.group(1)) < 90000

    # a short job with the same view finishes, and a reload finds it done
    set_input(dash_duo, f"#{ids.PERM_N}", 2000)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    js_click(dash_duo, f"#{ids.PERM_RUN}")
    _wait_status(dash_duo, "Job done: 2000 of 2000 sign flips")
    dash_duo.driver.refresh()
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    _open_panel(dash_duo)
    _wait_status(dash_duo, "Job done: 2000 of 2000 sign flips", TIMEOUT)

    # clusters in the table (p < 0.01, k 0): another question, run and compared with the CLI
    set_input(dash_duo, f"#{ids.P_UNC}", 0.01)
    set_input(dash_duo, f"#{ids.EXTENT}", 0)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "≥ 0 voxels", timeout=TIMEOUT)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    js_click(dash_duo, f"#{ids.PERM_RUN}")
    _wait_status(dash_duo, "Job done: 2000 of 2000 sign flips")
    wait_rows(dash_duo, ids.PERM_GRID, 3)
    settle(dash_duo)
    page = _grid_rows(dash_duo)
    expected = _cli_rows(str(SPM), "--contrast", "1", "--n-perm", "2000", "--seed", "0", "--p-unc", "0.01", "--k", "0")
    assert expected["n_perm"] == 2000 and not expected["exhaustive"]
    assert len(page) == len(expected["rows"]) >= 3
    for got, want in zip(page, expected["rows"], strict=True):
        assert got["xyz"] == f"{want['x']:g} {want['y']:g} {want['z']:g}"
        for column in ("p_fwe_perm_peak", "p_fwe_perm_cluster", "p_fwe_perm_mass"):
            assert got[column] == pytest.approx(want[column], abs=1e-12), (column, got, want)
    assert any(r["p_fwe_perm_peak"] < 0.05 for r in page)
    # the null distributions are drawn: histograms of max T, extent and mass
    hist = dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.PERM_FIGURE} .barlayer .trace")
    assert len(hist) >= 3
    assert dash_duo.find_element(f"#{ids.PERM_FIGURE_WRAP}").is_displayed()
    # another question (seed) has no result: the earlier drawing leaves the screen
    set_input(dash_duo, f"#{ids.PERM_SEED}", 1)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    dash_duo.wait_for_style_to_equal(f"#{ids.PERM_FIGURE_WRAP}", "display", "none", timeout=TIMEOUT)
    assert folder_stamps(SPM) == before  # nothing written into the folder
    no_console_errors(dash_duo)


def test_pm002_pooled_model_refused_then_paired_with_tfce(dash_duo, sample_engine):
    """The sample under its published cells model: the panel says why a sign-flip test
    needs the paired model and switches to it; a TFCE job then adds the TFCE column and
    its significant-voxel map."""
    start_sample(dash_duo, sample_engine)
    _open_panel(dash_duo)
    _wait_status(dash_duo, "choose the paired model", TIMEOUT)
    js_click(dash_duo, f"#{ids.PERM_USE_PAIRED}")
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    set_input(dash_duo, f"#{ids.PERM_N}", 48)
    js_click(dash_duo, f"#{ids.PERM_TFCE}")
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    js_click(dash_duo, f"#{ids.PERM_RUN}")
    _wait_status(dash_duo, "Job done: 48 of 48 sign flips")
    wait_rows(dash_duo, ids.PERM_GRID, 5)
    settle(dash_duo)
    rows = _grid_rows(dash_duo)
    assert all(r.get("p_fwe_perm_tfce") is not None for r in rows)
    assert min(r["p_fwe_perm_tfce"] for r in rows) == pytest.approx(1 / 48)  # the observed map is the identity flip: p >= 1/n
    assert dash_duo.find_element(f"#{ids.PERM_MAP_WRAP}").is_displayed()
    assert re.search(r"TFCE: [1-9]\d* voxels at p-FWE < 0\.05", _status(dash_duo))  # the significant voxels, counted
    no_console_errors(dash_duo)


def test_pm003_served_with_celery_a_job_runs_on_two_workers(dash_duo, redis_url, workers):
    """`serve --redis-url URL --celery`: the panel's job is split into chunks that two real
    worker processes run (through a real redis-server), with progress, and the result
    equals the CLI's single-process one."""
    app = create_app(Settings(results_dir=SPM, warm=False, redis_url=redis_url, celery=True))
    dash_duo.start_server(app)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    set_input(dash_duo, f"#{ids.P_UNC}", 0.01)
    set_input(dash_duo, f"#{ids.EXTENT}", 0)
    dash_duo.wait_for_contains_text(f"#{ids.CLUSTER_NOTE}", "≥ 0 voxels", timeout=TIMEOUT)
    _open_panel(dash_duo)
    set_input(dash_duo, f"#{ids.PERM_N}", 6000)
    set_input(dash_duo, f"#{ids.PERM_SEED}", 5)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    js_click(dash_duo, f"#{ids.PERM_RUN}")  # (2 s of work here: progress is test_pm001's)
    _wait_status(dash_duo, "Job done: 6000 of 6000 sign flips")
    jobs = app.server.config["CUE_PERMUTATIONS"]
    request = perm_request(dash_duo)
    assert jobs.state(request)["workers"] == 2  # both workers took chunks
    wait_rows(dash_duo, ids.PERM_GRID, 3)
    settle(dash_duo)
    expected = _cli_rows(str(SPM), "--contrast", "1", "--n-perm", "6000", "--seed", "5", "--p-unc", "0.01", "--k", "0")
    for got, want in zip(_grid_rows(dash_duo), expected["rows"], strict=True):
        for column in ("p_fwe_perm_peak", "p_fwe_perm_cluster", "p_fwe_perm_mass"):
            assert got[column] == pytest.approx(want[column], abs=1e-12), (column, got, want)
    no_console_errors(dash_duo)


def perm_request(dash_duo):
    """The panel's current question (PERM_REQUEST), as a PermutationRequest."""
    from dashboard.permutation import PermutationRequest

    data = dash_duo.driver.execute_script(
        "const s = window.store.getState(); const path = s.paths.strs[arguments[0]];"
        "let node = s.layout; for (const p of path) node = node[p]; return node.props.data;", ids.PERM_REQUEST)
    return PermutationRequest.from_dict(data["request"])


def test_pm004_no_job_process_on_page_load_or_view_change(dash_duo, monkeypatch):
    """A background callback forks the server: loading the page, opening the panel and
    changing the view start none; a Run click starts exactly one."""
    from dash.background_callback.managers.diskcache_manager import DiskcacheManager

    started: list[list[str]] = []
    real = DiskcacheManager.call_job_fn

    def counting(self, key, job_fn, args, context):
        started.append([t["prop_id"] for t in context["triggered_inputs"]])
        return real(self, key, job_fn, args, context)

    monkeypatch.setattr(DiskcacheManager, "call_job_fn", counting)
    dash_duo.start_server(create_app(Settings(results_dir=SPM, warm=False)))
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 21", timeout=TIMEOUT)
    _open_panel(dash_duo)
    _wait_status(dash_duo, "Not run for these settings", TIMEOUT)
    for p in (0.01, 0.005, 0.001):
        set_input(dash_duo, f"#{ids.P_UNC}", p)
        settle(dash_duo)
    set_input(dash_duo, f"#{ids.PERM_N}", 500)
    settle(dash_duo)
    assert started == []
    js_click(dash_duo, f"#{ids.PERM_RUN}")
    _wait_status(dash_duo, "Job done: 500 of 500 sign flips")
    assert started == [[f"{ids.PERM_START}.data"]]
    no_console_errors(dash_duo)
