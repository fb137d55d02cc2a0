"""Small selenium helpers for the dash_duo tests."""

from __future__ import annotations

import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.app import Settings, create_app, ids
from tests.conftest import SAMPLE

TIMEOUT = 20


def start_sample(dash_duo, engine):
    app = create_app(Settings(results_dir=SAMPLE), engine=engine)
    dash_duo.start_server(app)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 84", timeout=TIMEOUT)
    return app


def quick_filter_selector(column: str) -> str:
    """CSS selector of a quick filter (Dash writes a pattern-matching id as sorted JSON)."""
    import json

    return f"[id='{json.dumps(ids.quick_filter(column), sort_keys=True, separators=(',', ':'))}']"


def set_input(dash_duo, selector: str, value) -> None:
    """Type a value into a debounced input and commit it (Enter)."""
    el = dash_duo.find_element(selector)
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(str(value))
    el.send_keys(Keys.ENTER)


CONTRAST_IDS = {"Cocaine > neutral cues, placebo": "placebo", "Cocaine > neutral cues, N-AC": "nac",
                "Cue reactivity reduced by N-AC (placebo > N-AC)": "interaction"}


def choose_contrast(dash_duo, label: str) -> None:
    click_radio(dash_duo, ids.CONTRAST, CONTRAST_IDS.get(label, label))


def click_radio(dash_duo, component_id: str, value: str) -> None:
    dash_duo.find_element(f"#{component_id} input[value='{value}']").click()


def click_graph(dash_duo, graph_id: str, fx: float = 0.5, fy: float = 0.5) -> None:
    """Click the plot area of a graph at a fraction of its width/height (from top-left)."""
    layer = dash_duo.find_element(f"#{graph_id} .nsewdrag")
    w, h = layer.size["width"], layer.size["height"]
    # selenium 4.2 measures offsets from the element's top-left corner; later versions
    # from its centre: hover first, then use a delta from the centre
    ActionChains(dash_duo.driver).move_to_element(layer).move_by_offset(int((fx - 0.5) * w), int((fy - 0.5) * h)).click().perform()


def wait_rows(dash_duo, grid_id: str, minimum: int = 1):
    def rows():
        return dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{grid_id} .ag-center-cols-container .ag-row")
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        found = rows()
        if len(found) >= minimum:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{grid_id}: fewer than {minimum} rows")


def table_text(dash_duo) -> str:
    """Text of the cluster table's rows (retried while the grid re-renders)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(50):
        try:
            return dash_duo.find_element(f"#{ids.CLUSTER_TABLE} .ag-center-cols-container").text
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError("cluster table keeps re-rendering")


def js_click(dash_duo, selector: str) -> None:
    """Click through JavaScript (for elements under sticky headers or off-screen)."""
    el = dash_duo.find_element(selector)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", el)


def click_table_row(dash_duo, row_index: int = 0, col: str = "peak_t") -> None:
    from selenium.common.exceptions import StaleElementReferenceException

    wait_rows(dash_duo, ids.CLUSTER_TABLE)
    settle(dash_duo)
    for _ in range(20):
        try:
            cell = dash_duo.find_element(f"#{ids.CLUSTER_TABLE} .ag-center-cols-container .ag-row[row-index='{row_index}'] .ag-cell[col-id='{col}']")
            dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
            time.sleep(0.2)
            cell.click()
            return
        except StaleElementReferenceException:
            time.sleep(0.2)
    raise AssertionError("cluster table row never became clickable")


def settle(dash_duo, timeout: float = TIMEOUT) -> None:
    """Wait until no callback is in flight (the test server kills request threads
    still running when a test ends, e.g. an RFT estimate)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if dash_duo._wait_for_callbacks():
            time.sleep(0.2)
            if dash_duo._wait_for_callbacks():
                return
        time.sleep(0.1)


def no_console_errors(dash_duo) -> None:
    settle(dash_duo)
    assert dash_duo.get_logs() == [], "browser console has errors"


def wait_table_contains(dash_duo, text: str, timeout: float = TIMEOUT) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in table_text(dash_duo):
            return
        time.sleep(0.1)
    raise AssertionError(f"cluster table never showed {text!r}: {table_text(dash_duo)!r}")


def view_state(dash_duo) -> dict:
    """The page's view state (the VIEW store's data in Dash's redux store, which the
    renderer exposes as ``window.store``)."""
    layout = dash_duo.driver.execute_script(
        "const s = window.store.getState(); const path = s.paths.strs[arguments[0]];"
        "let node = s.layout; for (const p of path) node = node[p]; return node.props.data;", ids.VIEW)
    return layout or {}


def open_tab(dash_duo, label: str) -> None:
    """Click the view tab with this label (through JavaScript: the tab bar may be scrolled away)."""
    dash_duo.driver.execute_script(
        "Array.from(document.querySelectorAll('.nav-link')).find(a => a.textContent.trim() === arguments[0]).click()", label)
