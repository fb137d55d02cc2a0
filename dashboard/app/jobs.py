"""Background jobs: work that takes seconds (leave-one-out refits of a cluster; later
permutation inference) runs as Dash background callbacks, off the request threads, with
progress and cancel, and its results cached by what they depend on.

The manager is Dash's ``DiskcacheManager`` (no extra service: ``make run`` just works):
each job runs in a forked process that inherits the loaded study, its progress and result
go through a diskcache folder that only this user can open, and finished results stay
there (``cache_by``: the study's identity; ``expire``) so the same question asked again,
from any tab, is answered at once.
"""

from __future__ import annotations

from typing import Any

from dash import DiskcacheManager

RESULT_EXPIRE_S = 24 * 3600  # finished results are kept a day


def fork_safe_blas() -> None:
    """Run BLAS on one thread per request in this process, for good.

    Dash's background callbacks fork the server process.  A fork while another request
    thread is inside a multi-threaded OpenBLAS call deadlocks: OpenBLAS's atfork handler
    (``blas_thread_shutdown_``) waits for its pool while the forking thread holds the GIL
    the matrix product needs to return (seen in CI: a model switch hung the server).
    With one BLAS thread no pool is at work; requests still run in parallel threads."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def background_manager(identity: str, cache_dir: str) -> Any:
    """The Dash background-callback manager of one app: diskcache in ``cache_dir`` (a
    private folder, never inside the results folder), results cached per study
    (``identity``: :meth:`dashboard.results.Study.identity`, read once at start-up)."""
    import diskcache

    return DiskcacheManager(diskcache.Cache(cache_dir), cache_by=[lambda: identity], expire=RESULT_EXPIRE_S)


def permutation_jobs(analysis: Any, jobs_dir: str, *, redis_url: str | None = None, celery: bool = False,
                     results_dir: str = "", open_options: Any = None) -> Any:
    """The app's permutation jobs (:class:`dashboard.jobs.permute.PermutationJobs`): their
    store is Redis when the server has one (shared with other servers and the workers),
    else a folder beside the background callbacks'; they run in the background-callback
    process, or on Celery workers with ``celery`` (which needs Redis)."""
    import os

    from dashboard.jobs.permute import CeleryExecutor, LocalExecutor, PermutationJobs
    from dashboard.jobs.store import open_store

    if celery and not redis_url:
        raise ValueError("Celery workers need a Redis URL (--redis-url)")
    store = open_store(redis_url=redis_url, path=os.path.join(jobs_dir, "permute"))
    if celery:
        from dashboard.jobs.worker import make_celery, open_options_dict

        assert redis_url is not None
        executor: Any = CeleryExecutor(make_celery(redis_url), results_dir, open_options_dict(open_options))
    else:
        executor = LocalExecutor(n_jobs=1)
    return PermutationJobs(analysis, store, executor)


def uncached_manager(cache_dir: str) -> Any:
    """A background-callback manager that never answers from an earlier call (no
    ``cache_by``, no ``expire``: Dash deletes a result once read), for jobs whose results
    live in their own store (permutations: :mod:`dashboard.jobs.permute`)."""
    import diskcache

    return DiskcacheManager(diskcache.Cache(cache_dir))
