"""Screenshots of the app on the bundled sample: docs/img/main.png (literature peaks
marked), regression.png (with each participant's influence), survival.png (leave-one-out),
claims.png (the published table checked), compare.png (a correspondence pair outlined),
permutation.png (permutation p-values with TFCE beside RFT's).

Starts ``cue-dashboard serve sample_results`` on a free port, drives headless
Chromium (same options as the browser tests) at 1920x1080 and saves the PNGs.

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--port 8077]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dashboard.app import ids  # noqa: E402
from dashboard.app.browser import chrome_options, free_port  # noqa: E402

INTERACTION = "Cue reactivity reduced by N-AC (placebo > N-AC)"


def chrome() -> webdriver.Chrome:
    driver = webdriver.Chrome(options=chrome_options())
    driver.set_window_size(1920, 1080)
    return driver


def wait_text(driver, selector: str, text: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))


def settle(driver, timeout: float = 30) -> None:
    """Wait until Dash has no callback in flight, then for plotly to paint."""
    end = time.time() + timeout
    script = "const s = window.store && window.store.getState(); return !s || (s.pendingCallbacks || []).length === 0;"
    while time.time() < end:
        if driver.execute_script(script):
            break
        time.sleep(0.2)
    time.sleep(1.0)


def viewport(driver, width: int = 1920, height: int = 1080) -> None:
    """Make the *viewport* (not the window) width x height: set the window, measure the
    browser's frame, set it again with the frame added."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight];")
    driver.set_window_size(width + (width - inner[0]), height + (height - inner[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--size", default="1920x1080", help="viewport WIDTHxHEIGHT (e.g. 1280x720, a projector)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    exe = REPO / ".venv" / "bin" / "cue-dashboard"
    server = subprocess.Popen([str(exe), "serve", str(REPO / "sample_results"), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        driver = chrome()
        driver.get(url)
        width, height = (int(v) for v in args.size.split("x"))
        viewport(driver, width, height)
        wait_text(driver, f"#{ids.STATUS}", "df 84")
        wait_text(driver, f"#{ids.CLUSTER_NOTE}", "clusters")
        # main: interaction contrast, its cluster selected (regression filled in)
        driver.find_element(By.CSS_SELECTOR, f"#{ids.CONTRAST} input[value='interaction']").click()
        wait_text(driver, f"#{ids.CLUSTER_NOTE}", "1 cluster of")
        settle(driver)
        cell = driver.find_element(By.CSS_SELECTOR, f"#{ids.CLUSTER_TABLE} .ag-center-cols-container .ag-row[row-index='0'] .ag-cell[col-id='k']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)  # below the fold at 1080 px
        time.sleep(0.3)
        driver.execute_script("arguments[0].click()", cell)
        wait_text(driver, f"#{ids.REG_STATS}", "0.13")
        settle(driver)
        driver.execute_script("arguments[0].click()", driver.find_element(By.CSS_SELECTOR, f"#{ids.PEAK_LAYERS} input[value='literature_peaks']"))
        settle(driver)
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        driver.save_screenshot(str(out / "main.png"))
        # regression: scroll the cluster table + regression panel into view
        driver.execute_script(f"document.getElementById('{ids.CLUSTER_TABLE}').closest('.card').scrollIntoView({{block: 'start'}})")
        time.sleep(0.6)
        driver.save_screenshot(str(out / "regression.png"))
        # survival: leave each participant out (a background job), the panel in view
        driver.execute_script("arguments[0].click()", driver.find_element(By.ID, ids.SURVIVAL_RUN))
        wait_text(driver, f"#{ids.SURVIVAL_SUMMARY}", "leave-outs", timeout=120)
        settle(driver)
        driver.execute_script(f"document.getElementById('{ids.SURVIVAL_RUN}').closest('.card').scrollIntoView({{block: 'start'}})")
        time.sleep(0.6)
        driver.save_screenshot(str(out / "survival.png"))

        def tab(label: str) -> None:
            driver.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.3)
            driver.execute_script("Array.from(document.querySelectorAll('.nav-link')).find(a => a.textContent.trim() === arguments[0]).click()",
                                  label)

        # claims: the published table held against the placebo maps
        tab("Claim check")
        driver.execute_script("arguments[0].click()", driver.find_element(By.CSS_SELECTOR, f"#{ids.CONTRAST} input[value='placebo']"))
        settle(driver)
        wait_text(driver, f"#{ids.CLAIM_SUMMARY}", "peaks reproduced")
        settle(driver)
        driver.save_screenshot(str(out / "claims.png"))
        # compare: the correspondence pair with the largest overlap outlined
        tab("Compare contrasts")
        wait_text(driver, f"#{ids.COMPARE_STATUS}", "same threshold")
        wait_text(driver, f"#{ids.CORR_SUMMARY}", "overlap")
        settle(driver)
        driver.execute_script("""
            const api = dash_ag_grid.getApi(arguments[0]);
            api.applyColumnState({state: [{colId: 'dice', sort: 'desc'}]});
            const first = api.getDisplayedRowAtIndex(0);
            document.querySelector(`#${arguments[0]} .ag-row[row-id='${CSS.escape(first.id)}'] .ag-cell[col-id='dice']`).click();""",
                              ids.CORR_GRID)
        settle(driver)
        driver.save_screenshot(str(out / "compare.png"))
        # permutation: the placebo contrast under the paired model, 1000 sign flips with TFCE
        tab("Explore")
        driver.execute_script("arguments[0].click()", driver.find_element(By.ID, "perm-summary"))
        driver.execute_script("arguments[0].click()", driver.find_element(By.ID, ids.PERM_USE_PAIRED))
        wait_text(driver, f"#{ids.STATUS}", "df 21")
        settle(driver)
        field = driver.find_element(By.ID, ids.PERM_N)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
        field.clear()
        field.send_keys("1000\n")
        driver.execute_script("arguments[0].click()", driver.find_element(By.ID, ids.PERM_TFCE))
        wait_text(driver, f"#{ids.PERM_STATUS}", "Not run")
        driver.execute_script("arguments[0].click()", driver.find_element(By.ID, ids.PERM_RUN))
        wait_text(driver, f"#{ids.PERM_STATUS}", "Job done", timeout=300)
        settle(driver)
        driver.execute_script(f"document.getElementById('{ids.PERM_RUN}').scrollIntoView({{block: 'start'}})")
        time.sleep(0.6)
        driver.save_screenshot(str(out / "permutation.png"))
        for name in ("main", "regression", "survival", "claims", "compare", "permutation"):
            print(out / f"{name}.png")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
