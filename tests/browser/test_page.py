"""The page renders in headless Chromium with no browser console errors."""

from __future__ import annotations

import pytest

from dashboard.app import Settings, create_app, ids

pytestmark = pytest.mark.browser


def test_pg001_tiny_study_renders_without_console_errors(dash_duo, tiny_study):
    app = create_app(Settings(results_dir=tiny_study))
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal(f"#{ids.STUDY_TITLE}", "tiny test study", timeout=10)
    dash_duo.wait_for_element(f"#{ids.GLASS_BRAIN} .main-svg", timeout=10)
    dash_duo.wait_for_contains_text(f"#{ids.STATUS}", "df 20", timeout=10)
    assert dash_duo.get_logs() == [], "browser console has errors"
