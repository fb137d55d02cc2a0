"""Permutation jobs on real Celery workers: a real redis-server (broker and job store),
two `cue-dashboard worker` processes; one job split into chunks that both workers run,
merged into exactly the null of a single-process run; a second server process (here: a
second PermutationJobs on the same Redis) finds the finished result; cancel stops the
workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from dashboard import permutation as perm
from dashboard.analysis import Analysis
from dashboard.formats import OpenOptions, open_study
from dashboard.jobs.permute import CeleryExecutor, LocalExecutor, PermutationJobs
from dashboard.jobs.store import RedisStore
from dashboard.jobs.worker import make_celery, open_options_dict

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders" / "onesample"

pytestmark = pytest.mark.slow


def _jobs(redis_url: str, analysis: Analysis, chunk_flips: int) -> PermutationJobs:
    executor = CeleryExecutor(make_celery(redis_url), str(SPM.resolve()), open_options_dict(OpenOptions()), chunk_flips=chunk_flips)
    return PermutationJobs(analysis, RedisStore(redis_url), executor)


def test_pc001_chunks_on_two_workers_merge_to_the_single_process_null(redis_url, workers):
    # the server opened the folder by a relative path (as `serve tests/data/...`); the
    # workers get its absolute path: one study identity all the same
    analysis = Analysis(open_study(os.path.relpath(SPM)))
    table = analysis.clusters("1", directions=("pos", "neg"), extent=0, model="cells")
    request = perm.PermutationRequest("1", table.height, ("pos", "neg"), "design", tuple(analysis.study.participant_ids), 6000, 3)
    jobs = _jobs(redis_url, analysis, chunk_flips=500)
    seen: list[dict] = []
    final = jobs.run(request, seen.append)
    assert final["status"] == "done", final
    assert max(s.get("workers", 0) for s in seen) == 2  # both workers took chunks
    assert any(0 < s.get("done", 0) < 6000 for s in seen)  # progress was reported on the way
    got = jobs.result(request)
    assert got is not None and got.null.n == 6000 and got.complete
    alone = perm.run(analysis, request)  # one process, no chunks
    for d in ("pos", "neg"):
        for stat in ("max_t", "max_extent", "max_mass"):
            np.testing.assert_allclose(got.null.stats[d][stat], alone.null.stats[d][stat], rtol=1e-12, atol=1e-12)
    # another process of the lab server (its own Analysis, the same Redis) is answered from the store
    other = PermutationJobs(Analysis(open_study(SPM)), RedisStore(redis_url), LocalExecutor())
    assert other.state(request)["status"] == "done"
    started = time.perf_counter()
    assert other.run(request)["status"] == "done"
    assert time.perf_counter() - started < 1.0
    np.testing.assert_array_equal(other.result(request).null.stats["pos"]["max_t"], got.null.stats["pos"]["max_t"])


def test_pc002_cancel_stops_the_workers(redis_url, workers):
    analysis = Analysis(open_study(SPM))
    table = analysis.clusters("1", directions=("pos",), extent=0, model="cells")
    request = perm.PermutationRequest("1", table.height, ("pos",), "design", tuple(analysis.study.participant_ids), 100_000, 4)
    jobs = _jobs(redis_url, analysis, chunk_flips=20_000)
    cancelled = {"sent": False}

    def on_state(state: dict) -> None:
        if state.get("done", 0) > 2000 and not cancelled["sent"]:
            jobs.cancel(request)
            cancelled["sent"] = True

    started = time.perf_counter()
    final = jobs.run(request, on_state)
    assert cancelled["sent"] and final["status"] == "cancelled", final
    assert final["done"] < 100_000
    assert time.perf_counter() - started < 60
    assert jobs.result(request) is None
