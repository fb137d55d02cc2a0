"""Benchmark of sign-flip permutation inference on the sample study (22 participants,
79x95x79 grid, 235k in-mask voxels), contrast ``placebo``, model ``paired``, cluster-forming
height T at p < 0.001 (df 21), positive direction only (the one-sided test nilearn runs).

Prints medians and every run of:

(a) ours, the app's path (``dashboard.permutation.run``): 5000 flips, null of max T,
    max cluster extent and max cluster mass (18 neighbours, SPM's), one process, one thread;
(b) the same null with nilearn's settings (6 neighbours) against nilearn's
    ``non_parametric_inference`` (threshold=0.001, two_sided_test=False, n_jobs=1, the same
    mask through a NiftiMasker): nilearn's time of a run with ``--nilearn-perms`` flips
    divided by that number (its fixed costs are not subtracted), and the ratio per flip;
(c) ours with TFCE as well (1000 flips; with fewer, the 1000-flip time extrapolated).

BLAS and OpenMP are limited to one thread (unless set in the environment), as nilearn
with n_jobs=1 runs.

Usage: python scripts/bench_permute.py [--n-perm 5000] [--repeats 3] [--nilearn-perms 40]
                                       [--tfce-perms 1000] [--skip-tfce]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402  (the thread limits must be set before numpy is imported)
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from dashboard.analysis import Analysis  # noqa: E402
from dashboard.formats import open_study  # noqa: E402
from dashboard.permutation import PermutationRequest, run, sign_flip_images  # noqa: E402
from dashboard.stats import permutation as perm  # noqa: E402
from dashboard.stats.thresholds import t_threshold  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_results"
CONTRAST = "placebo"
P_CLUSTER = 0.001
TFCE_REFERENCE = 1000  # flips the TFCE target is stated for


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{p} {version(p)}" for p in ("numpy", "scipy", "connected-components-3d", "tfce", "nilearn"))
    return (f"{cpu}; {os.cpu_count()} cores ({usable} usable); Python {platform.python_version()}; {versions}; "
            f"OMP/BLAS threads {os.environ['OMP_NUM_THREADS']}/{os.environ['OPENBLAS_NUM_THREADS']}")


def nilearn_run(paths: list[str], mask_path: str, n_perm: int, seed: int) -> tuple[float, dict[str, Any]]:
    """Seconds of one non_parametric_inference call (everything it does) and its maps."""
    import pandas as pd
    from nilearn.glm.second_level import non_parametric_inference
    from nilearn.maskers import NiftiMasker

    design = pd.DataFrame({"intercept": np.ones(len(paths))})
    masker = NiftiMasker(mask_img=mask_path, standardize=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's own deprecation and int64-image notices
        t0 = time.perf_counter()
        out = non_parametric_inference(paths, design_matrix=design, mask=masker, n_perm=n_perm, two_sided_test=False,
                                       threshold=P_CLUSTER, n_jobs=1, random_state=seed)
        return time.perf_counter() - t0, out


def row(name: str, n: int, runs: list[float], target: str = "", ok: bool | None = None) -> str:
    med = statistics.median(runs)
    flag = "" if ok is None else ("  yes" if ok else "  NO")
    all_runs = " ".join(f"{r:.2f}" for r in runs)
    return f"{name:<38} {n:>6} {med:>9.2f} {1000 * med / n:>9.2f}   {all_runs:<26} {target}{flag}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-perm", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nilearn-perms", type=int, default=40)
    ap.add_argument("--ours-6conn-perms", type=int, default=1000, help="flips of ours timed with nilearn's settings for the ratio")
    ap.add_argument("--tfce-perms", type=int, default=TFCE_REFERENCE)
    ap.add_argument("--tfce-jobs", type=int, default=1, help="threads of the TFCE transform (default 1)")
    ap.add_argument("--skip-tfce", action="store_true")
    args = ap.parse_args()

    print("machine:", machine())
    t0 = time.perf_counter()
    analysis = Analysis(open_study(SAMPLE))
    study = analysis.study
    images = sign_flip_images(analysis, CONTRAST, "paired", ())
    n = images.shape[0]
    height = t_threshold(P_CLUSTER, n - 1)
    grid = perm.Grid(study.mask)
    print(f"study: {SAMPLE.name}, contrast {CONTRAST!r}, model paired, {n} participants, grid {study.shape}, "
          f"{images.shape[1]} voxels; height T > {height:.4f} (p < {P_CLUSTER}, df {n - 1}), direction pos; "
          f"loaded in {time.perf_counter() - t0:.1f} s")
    print(f"\n{'':<38} {'flips':>6} {'median s':>9} {'ms/flip':>9}   {'runs (s)':<26} target")

    # (a) the app's path
    runs = []
    for r in range(args.repeats):
        request = PermutationRequest(CONTRAST, height, ("pos",), "paired", n_perm=args.n_perm, seed=r)
        t0 = time.perf_counter()
        result = run(analysis, request)
        runs.append(time.perf_counter() - t0)
        assert result.complete and result.null.n == args.n_perm
    target = "< 60 s" if args.n_perm == 5000 else f"< {60 * args.n_perm / 5000:.0f} s (60 s per 5000)"
    print(row("(a) ours: max T + extent + mass, 18-nb", args.n_perm, runs, target, statistics.median(runs) < 60 * args.n_perm / 5000), flush=True)

    # (b) nilearn's settings: ours (6 neighbours) and nilearn, per flip
    ours6, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        import nibabel as nib

        paths = []
        for i, pid in enumerate(study.participant_ids):
            vol = np.zeros(study.shape, np.float32)
            vol[study.mask] = images[i]
            path = Path(tmp) / f"{pid}_{CONTRAST}.nii.gz"
            nib.save(nib.Nifti1Image(vol, study.affine), path)
            paths.append(str(path))
        mask_path = str(Path(tmp) / "mask.nii.gz")
        nib.save(nib.Nifti1Image(study.mask.astype(np.uint8), study.affine), mask_path)
        t_ours = perm.observed(images, grid, height, connectivity=6).t
        for r in range(args.repeats):
            signs, _ = perm.flip_signs(n, args.ours_6conn_perms, seed=100 + r)
            t0 = time.perf_counter()
            perm.null_distribution(images, grid, signs, height, directions=("pos",), connectivity=6)
            ours6.append(time.perf_counter() - t0)
            seconds, out = nilearn_run(paths, mask_path, args.nilearn_perms, seed=r)
            theirs.append(seconds)
        t_theirs = np.asarray(out["t"].get_fdata())[study.mask]
    print(row("(b) ours, nilearn's settings (6-nb)", args.ours_6conn_perms, ours6), flush=True)
    print(row("    nilearn non_parametric_inference", args.nilearn_perms, theirs), flush=True)
    per_ours = statistics.median(ours6) / args.ours_6conn_perms
    per_theirs = statistics.median(theirs) / args.nilearn_perms
    ratio = per_theirs / per_ours
    ratios = [(b / args.nilearn_perms) / (a / args.ours_6conn_perms) for a, b in zip(ours6, theirs, strict=True)]
    print(f"    nilearn / ours per flip: {ratio:.1f}x faster (runs {' '.join(f'{x:.1f}' for x in ratios)}); "
                 f"target >= 10x: {'yes' if ratio >= 10 else 'NO'}; same T: max |diff| {np.abs(t_theirs - t_ours).max():.1e}", flush=True)

    # (c) TFCE
    if not args.skip_tfce:
        runs = []
        for r in range(args.repeats):
            signs, _ = perm.flip_signs(n, args.tfce_perms, seed=200 + r)
            t0 = time.perf_counter()
            perm.null_distribution(images, grid, signs, height, directions=("pos",), tfce=True, n_jobs=args.tfce_jobs)
            runs.append(time.perf_counter() - t0)
        med = statistics.median(runs)
        extrapolated = med * TFCE_REFERENCE / args.tfce_perms
        print(row(f"(c) ours + TFCE (n_jobs={args.tfce_jobs})", args.tfce_perms, runs, "< 300 s per 1000",
                         extrapolated < 300), flush=True)
        if args.tfce_perms != TFCE_REFERENCE:
            print(f"    extrapolated to {TFCE_REFERENCE} flips: {extrapolated:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
