"""SPM12's results table (spm_list / spm_getSPM rules), checked on hand-built maps
against independent computations (brute force, scipy, statsmodels)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from dashboard.stats import rft
from dashboard.stats.spm_table import excursion_set, spm_table, spm_z

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
DF = 40.0
SMOOTH = rft.Smoothness(fwhm_vox=(2.0, 2.0, 2.0), resels=(1.0, 30.0, 300.0, 1000.0), search_volume_vox=8000, df=DF)


def _blob_map() -> np.ndarray:
    """One big cluster (27 voxels), four small ones (1-4 voxels) and background at 0."""
    vol = np.zeros((20, 20, 20))
    vol[3:6, 3:6, 3:6] = 4.0
    vol[4, 4, 4] = 6.0
    vol[12, 12, 12] = 3.5  # 1 voxel
    vol[15, 3, 3:5] = 3.6  # 2 voxels
    vol[3, 15, 3:6] = 3.7  # 3 voxels
    vol[15, 15, 15:19] = 3.8  # 4 voxels
    vol[0, 0, 0] = np.nan  # outside the mask
    return vol


def test_st001_cluster_fdr_is_against_every_cluster_at_u_not_only_those_kept():
    vol = _blob_map()
    u = 3.0
    res = spm_table(vol, AFFINE, u, 10, SMOOTH, df=DF)
    assert res.table["k"].tolist() == [27]  # only the big cluster survives k >= 10
    all_sizes = np.array([27, 1, 2, 3, 4], float)
    p_all = rft.cluster_p_unc(all_sizes, u, SMOOTH)
    q_bh = multipletests(p_all, method="fdr_bh")[1]  # independent Benjamini-Hochberg
    assert res.table["p_fdr_cluster"].iloc[0] == pytest.approx(q_bh[0], rel=1e-12)
    # filtering the reference set first (the old, anti-conservative rule) gives q = p:
    assert res.table["p_fdr_cluster"].iloc[0] > p_all[0] * 1.5


def test_st002_peak_fdr_is_against_every_local_maximum_at_u():
    vol = _blob_map()
    u = 3.0
    res = spm_table(vol, AFFINE, u, 10, SMOOTH, df=DF)
    ref = excursion_set(vol, u).maxima
    # plateaus: every voxel is a maximum; the cube's 8 corners (4.0) touch the 6.0 centre
    # only through a corner, which 18-connectivity does not count
    assert set(np.unique(ref).tolist()) == {3.5, 3.6, 3.7, 3.8, 4.0, 6.0}
    assert np.count_nonzero(ref == 4.0) == 8
    pz = np.asarray(rft.expected_ec(ref, SMOOTH)) / rft.expected_ec(u, SMOOTH)
    q = multipletests(pz, method="fdr_bh")[1]
    assert res.table["p_fdr_peak"].iloc[0] == pytest.approx(q[np.argmax(ref)], rel=1e-12)


def test_st003_p_unc_and_z_are_spm_p_with_r1_not_the_exact_tail():
    vol = _blob_map()
    res = spm_table(vol, AFFINE, 3.0, 0, SMOOTH, df=DF)
    t = res.table["peak_t"].to_numpy()
    tail = stats.t.sf(t, DF)
    expected = 1 - np.exp(-(tail + np.finfo(float).eps))
    np.testing.assert_allclose(res.table["p_unc"], expected, rtol=1e-9)  # (1 - exp loses digits that expm1 keeps)
    np.testing.assert_allclose(res.table["z_score"], stats.norm.isf(expected), rtol=1e-7)
    # ... which is not the exact tail: at p ~ 0.005 they differ by ~p/2 relative
    p_u = rft.spm_p_unc(stats.t.isf(0.005, DF), DF)
    assert float(p_u) == pytest.approx(0.005 - 0.005**2 / 2, rel=1e-4)
    assert spm_z(1e-17) == np.inf and spm_z(0.5) == pytest.approx(0.0, abs=1e-15)


def test_st004_set_level_p_is_poisson_tail_of_expected_clusters():
    vol = _blob_map()
    u, k = 3.0, 2
    res = spm_table(vol, AFFINE, u, k, SMOOTH, df=DF)
    c = 4  # clusters of >= 2 voxels: 27, 2, 3, 4
    assert res.table["c_set"].iloc[0] == c and res.table["c_set"].iloc[1:].isna().all()
    ec, _ = rft.expected_ec_and_cluster_resels(u, SMOOTH)
    lam = (ec + np.finfo(float).eps) * float(rft.cluster_p_unc(k, u, SMOOTH))
    by_hand = 1 - sum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(c))
    assert res.table["p_set"].iloc[0] == pytest.approx(by_hand, rel=1e-9)
    assert res.footer is not None and res.footer.expected_clusters == pytest.approx(lam, rel=1e-9)
    assert rft.set_level_p(1, 0, u, SMOOTH) == pytest.approx(1 - math.exp(-(ec + np.finfo(float).eps)), rel=1e-12)


def test_st005_footer_critical_extents_and_thresholds():
    vol = _blob_map()
    u = 3.0
    f = spm_table(vol, AFFINE, u, 0, SMOOTH, df=DF).footer
    assert f is not None
    sizes = np.array([27, 1, 2, 3, 4], float)
    pk = rft.cluster_p_fwe(sizes, u, SMOOTH)
    expected_fwe_c = sizes[pk <= 0.05].min() if (pk <= 0.05).any() else math.inf
    assert f.fwe_c_extent == expected_fwe_c
    q = multipletests(rft.cluster_p_unc(sizes, u, SMOOTH), method="fdr_bh")[1]
    assert f.fdr_c_extent == (sizes[q <= 0.05].min() if (q <= 0.05).any() else math.inf)
    assert f.fwe_p_height == pytest.approx(rft.t_threshold_fwe(0.05, SMOOTH))
    assert f.extent_p_unc is None and f.extent_p_fwe is None  # k = 0: SPM prints no extent p
    assert f.volume_voxels == 8000 and f.volume_resels == 1000.0 and f.resel_voxels == 8.0
    assert f.height_p_fwe == pytest.approx(rft.peak_p_fwe(u, SMOOTH))
    lines = f.lines()
    assert lines[0] == f"Height threshold: T = 3.00, p = {f.height_p_unc:.3f} ({f.height_p_fwe:.3f})"
    assert lines[1] == "Extent threshold: k = 0 voxels"
    assert lines[5] == "Degrees of freedom = [1.0, 40.0]"
    assert lines[6] == "FWHM = 4.0 4.0 4.0 mm mm mm; 2.0 2.0 2.0 {voxels}"
    assert lines[7] == "Volume: 64000 = 8000 voxels = 1000.0 resels"


def test_st006_excursion_maxima_match_brute_force():
    rng = np.random.default_rng(3)
    vol = rng.normal(size=(9, 8, 7))
    vol[2, 2, 2] = np.nan
    u = 0.5
    ref = excursion_set(vol, u)
    offsets = [d for d in itertools.product((-1, 0, 1), repeat=3) if 0 < sum(map(abs, d)) <= 2]
    brute = []
    for ijk in itertools.product(*map(range, vol.shape)):
        v = vol[ijk]
        if not v >= u:
            continue
        neigh = []
        for d in offsets:
            n = tuple(a + b for a, b in zip(ijk, d, strict=False))
            if all(0 <= a < s for a, s in zip(n, vol.shape, strict=False)):
                w = vol[n]
                neigh.append(w if w >= u else 0.0)  # spm_get_lm: voxels outside the set are 0
        if all(v >= w for w in neigh):
            brute.append(v)
    np.testing.assert_array_equal(np.sort(ref.maxima), np.sort(brute))


def test_st007_svc_thresholds_whole_volume_first_and_lists_16_maxima_4mm_apart():
    vol = _blob_map()
    roi = np.zeros(vol.shape, bool)
    roi[2:7, 2:7, 2:7] = True
    roi[12, 12, 12] = True  # a 1-voxel cluster that k >= 10 removes in the whole volume
    mask = np.isfinite(vol)
    res = spm_table(vol, AFFINE, 3.0, 10, SMOOTH, df=DF, svc_mask=roi, analysis_mask=mask)
    assert res.table["k"].unique().tolist() == [27]  # the small cluster stays out
    assert res.footer is not None and res.footer.max_peaks == 16 and res.footer.min_distance_mm == 4.0
    svc = rft.svc_smoothness(SMOOTH, roi, mask)
    assert res.footer.volume_voxels == svc.search_volume_vox
    assert res.table["p_fwe_peak"].iloc[0] == pytest.approx(rft.peak_p_fwe(6.0, svc))
    # FDR reference inside the ROI, before the extent threshold: the clusters 27 and 1
    q = multipletests(rft.cluster_p_unc(np.array([27.0, 1.0]), 3.0, svc), method="fdr_bh")[1]
    assert res.table["p_fdr_cluster"].iloc[0] == pytest.approx(q[0], rel=1e-12)


def test_st008_without_smoothness_only_height_columns():
    res = spm_table(_blob_map(), AFFINE, 3.0, 0, None, df=DF)
    assert res.footer is None
    assert res.table["p_fwe_peak"].isna().all() and res.table["p_set"].isna().all()
    assert res.table["z_score"].notna().all() and res.table["c_set"].iloc[0] == 5
