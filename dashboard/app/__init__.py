"""Dash front end: the app factory and its settings.

The factory loads the study once (core: :mod:`dashboard.results`), attaches one
flask-caching ``Cache`` to the server (Redis with ``--redis-url``, else a private
temporary folder) where RFT smoothness estimates are shared between server processes,
builds the compute :class:`~dashboard.app.engine.Engine` (in-process caches of numpy
arrays, which are too large and too hot to pickle through a shared cache), the layout
and the callbacks.
Callbacks stay thin: they translate UI state into core calls and results into figures.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import dash
from flask_caching import Cache

from dashboard.app.engine import Engine
from dashboard.app.state import default_state
from dashboard.results import Study, load_study

# Top-level assets/ (not next to the package; a wheel carries a copy as
# dashboard/_assets). Bootstrap's CSS is vendored there (assets/vendor/) because the
# app must work with no internet access.
_PACKAGE = Path(__file__).resolve().parent.parent
ASSETS_DIR = _PACKAGE.parent / "assets" if (_PACKAGE.parent / "assets").is_dir() else _PACKAGE / "_assets"


@dataclass(frozen=True)
class Settings:
    """How the app is served; built from the CLI (or tests)."""

    results_dir: Path
    debug: bool = False
    cache_dir: str | None = None  # file-system cache; default: a fresh temporary folder
    redis_url: str | None = None  # use Redis instead of the file system
    template: bool = True  # MNI152 template under the slices (else the analysis mask)
    warm: bool = True  # compute the default view in a background thread at start-up


def make_cache(settings: Settings) -> Cache:
    """One cache for the server: Redis if asked, else a private temporary folder
    (never inside the results folder, which is read-only to us)."""
    if settings.redis_url:
        return Cache(config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": settings.redis_url, "CACHE_DEFAULT_TIMEOUT": 0})
    cache_dir = settings.cache_dir or tempfile.mkdtemp(prefix="cue-dashboard-cache-")
    return Cache(config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": cache_dir, "CACHE_THRESHOLD": 2000, "CACHE_DEFAULT_TIMEOUT": 0})


def add_server_timing(server) -> None:
    """A ``Server-Timing: callback;dur=<ms>`` header on every callback response: the
    browser's resource timing then shows the server's share of an interaction (read by
    scripts/bench_ui.py; also visible in the browser's developer tools)."""
    import time

    from flask import g, request

    @server.before_request
    def _start() -> None:
        g.cue_t0 = time.perf_counter()

    @server.after_request
    def _header(response):
        if request.path.endswith("_dash-update-component") and "cue_t0" in g:
            response.headers["Server-Timing"] = f"callback;dur={(time.perf_counter() - g.cue_t0) * 1000:.1f}"
        return response


def create_app(settings: Settings, study: Study | None = None, engine: Engine | None = None) -> dash.Dash:
    """Build the Dash app for one results folder.

    Raises :class:`dashboard.results.StudyError` when the folder cannot be loaded.
    """
    from dashboard.app import callbacks, layout

    study = engine.study if engine is not None else (study or load_study(settings.results_dir, check_data=True, defer_participant_data=True))
    app = dash.Dash(
        __name__,
        title=f"cue-dashboard: {study.name}",
        assets_folder=str(ASSETS_DIR),
        suppress_callback_exceptions=False,
    )
    cache = make_cache(settings)
    cache.init_app(app.server)
    engine = engine or Engine(study, template=settings.template, store=cache)
    app.server.config["CUE_ENGINE"] = engine  # for scripts and tests
    add_server_timing(app.server)
    app.layout = layout.build_layout(study)
    callbacks.register(app, engine)
    if settings.warm:
        # the default view's fits and RFT smoothness (~2-3 s on the sample) are computed
        # while the browser loads the page; callbacks wait on the engine lock
        threading.Thread(target=engine.warm, args=(default_state(study),), daemon=True, name="cue-warm").start()
    return app
