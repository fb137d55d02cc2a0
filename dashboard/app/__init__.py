"""Dash front end: the app factory and its settings.

The factory loads the study once (core: :mod:`dashboard.results`), attaches one
flask-caching ``Cache`` to the server (Redis with ``--redis-url``, else a private
temporary folder) where RFT smoothness estimates are shared between server processes,
builds the compute :class:`~dashboard.app.engine.Engine` (in-process caches of numpy
arrays, which are too large and too hot to pickle through a shared cache), the layout
and the callbacks.
Callbacks stay thin: they translate UI state into core calls and results into figures.
Request-level guards (size, malformed requests, errors, the Server header) are
:mod:`dashboard.app.guard`'s.

Nothing from the results folder reaches the page as markup or code: the page title is
HTML-escaped here, components render study strings as text, plotly text is escaped in
:mod:`dashboard.figures`, and clientside code is fixed (``assets/*.js``) and gets values
as data.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dash
import flask
from flask_caching import Cache

from dashboard.app import guard
from dashboard.app.engine import Engine
from dashboard.app.state import default_state
from dashboard.formats import OpenOptions, open_study
from dashboard.results import Study, StudyError

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
    celery: bool = False  # permutation jobs on Celery workers (needs redis_url; `cue-dashboard worker`)
    template: bool = True  # MNI152 template under the slices (else the analysis mask)
    open_options: OpenOptions = field(default_factory=OpenOptions)  # what a folder cannot say itself (plain maps' statistic, SPM images' root)
    warm: bool = True  # compute the default view in a background thread at start-up


CACHE_PREFIX = "cue-dashboard-cache-"
JOBS_PREFIX = "cue-dashboard-jobs-"  # background jobs' progress and results (dashboard.app.jobs)


def make_cache(settings: Settings) -> Cache:
    """One cache for the server: Redis if asked, else ``--cache-dir`` or a private
    temporary folder removed at exit (never inside the results folder, which is
    read-only to us)."""
    if settings.redis_url:
        return Cache(config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": settings.redis_url, "CACHE_DEFAULT_TIMEOUT": 0})
    cache_dir = settings.cache_dir or private_temp_dir(CACHE_PREFIX)
    return Cache(config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": cache_dir, "CACHE_THRESHOLD": 2000, "CACHE_DEFAULT_TIMEOUT": 0})


def private_temp_dir(prefix: str) -> str:
    """A fresh folder only this user can open (``mkdtemp``: mode 0700, unpredictable name;
    the file-system cache unpickles what it finds, so a folder another local user could
    create or fill first would run their code), removed when the process exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """While serving: SIGTERM ends the process as Ctrl-C does, by an exception in the main
    thread (SystemExit, exit status 143), so exit handlers run (the cache folder is
    removed).  Outside the main thread (e.g. tests' server threads) nothing changes:
    only the main thread can handle signals."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


class CueFlask(flask.Flask):
    """The app's Flask server as cue-dashboard serves it: ``run`` (the development server,
    which ``cue-dashboard serve`` reaches through ``dash.Dash.run``) sends ``Server:
    cue-dashboard`` instead of Werkzeug's and Python's versions (:class:`guard.RequestHandler`)
    and exits cleanly on SIGTERM."""

    def run(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("request_handler", guard.RequestHandler)
        with sigterm_exits():
            super().run(*args, **kwargs)


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


def create_app(settings: Settings, study: Study | None = None, engine: Engine | None = None, *, server: flask.Flask | None = None,
               prefix: str = "/", studies: list[tuple[str, str]] | None = None) -> dash.Dash:
    """Build the Dash app for one results folder, on its own server or, with ``server``
    and ``prefix``, beside other studies' apps on a shared one (``studies``: every
    study's (name, prefix), for the switch between them).

    Raises :class:`dashboard.results.StudyError` when the folder cannot be loaded.
    """
    from dashboard.app import callbacks, layout

    study = engine.study if engine is not None else (study or open_study(settings.results_dir, settings.open_options, check_data=True, defer_participant_data=True))
    shared = server is not None
    from dashboard.app.jobs import background_manager, fork_safe_blas

    fork_safe_blas()
    jobs_dir = os.path.join(settings.cache_dir, "jobs") if settings.cache_dir else private_temp_dir(JOBS_PREFIX)
    identity = study.identity()  # the folder and its images' mtimes, read once at start-up
    jobs = background_manager(identity, jobs_dir)
    app = dash.Dash(
        __name__,
        server=server or CueFlask(__name__),  # type: ignore[arg-type]  # Dash types it bool | callable; a Flask instance is what it documents
        url_base_pathname=prefix,
        title=html.escape(f"cue-dashboard: {study.name}"),  # Dash puts the title into the page's HTML as it is
        assets_folder=str(ASSETS_DIR),
        suppress_callback_exceptions=False,
        background_callback_manager=jobs,
    )
    cache = make_cache(settings)
    if not shared:
        cache.init_app(app.server)
    engine = engine or Engine(study, template=settings.template, store=cache)
    app.server.config.setdefault("CUE_ENGINE", engine)  # for scripts and tests (the first study's)
    if not app.server.config.get("CUE_SERVER_HOOKS"):  # once per server, whatever the number of studies
        add_server_timing(app.server)
        app.server.config["CUE_SERVER_HOOKS"] = True
    guard.install(app)
    app.layout = layout.build_layout(study, studies, prefix)
    from dashboard.app.jobs import permutation_jobs

    permutations = permutation_jobs(engine.analysis, jobs_dir, redis_url=settings.redis_url, celery=settings.celery,
                                    results_dir=str(Path(settings.results_dir).resolve()), open_options=settings.open_options)
    app.server.config.setdefault("CUE_PERMUTATIONS", permutations)  # for tests
    callbacks.register(app, engine, permutations, jobs_dir)
    from dashboard.app.volumes import VolumeRoutes

    volumes = VolumeRoutes(engine, identity, prefix)  # whole T volumes for maps drawn in the browser
    volumes.register(app.server)
    app.server.config.setdefault("CUE_VOLUMES", volumes)  # for scripts and tests (the first study's)
    if settings.warm:
        # the default view's fits and RFT smoothness (~2-3 s on the sample) are computed
        # while the browser loads the page; callbacks wait on the engine lock
        threading.Thread(target=engine.warm, args=(default_state(study),), daemon=True, name="cue-warm").start()
    return app


def create_server(settings: list[Settings]) -> flask.Flask:
    """Several results folders on one server (``serve DIR1 DIR2 ...``): each study's app
    under ``/<folder name>/`` with a switch between them; ``/`` opens the first.

    Raises :class:`dashboard.results.StudyError` (every folder's problems) when a folder
    cannot be loaded.
    """
    import re

    studies: list[Study] = []
    problems = []
    for s in settings:
        try:
            studies.append(open_study(s.results_dir, s.open_options, check_data=True, defer_participant_data=True))
        except StudyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise StudyError(problems)
    prefixes: list[str] = []
    for study in studies:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", study.root.resolve().name).strip("-") or "study"
        slug, n = base, 2
        while f"/{slug}/" in prefixes:
            slug, n = f"{base}-{n}", n + 1
        prefixes.append(f"/{slug}/")
    server = CueFlask(__name__)
    links = [(study.name, prefix) for study, prefix in zip(studies, prefixes, strict=True)]
    for s, study, prefix in zip(settings, studies, prefixes, strict=True):
        create_app(s, study, server=server, prefix=prefix, studies=links)

    @server.route("/")
    def _first_study():
        return flask.redirect(prefixes[0])

    return server
