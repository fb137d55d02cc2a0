"""The claim check tab: the sample's published table held against its maps in the page."""

from __future__ import annotations

import pytest

from dashboard.app import ids
from tests.browser.helpers import TIMEOUT, set_input, settle, start_sample, wait_rows

pytestmark = pytest.mark.browser


def _tab(dash_duo, label: str) -> None:
    dash_duo.driver.execute_script(
        "Array.from(document.querySelectorAll('.nav-link')).find(a => a.textContent.trim() === arguments[0]).click()", label)


def test_cl001_claim_check_of_the_published_table(dash_duo, sample_engine):
    start_sample(dash_duo, sample_engine)
    _tab(dash_duo, "Claim check")
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "19 of 21 peaks reproduced within 4 mm", timeout=TIMEOUT)
    rows = wait_rows(dash_duo, ids.CLAIM_GRID, 21)
    assert len(rows) >= 10  # the grid renders the rows in view
    text = dash_duo.find_element(f"#{ids.CLAIM_GRID}").text
    assert "inconsistent" in text and "T 4.76 and Z 4.61 disagree at df 84" in text
    assert dash_duo.find_elements(f"#{ids.CLAIM_GRID} .claim-inconsistent")
    # it follows the view: a stricter threshold loses clusters
    _tab(dash_duo, "Explore")
    set_input(dash_duo, f"#{ids.EXTENT}", 200)
    _tab(dash_duo, "Claim check")
    dash_duo.wait_for_contains_text(f"#{ids.CLAIM_SUMMARY}", "1 of 21 peaks reproduced", timeout=TIMEOUT)
    settle(dash_duo)
    assert dash_duo.get_logs() == []
