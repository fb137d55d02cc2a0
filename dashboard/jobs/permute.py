"""Permutation jobs: started once per question, followed by anyone who asks the same
question, cancellable, and finished results kept for every user and process.

A job is keyed by :meth:`PermutationRequest.key` (the study's identity and every
setting).  Its records in the :class:`~dashboard.jobs.store.JobStore`:

- ``<key>:state``  {status: running | done | cancelled | failed, done, total, rate,
  started, updated, workers, error}
- ``<key>:lock``   held by the process running (or dispatching) it, refreshed with each
  batch and expiring, so a job whose process died can be taken over
- ``<key>:cancel`` set by whoever cancels; the runner checks it after each batch
- ``<key>:result`` the finished :class:`PermutationResult` (kept :data:`RESULT_EXPIRE_S`)

Executors: :class:`LocalExecutor` runs the flips in the calling process (the CLI; a
Dash background-callback process); :class:`CeleryExecutor` splits them into chunks for
Celery workers (:mod:`dashboard.jobs.worker`) and merges their parts in flip order, so
the result is the same whatever the number of workers.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dashboard.analysis import Analysis
from dashboard.jobs.store import JobStore
from dashboard.permutation import PermutationRequest, PermutationResult, chunk_bounds, plan, run_chunk
from dashboard.stats.permutation import NullDistribution

LOCK_S = 30.0  # a runner that has not reported for this long is taken for dead
RESULT_EXPIRE_S = 7 * 24 * 3600.0
POLL_S = 0.25
CHUNK_FLIPS = 500  # flips per Celery task: small enough to spread, large enough to amortise loading

Progress = Callable[[dict[str, Any]], None]


def _now() -> float:
    return time.time()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Executor(Protocol):
    def execute(self, jobs: PermutationJobs, request: PermutationRequest, key: str, on_state: Progress) -> PermutationResult | None: ...


@dataclass
class PermutationJobs:
    """The permutation jobs of one study, over one store."""

    analysis: Analysis
    store: JobStore
    executor: Executor
    identity: str = ""

    def __post_init__(self) -> None:
        self.identity = self.identity or self.analysis.study.identity()

    def key(self, request: PermutationRequest) -> str:
        return request.key(self.identity)

    # -- reading ---------------------------------------------------------------------
    def state(self, request: PermutationRequest) -> dict[str, Any] | None:
        """The job's state, or None when it was never started (or expired)."""
        key = self.key(request)
        state: dict[str, Any] | None = self.store.get(key + ":state")
        if self.store.get(key + ":result") is not None:
            return {**(state or {}), "status": "done"}
        if state and state.get("status") == "running" and self.store.get(key + ":lock") is None:
            return {**state, "status": "stalled"}  # its process died: a new start takes over
        return state

    def result(self, request: PermutationRequest) -> PermutationResult | None:
        data = self.store.get(self.key(request) + ":result")
        return None if data is None else PermutationResult.from_dict(data)

    # -- acting ----------------------------------------------------------------------
    def cancel(self, request: PermutationRequest) -> None:
        self.store.set(self.key(request) + ":cancel", True, expire=RESULT_EXPIRE_S)  # cleared by the next start

    def cancelled(self, key: str) -> bool:
        return bool(self.store.get(key + ":cancel"))

    def report(self, key: str, state: dict[str, Any]) -> dict[str, Any]:
        """Record progress and keep the lock alive."""
        state = {**state, "updated": _now()}
        self.store.set(key + ":state", state, expire=RESULT_EXPIRE_S)
        self.store.set(key + ":lock", _owner(), expire=LOCK_S)
        return state

    def run(self, request: PermutationRequest, on_state: Progress | None = None, *, follow_only: bool = False) -> dict[str, Any]:
        """Run the job, or follow it when another process already runs it; returns the
        final state (done, cancelled or failed).  ``on_state`` sees every update.  With
        ``follow_only`` a job that is not running is not started (its state is returned)."""
        key = self.key(request)
        notify = on_state or (lambda state: None)
        while True:
            if self.store.get(key + ":result") is not None:
                final = self.state(request) or {"status": "done"}
                notify(final)
                return final
            if follow_only and self.store.get(key + ":lock") is None:
                return self.state(request) or {"status": "none"}
            if not follow_only and self.store.add(key + ":lock", _owner(), expire=LOCK_S):
                return self._own(request, key, notify)
            state = self.state(request)
            if state is not None:
                notify(state)
                if state.get("status") in ("cancelled", "failed"):
                    return state
            time.sleep(POLL_S)

    def _own(self, request: PermutationRequest, key: str, notify: Progress) -> dict[str, Any]:
        self.store.delete(key + ":cancel")
        started = _now()
        state = self.report(key, {"status": "running", "done": 0, "total": 0, "started": started, "rate": 0.0, "workers": 1})
        notify(state)
        try:
            result = self.executor.execute(self, request, key, notify)
        except Exception as exc:  # noqa: BLE001  (the job's failure is its state, for every follower to see)
            state = self.report(key, {**state, "status": "failed", "error": str(exc) or type(exc).__name__})
            self.store.delete(key + ":lock")
            notify(state)
            return state
        last = self.store.get(key + ":state") or state
        if result is None or not result.complete:
            final = {**last, "status": "cancelled", "updated": _now()}
            self.store.set(key + ":state", final, expire=RESULT_EXPIRE_S)
        else:
            self.store.set(key + ":result", result.to_dict(), expire=RESULT_EXPIRE_S)
            final = {**last, "status": "done", "done": result.null.n, "total": result.n_planned, "updated": _now(),
                     "seconds": result.seconds}
            self.store.set(key + ":state", final, expire=RESULT_EXPIRE_S)
        self.store.delete(key + ":lock")
        notify(final)
        return final


