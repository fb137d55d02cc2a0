"""Browser-test fixtures: the sample study's engine is built once per session (loading
88 participant images and the first fits take seconds; every app built on it reuses
its caches)."""

from __future__ import annotations

import pytest

from dashboard.app.engine import Engine
from dashboard.results import load_study
from tests.conftest import SAMPLE


@pytest.fixture(scope="session")
def sample_engine() -> Engine:
    engine = Engine(load_study(SAMPLE, check_data=True))
    return engine


def pytest_collection_modifyitems(config, items):
    """dash's ThreadedRunner stops the server by raising SystemExit in every thread it
    started, including idle keep-alive request threads; pytest reports those as
    unhandled thread exceptions at teardown.  They say nothing about the app."""
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"))
