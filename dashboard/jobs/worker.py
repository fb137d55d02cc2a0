"""Celery workers for permutation chunks (``cue-dashboard worker --redis-url URL``).

The broker and the job store are the same Redis.  A worker opens each results folder
once (read-only, as the app does) and keeps it; a chunk whose study changed on disk
since the job was started fails with a message saying so, instead of mixing data.
Tasks are fetched one at a time (``worker_prefetch_multiplier = 1``) so that chunks
spread evenly over the workers.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from celery import Celery

from dashboard.analysis import Analysis
from dashboard.jobs.permute import chunk_work
from dashboard.jobs.store import RedisStore
from dashboard.permutation import PermutationRequest

REDIS_ENV = "CUE_REDIS_URL"
_ANALYSES: dict[tuple[str, str], Analysis] = {}


def make_celery(redis_url: str) -> Celery:
    """The Celery app of cue-dashboard on a Redis broker (JSON messages only)."""
    app = Celery("cue-dashboard", broker=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True, worker_prefetch_multiplier=1,
                    task_acks_late=True, broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
    app.task(name="cue.permute_chunk", bind=True)(_permute_chunk)
    return app


def open_options_dict(options: Any) -> dict[str, Any]:
    """OpenOptions as JSON (paths as text) for a task message."""
    from dataclasses import asdict

    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}


def _analysis(results_dir: str, options: dict[str, Any]) -> Analysis:
    from dashboard.formats import OpenOptions, open_study

    key = (results_dir, repr(sorted(options.items())))
    if key not in _ANALYSES:
        paths = ("first_level_root", "view_defaults", "participants_table")
        opts = OpenOptions(**{k: (Path(v) if k in paths and v else v) for k, v in options.items()})  # type: ignore[arg-type]
        _ANALYSES[key] = Analysis(open_study(results_dir, opts))
    return _ANALYSES[key]


def _permute_chunk(task: Any, results_dir: str, options: dict[str, Any], identity: str, request: dict[str, Any],
                   start: int, stop: int, key: str, index: int) -> None:
    store = RedisStore(task.app.conf.broker_url)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    analysis = _analysis(results_dir, options)
    if analysis.study.identity() != identity:
        _ANALYSES.clear()
        analysis = _analysis(results_dir, options)
        if analysis.study.identity() != identity:
            store.set(f"{key}:chunk:{index}", {"done": 0, "worker": worker,
                                               "error": f"{results_dir}: the folder changed since the job was started"})
            return
    chunk_work(analysis, store, PermutationRequest.from_dict(request), start, stop, key, index, worker)


def app_from_env() -> Celery:
    """For ``celery -A dashboard.jobs.worker:celery_app worker``: the URL from $CUE_REDIS_URL."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        raise RuntimeError(f"set {REDIS_ENV} to the Redis URL (e.g. redis://127.0.0.1:6379/0)")
    return make_celery(url)


def run_worker(redis_url: str, concurrency: int = 1, loglevel: str = "WARNING") -> None:
    """Run one Celery worker (``concurrency`` processes) in the foreground."""
    app = make_celery(redis_url)
    app.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}", "--pool=prefork",
                     f"--hostname=cue-{os.getpid()}@{socket.gethostname()}", "--without-gossip", "--without-mingle"])
