"""Scaling of a permutation job over Celery workers on this machine: the same 5000-flip
job (sample study, contrast ``placebo``, paired model, T at p < 0.001, positive
direction: max T, cluster extent and mass) in one process (``LocalExecutor``), then on
1 and on 2 ``cue-dashboard worker`` processes through a real redis-server (chunks of
500 flips), medians of ``--repeats`` runs, and the speed-up 1 -> 2 workers.  Each run
uses a new seed so that no result comes from the job store.

Usage: python scripts/bench_permute_celery.py [--n-perm 5000] [--repeats 3] [--chunk 500]
Needs redis-server on the PATH (Debian: apt-get install redis-server).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dashboard import permutation as perm
from dashboard.analysis import Analysis
from dashboard.formats import OpenOptions, open_study
from dashboard.jobs.permute import CeleryExecutor, LocalExecutor, PermutationJobs
from dashboard.jobs.store import DiskStore, RedisStore
from dashboard.jobs.worker import make_celery, open_options_dict
from dashboard.stats.thresholds import t_threshold

SAMPLE = Path(__file__).resolve().parent.parent / "sample_results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_workers(url: str, n: int, logdir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    procs = []
    for i in range(n):
        with (logdir / f"worker{i}.log").open("wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "dashboard.cli", "worker", "--redis-url", url], env=env,
                                          stdout=subprocess.DEVNULL, stderr=log))
    app = make_celery(url)
    deadline = time.monotonic() + 90
    while len(app.control.ping(timeout=1.0) or []) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{n} workers did not answer within 90 s (logs in {logdir})")
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-perm", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=500)
    args = ap.parse_args()
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    analysis = Analysis(open_study(SAMPLE))
    subset = tuple(analysis.study.participant_ids)
    height = t_threshold(0.001, len(subset) - 1)
    work = Path(tempfile.mkdtemp(prefix="cue-bench-celery-"))
    port = free_port()
    redis = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    seed = [100]
    results: dict[str, list[float]] = {}
    print(f"{os.cpu_count()} cores; {args.n_perm} flips, chunks of {args.chunk}; sample, placebo, paired, T > {height:.4f}, pos")

    def timed(name: str, jobs: PermutationJobs) -> None:
        for _ in range(args.repeats):
            seed[0] += 1
            request = perm.PermutationRequest("placebo", height, ("pos",), "paired", subset, args.n_perm, seed[0])
            started = time.perf_counter()
            final = jobs.run(request)
            elapsed = time.perf_counter() - started
            assert final["status"] == "done", final
            results.setdefault(name, []).append(elapsed)
        runs = results[name]
        print(f"{name:<28} median {statistics.median(runs):6.1f} s   runs {' '.join(f'{r:.1f}' for r in runs)}", flush=True)

    try:
        time.sleep(0.5)
        timed("one process (local)", PermutationJobs(analysis, DiskStore(str(work / "local")), LocalExecutor()))
        for n in (1, 2):
            procs = start_workers(url, n, work)
            try:
                executor = CeleryExecutor(make_celery(url), str(SAMPLE.resolve()), open_options_dict(OpenOptions()), chunk_flips=args.chunk)
                timed(f"{n} Celery worker{'s' if n > 1 else ''}", PermutationJobs(analysis, RedisStore(url), executor))
            finally:
                stop(procs)
        one, two = statistics.median(results["1 Celery worker"]), statistics.median(results["2 Celery workers"])
        local = statistics.median(results["one process (local)"])
        print(f"speed-up 1 -> 2 workers: {one / two:.2f}x (ideal 2.0 on 2 cores); 2 workers vs one process: {local / two:.2f}x")
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
