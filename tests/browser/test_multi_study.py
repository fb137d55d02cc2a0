"""`cue-dashboard serve DIR1 DIR2`: one server, each study under its own prefix, a switch
between them (links to the studies it was started with; no path is typed in the page)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.app import ids
from dashboard.app.browser import free_port
from dashboard.formats import open_study
from tests.conftest import SAMPLE

pytestmark = pytest.mark.browser
CLI = Path(sys.executable).with_name("cue-dashboard")
SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders" / "ff_cells"


def _wait_status(driver, text: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.ID, ids.STATUS), text))


def test_ms001_two_studies_one_server_with_a_switch(dash_duo, tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(CLI), "serve", str(SAMPLE), str(SPM), "--port", str(port)], env={**os.environ, "TMPDIR": str(tmp_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "serve exited"
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        driver = dash_duo.driver
        driver.get(base + "/")  # redirects to the first study
        _wait_status(driver, "df 84 · T > 3.19")
        assert driver.current_url == base + "/sample_results/"
        links = driver.find_elements(By.CSS_SELECTOR, f"#{ids.STUDY_SWITCH} a")
        assert [a.text for a in links] == [open_study(SAMPLE, check_data=False).name, "ff_cells"]
        assert "active" in links[0].get_attribute("class")
        links[1].click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url == base + "/ff_cells/")
        _wait_status(driver, "the folder's design, as estimated")
        assert driver.find_element(By.ID, ids.STUDY_TITLE).text == "ff_cells"
        # each study's callbacks answer on its own prefix; the other's requests are its own
        driver.find_element(By.CSS_SELECTOR, f"#{ids.CONTRAST} input[value='4']").click()
        _wait_status(driver, "df [2, 84] · F > 7.51")
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
