"""Benchmark of the statistics core on the sample study (22 participants x 4 images, 2 mm).

Prints medians of repeated runs and ratios against a naive path measured in the same
run:

- group model + cluster table of one contrast: ours (closed-form cells model over the
  masked voxels, SPM cluster table with RFT p-values, smoothness already estimated for
  this model and subset) vs nilearn's SecondLevelModel + compute_contrast +
  get_clusters_table on the same 88 images (the field's standard path);
- smoothness estimation (once per model and participant subset);
- SPM first eigenvariate of the interaction cluster vs a full numpy SVD;
- LTS regression with n = 22 (R ltsReg-equivalent) vs the same algorithm written with
  Python loops over the starting subsets.

Usage: python scripts/bench_stats.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np

from dashboard.analysis import Analysis, Threshold
from dashboard.results import load_study
from dashboard.stats.extract import cluster_values
from dashboard.stats.lts import lts_regression
from dashboard.stats.models import fit_group_model
from dashboard.stats.rft import estimate_smoothness

SAMPLE = Path(__file__).resolve().parent.parent / "sample_results"


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def naive_nilearn(study, contrast: str):
    """nilearn's second-level path on the same images (already in memory) and design."""
    import nibabel as nib
    import pandas as pd
    from nilearn.glm.second_level import SecondLevelModel
    from nilearn.reporting import get_clusters_table

    imgs, rows = [], []
    for pid in study.participant_ids:
        for cond in study.condition_ids:
            img = nib.load(str(study.image_paths[(pid, cond)]))
            imgs.append(nib.Nifti1Image(img.get_fdata(dtype=np.float32), img.affine))  # in memory, like ours
            rows.append({c: float(c == cond) for c in study.condition_ids})
    design = pd.DataFrame(rows)
    mask = nib.Nifti1Image(study.mask.astype(np.uint8), study.affine)

    def run():
        model = SecondLevelModel(mask_img=mask, minimize_memory=True).fit(imgs, design_matrix=design)
        weights = study.contrast(contrast).weights
        tmap = model.compute_contrast([weights.get(c, 0.0) for c in study.condition_ids], output_type="stat")
        return get_clusters_table(tmap, stat_threshold=3.19, cluster_threshold=10)

    return run


def naive_lts(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The raw FAST-LTS search written with Python loops (starts, C-steps)."""
    n = x.size
    h = (n + 2 + 1) // 2
    X = np.column_stack([np.ones(n), x])
    best = (np.inf, None)
    for i, j in combinations(range(n), 2):
        if x[i] == x[j]:
            continue
        beta = np.linalg.solve(X[[i, j]], y[[i, j]])
        for _ in range(2):
            r2 = (y - X @ beta) ** 2
            sub = np.argsort(r2)[:h]
            beta = np.linalg.lstsq(X[sub], y[sub], rcond=None)[0]
        obj = np.sort((y - X @ beta) ** 2)[:h].sum()
        if obj < best[0]:
            best = (obj, beta)
    return float(best[1][0]), float(best[1][1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--naive-repeats", type=int, default=3)
    args = ap.parse_args()

    study = load_study(SAMPLE, check_data=False)
    data = study.participant_data
    analysis = Analysis(study)
    everyone = analysis.subset(None)
    analysis.smoothness("interaction", "cells", everyone)  # estimated once per model/subset

    def ours():
        analysis._fits.clear()  # refit every time: model + table, as after a new subset
        return analysis.clusters("interaction", directions=("pos",), threshold=Threshold(p_unc=0.001), extent=10)

    rows = []
    t_ours = median_ms(ours, args.repeats)
    t_naive = median_ms(naive_nilearn(study, "interaction"), args.naive_repeats)
    rows.append(("group model + cluster table (1 contrast, 22x4 images)", t_ours, "nilearn SecondLevelModel + get_clusters_table", t_naive))

    fit = fit_group_model(data, study.condition_ids, "cells")
    t_smooth = median_ms(lambda: estimate_smoothness(fit.residuals(), study.mask, fit.df, study.voxel_size), max(3, args.repeats // 3))
    rows.append(("smoothness estimate (once per model + subset)", t_smooth, "", float("nan")))

    table = analysis.clusters("interaction", threshold=Threshold(p_unc=0.001))
    vox, _ = analysis.cluster_voxels(table, (14, 64, 14))
    y = data[:, :, vox].reshape(-1, vox.size).astype(np.float64)
    t_ev = median_ms(lambda: cluster_values(data, vox, 0, "eigenvariate"), args.repeats)
    t_ev_naive = median_ms(lambda: np.linalg.svd(y, full_matrices=True), args.repeats)
    rows.append((f"first eigenvariate ({vox.size} voxels x 88 images)", t_ev, "numpy full SVD", t_ev_naive))

    x = study.participants["cocaine_duration_years"].to_numpy(float)
    values = cluster_values(data, vox, 0, "eigenvariate")
    t_lts = median_ms(lambda: lts_regression(x, values), args.repeats)
    t_lts_naive = median_ms(lambda: naive_lts(x, values), args.naive_repeats)
    rows.append(("LTS regression, n = 22 (ltsReg defaults)", t_lts, "same search with Python loops", t_lts_naive))

    print(f"benchmark on {study.root} ({study.n_voxels} in-mask voxels), medians of {args.repeats} runs (naive: {args.naive_repeats})")
    print(f"{'what':58s} {'ours ms':>9s} {'naive ms':>10s} {'speed-up':>9s}  naive path")
    for what, ours_ms, naive_what, naive_ms in rows:
        ratio = f"{naive_ms / ours_ms:8.1f}x" if np.isfinite(naive_ms) else "        -"
        naive_txt = f"{naive_ms:10.1f}" if np.isfinite(naive_ms) else "         -"
        print(f"{what:58s} {ours_ms:9.1f} {naive_txt} {ratio}  {naive_what}")
    print("targets (issue 3): model + table < 150 ms, LTS < 50 ms")


if __name__ == "__main__":
    main()
