"""``cue-dashboard serve`` as a process: what its HTTP responses say about the server, and
that it leaves nothing in the temporary folder when it is stopped (SIGTERM or Ctrl-C)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dashboard.app import CACHE_PREFIX, guard
from dashboard.app.browser import free_port

pytestmark = pytest.mark.slow
CLI = Path(sys.executable).with_name("cue-dashboard")
START_TIMEOUT = 60


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, list[tuple[str, str]]]:
    """(status, every header as sent, repeated ones included)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body is not None else {})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheaders()
    finally:
        conn.close()


@contextmanager
def serving(study: Path, tmp: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """``cue-dashboard serve`` on ``study`` with TMPDIR=``tmp``, once it answers HTTP."""
    port = free_port()
    proc = subprocess.Popen([str(CLI), "serve", str(study), "--port", str(port)], env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}: {proc.stdout.read().decode() if proc.stdout else ''}"
            try:
                if _request(port, "GET", "/")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer within {START_TIMEOUT} s"
            time.sleep(0.2)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_sv001_responses_name_no_server_software_versions(tiny_study, tmp_path):
    bodies = {"callback, refused": b'{"output": "nope"}', "not JSON": b"{"}
    with serving(tiny_study, tmp_path) as (_, port):
        answers = {"page": _request(port, "GET", "/"), "asset": _request(port, "GET", "/assets/hover.js"),
                   "missing": _request(port, "GET", "/_dash-component-suites/none.js"),
                   **{name: _request(port, "POST", "/_dash-update-component", body) for name, body in bodies.items()}}
    assert answers["page"][0] == 200 and answers["callback, refused"][0] == 400 and answers["not JSON"][0] == 400
    for name, (_, headers) in answers.items():
        servers = [value for key, value in headers if key.lower() == "server"]
        assert servers == [guard.SERVER_NAME], f"{name}: {servers}"
        text = json.dumps(headers)
        assert "Werkzeug" not in text and "Python" not in text, f"{name}: {headers}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sv002_stopping_serve_removes_its_private_cache_folder(tiny_study, tmp_path, sig):
    with serving(tiny_study, tmp_path) as (proc, _):
        caches = list(tmp_path.glob(f"{CACHE_PREFIX}*"))
        assert len(caches) == 1 and caches[0].is_dir(), caches
        assert caches[0].stat().st_mode & 0o777 == 0o700  # private: FileSystemCache unpickles what it finds there
        proc.send_signal(sig)
        proc.wait(timeout=30)
    assert proc.returncode == (128 + signal.SIGTERM if sig == signal.SIGTERM else 0)
    assert not list(tmp_path.glob(f"{CACHE_PREFIX}*")), "the cache folder outlived the server"
