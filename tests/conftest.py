"""Shared fixtures and the headless-Chromium setup for dash_duo browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.app.browser import chrome_options, free_port
from tests.studies import write_tiny_study

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_results"


def pytest_setup_options():
    """Chrome options for dash[testing]'s webdriver (Debian chromium, headless, as root)."""
    return chrome_options()


def pytest_collection_modifyitems(config, items):
    """Browser tests need chromium + chromedriver: in CI their absence is a failure,
    locally a loud skip."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if not missing:
        return
    reason = f"browser tests need {' and '.join(missing)} (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true" and any("browser" in item.keywords for item in items):
        raise pytest.UsageError(f"CI=true: {reason}; browser tests must run in CI, never skip")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="SKIPPED LOUDLY: " + reason))


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    """A small complete results folder with real NIfTI files (6 participants)."""
    return write_tiny_study(tmp_path / "tiny")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port for the session (CI: required)."""
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: redis-server is missing (apt-get install redis-server)")
        pytest.skip("SKIPPED LOUDLY: redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not answer within 10 s")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def workers(redis_url, tmp_path):
    """Two `cue-dashboard worker` processes (one process each) on the session's redis-server."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = []
    for log in logs:
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            procs.append(subprocess.Popen([sys.executable, "-m", "dashboard.cli", "worker", "--redis-url", redis_url, "--concurrency", "1"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=out))
    from dashboard.jobs.worker import make_celery

    app = make_celery(redis_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= 2:
            break
        if any(p.poll() is not None for p in procs):
            raise AssertionError(f"a worker exited: {[log.read_text()[-2000:] for log in logs]}")
    else:
        raise AssertionError("the two workers did not answer a ping within 60 s")
    yield procs
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
