"""The permutation job engine over a folder store (dashboard.jobs): a finished job is
answered from the store, a failure is a state every follower sees, a job whose process
died is taken over, following never starts a job, and cancel keeps no result."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard import permutation as perm
from dashboard.analysis import Analysis
from dashboard.jobs.permute import LOCK_S, LocalExecutor, PermutationJobs
from dashboard.jobs.store import DiskStore
from dashboard.results import load_study


@pytest.fixture
def setup(tiny_study, tmp_path):
    analysis = Analysis(load_study(tiny_study))
    request = perm.PermutationRequest("placebo", 2.0, ("pos", "neg"), "paired", tuple(analysis.study.participant_ids), 40, 1)
    return analysis, request, DiskStore(str(tmp_path / "store"))


class Failing:
    def execute(self, jobs, request, key, on_state):
        raise RuntimeError("worker exploded")


def test_jb001_done_once_then_answered_from_the_store(setup):
    analysis, request, store = setup
    jobs = PermutationJobs(analysis, store, LocalExecutor())
    assert jobs.state(request) is None
    seen: list[dict] = []
    assert jobs.run(request, seen.append)["status"] == "done"
    assert seen[0]["status"] == "running" and seen[-1]["status"] == "done"
    result = jobs.result(request)
    assert result is not None and result.complete and result.null.n == 40  # 2^6 = 64 > 40: random flips
    again = PermutationJobs(analysis, store, Failing())  # would fail if it ran anything
    assert again.run(request)["status"] == "done"
    other = perm.PermutationRequest(**{**request.__dict__, "seed": 2})
    assert again.state(other) is None  # another seed is another question


def test_jb002_failure_is_a_state_and_releases_the_lock(setup):
    analysis, request, store = setup
    jobs = PermutationJobs(analysis, store, Failing())
    final = jobs.run(request)
    assert final["status"] == "failed" and final["error"] == "worker exploded"
    assert store.get(jobs.key(request) + ":lock") is None
    assert jobs.state(request)["status"] == "failed"
    assert PermutationJobs(analysis, store, LocalExecutor()).run(request)["status"] == "done"  # a new start runs it


def test_jb003_a_dead_runner_is_stalled_and_taken_over(setup):
    analysis, request, store = setup
    jobs = PermutationJobs(analysis, store, LocalExecutor())
    key = jobs.key(request)
    store.set(key + ":state", {"status": "running", "done": 8, "total": 40, "started": time.time() - LOCK_S * 2})  # no lock: its process died
    assert jobs.state(request)["status"] == "stalled"
    assert jobs.run(request, follow_only=True)["status"] == "stalled"  # following never starts it
    assert jobs.run(request)["status"] == "done"


def test_jb004_cancel_keeps_no_result_and_a_follower_sees_it(setup):
    analysis, _, store = setup
    request = perm.PermutationRequest("placebo", 2.0, ("pos",), "paired", tuple(analysis.study.participant_ids), 64, 1, tfce=True)
    jobs = PermutationJobs(analysis, store, LocalExecutor())
    followed: dict = {}
    cancelled = threading.Event()

    def on_state(state: dict) -> None:
        if state.get("done", 0) >= 16 and not cancelled.is_set():
            cancelled.set()
            follower = threading.Thread(target=lambda: followed.update(PermutationJobs(analysis, store, LocalExecutor()).run(
                request, follow_only=True)))
            follower.start()
            time.sleep(0.3)
            jobs.cancel(request)
            followed["thread"] = follower

    final = jobs.run(request, on_state)
    followed["thread"].join(10)
    assert final["status"] == "cancelled" and 16 <= final["done"] < 64
    assert followed["status"] == "cancelled"
    assert jobs.result(request) is None
    assert jobs.run(request)["status"] == "done"  # a new start clears the cancel flag


def test_jb005_one_identity_for_a_folder_opened_by_relative_or_absolute_path(tiny_study, monkeypatch):
    """A server and its workers open the same folder by different spellings of its path;
    job keys (and the workers' stale-folder check) must agree."""
    monkeypatch.chdir(tiny_study.parent)
    relative = load_study(tiny_study.name)
    absolute = load_study(tiny_study.resolve())
    assert relative.identity() == absolute.identity()
