"""The core never imports Dash or Flask (callbacks stay thin; the core stays usable
from scripts and the CLI without a web stack)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = ["dashboard.results", "dashboard.writer", "dashboard.design", "dashboard.analysis", "dashboard.sample",
        "dashboard.atlas", "dashboard.figures", "dashboard.stats.models", "dashboard.stats.clusters",
        "dashboard.stats.rft", "dashboard.stats.lts", "dashboard.stats.extract", "dashboard.stats.thresholds"]


@pytest.mark.parametrize("module", CORE)
def test_ly001_core_module_imports_no_web_stack(module):
    code = f"import sys, {module}; bad = [m for m in ('dash', 'flask', 'flask_caching') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{module} imports {proc.stdout.strip()} {proc.stderr[-500:]}"