def progress_state(state: dict[str, Any], done: int, total: int, workers: int = 1) -> dict[str, Any]:
    """State with done/total, rate (flips/s) and seconds left."""
    elapsed = max(_now() - float(state.get("started", _now())), 1e-9)
    rate = done / elapsed
    left = (total - done) / rate if rate > 0 else None
    return {**state, "done": done, "total": total, "rate": rate, "left": left, "workers": workers}


class LocalExecutor:
    """The flips in this process (``n_jobs`` threads for TFCE)."""

    def __init__(self, n_jobs: int = 1):
        self.n_jobs = n_jobs

    def execute(self, jobs: PermutationJobs, request: PermutationRequest, key: str, on_state: Progress) -> PermutationResult | None:
        from dashboard.permutation import run

        state = jobs.store.get(key + ":state") or {"started": _now()}

        def on_batch(done: int, total: int) -> bool:
            nonlocal state
            state = jobs.report(key, progress_state(state, done, total))
            on_state(state)
            return not jobs.cancelled(key)

        return run(jobs.analysis, request, on_batch, n_jobs=self.n_jobs)


class CeleryExecutor:
    """Chunks of flips as Celery tasks (:func:`dashboard.jobs.worker.permute_chunk`), their
    progress read from the store, their parts merged in flip order."""

    def __init__(self, celery_app: Any, results_dir: str, open_options: dict[str, Any], chunk_flips: int = CHUNK_FLIPS,
                 timeout_s: float = 6 * 3600.0):
        self.app = celery_app
        self.results_dir = results_dir
        self.open_options = open_options
        self.chunk_flips = chunk_flips
        self.timeout_s = timeout_s

    def execute(self, jobs: PermutationJobs, request: PermutationRequest, key: str, on_state: Progress) -> PermutationResult | None:
        _, signs, exhaustive = plan(jobs.analysis, request)
        total = int(signs.shape[0])
        chunks = chunk_bounds(total, max(1, -(-total // self.chunk_flips)))
        for i in range(len(chunks)):
            jobs.store.delete(f"{key}:part:{i}")
            jobs.store.delete(f"{key}:chunk:{i}")
        task = self.app.tasks["cue.permute_chunk"]
        for i, (a, b) in enumerate(chunks):
            task.apply_async(args=[self.results_dir, self.open_options, jobs.identity, request.to_dict(), a, b, key, i])
        state = jobs.store.get(key + ":state") or {"started": _now()}
        deadline = _now() + self.timeout_s
        while True:
            progress = [jobs.store.get(f"{key}:chunk:{i}") or {} for i in range(len(chunks))]
            failed = [p["error"] for p in progress if p.get("error")]
            if failed:
                raise RuntimeError(f"a worker failed: {failed[0]}")
            done = sum(int(p.get("done", 0)) for p in progress)
            workers = len({p["worker"] for p in progress if p.get("worker")})
            state = jobs.report(key, {**progress_state(state, done, total, workers), "queued": sum(1 for p in progress if not p)})
            on_state(state)
            parts = [jobs.store.get(f"{key}:part:{i}") for i in range(len(chunks))]
            if all(p is not None for p in parts):
                break
            if jobs.cancelled(key):
                return None
            if all(p.get("cancelled") for p in progress if p) and any(progress):
                return None
            if _now() > deadline:
                raise RuntimeError("the workers did not finish in time")
            time.sleep(POLL_S)
        null = NullDistribution.concatenate([NullDistribution.from_dict(p) for p in parts])
        elapsed = _now() - float(state.get("started", _now()))
        for i in range(len(chunks)):
            jobs.store.delete(f"{key}:part:{i}")
        return PermutationResult(request, null, total, exhaustive, elapsed)


def chunk_work(analysis: Analysis, store: JobStore, request: PermutationRequest, start: int, stop: int, key: str, index: int,
               worker: str) -> None:
    """One chunk, as a worker runs it: progress to ``<key>:chunk:<i>``, the part to
    ``<key>:part:<i>``; stops early when the job is cancelled."""
    record = f"{key}:chunk:{index}"

    def on_batch(done: int) -> bool:
        store.set(record, {"done": done, "worker": worker}, expire=RESULT_EXPIRE_S)
        return not store.get(key + ":cancel")

    store.set(record, {"done": 0, "worker": worker}, expire=RESULT_EXPIRE_S)
    try:
        null = run_chunk(analysis, request, start, stop, on_batch)
    except Exception as exc:
        store.set(record, {"done": 0, "worker": worker, "error": str(exc) or type(exc).__name__}, expire=RESULT_EXPIRE_S)
        raise
    if null.n < stop - start:
        store.set(record, {"done": null.n, "worker": worker, "cancelled": True}, expire=RESULT_EXPIRE_S)
        return
    store.set(f"{key}:part:{index}", null.to_dict(), expire=RESULT_EXPIRE_S)
