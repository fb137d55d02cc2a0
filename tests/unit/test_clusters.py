"""Tests for dashboard.stats.clusters against an independent brute-force reference.

The reference below is deliberately naive (plain Python loops over voxels, BFS flood
fill with an explicit list of 18 neighbour offsets, explicit neighbour comparisons,
explicit greedy distance filter) and shares no code with the module under test.
"""

from __future__ import annotations

import math
from collections import deque

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from dashboard.stats.clusters import TABLE_COLUMNS, ClusterResult, find_clusters

# --------------------------------------------------------------------------- reference

OFFSETS_18 = [
    (di, dj, dk)
    for di in (-1, 0, 1)
    for dj in (-1, 0, 1)
    for dk in (-1, 0, 1)
    if 1 <= abs(di) + abs(dj) + abs(dk) <= 2
]
OFFSETS_26 = [
    (di, dj, dk)
    for di in (-1, 0, 1)
    for dj in (-1, 0, 1)
    for dk in (-1, 0, 1)
    if (di, dj, dk) != (0, 0, 0)
]
assert len(OFFSETS_18) == 18 and len(OFFSETS_26) == 26


def _mm(affine, i, j, k):
    a = [[float(v) for v in row] for row in np.asarray(affine)]
    return tuple(a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3] for r in range(3))


def _tie_key(t, xyz):
    # documented order: T descending, then z ascending, y ascending, x descending (mm)
    x, y, z = (round(c, 6) for c in xyz)
    return (-t, z, y, -x)


def brute_force_table(stat, affine, u, extent=10, num=3, dis=8.0, offsets=OFFSETS_18, strict_distance=True):
    """Reference SPM-style table as a list of dict rows (plus the cluster voxel sets)."""
    ni, nj, nk = stat.shape
    value = {}
    supra = set()
    for i in range(ni):
        for j in range(nj):
            for k in range(nk):
                v = float(stat[i, j, k])
                if not math.isnan(v) and v > u:
                    supra.add((i, j, k))
                    value[(i, j, k)] = v

    def neighbours(vox):
        i, j, k = vox
        for di, dj, dk in offsets:
            n = (i + di, j + dj, k + dk)
            if 0 <= n[0] < ni and 0 <= n[1] < nj and 0 <= n[2] < nk:
                yield n

    seen = set()
    clusters = []
    for start in sorted(supra):
        if start in seen:
            continue
        seen.add(start)
        members = [start]
        queue = deque([start])
        while queue:
            cur = queue.popleft()
            for n in neighbours(cur):
                if n in supra and n not in seen:
                    seen.add(n)
                    members.append(n)
                    queue.append(n)
        if len(members) >= extent:
            clusters.append(members)

    per_cluster = []
    for members in clusters:
        maxima = []
        for vox in members:
            v = value[vox]
            is_max = True
            for n in neighbours(vox):
                if n in supra and value[n] > v:
                    is_max = False
                    break
            if is_max:
                xyz = _mm(affine, *vox)
                maxima.append((_tie_key(v, xyz), v, xyz, vox))
        maxima.sort(key=lambda m: m[0])
        per_cluster.append((maxima[0][0], len(members), maxima, set(members)))
    per_cluster.sort(key=lambda c: c[0])

    rows = []
    voxel_sets = []
    for rank, (_, size, maxima, members) in enumerate(per_cluster, start=1):
        voxel_sets.append(members)
        listed = []
        for _, v, xyz, vox in maxima:
            if listed and len(listed) >= num:
                break
            ok = True
            for other in listed:
                d = math.sqrt(sum((a - b) ** 2 for a, b in zip(xyz, other, strict=False)))
                if (d <= dis) if strict_distance else (d < dis):
                    ok = False
                    break
            if ok:
                listed.append(xyz)
                rows.append(
                    dict(cluster_id=rank, k=size, peak_t=v, x=xyz[0], y=xyz[1], z=xyz[2],
                         i=vox[0], j=vox[1], k_vox=vox[2], is_main_peak=len(listed) == 1)
                )
    return rows, voxel_sets


def assert_matches_reference(result: ClusterResult, stat, affine, u, extent=10, num=3, dis=8.0, atol=0.0):
    rows, voxel_sets = brute_force_table(stat, affine, u, extent=extent, num=num, dis=dis)
    got = result.table
    assert list(got.columns) == TABLE_COLUMNS
    assert len(got) == len(rows), (got, pd.DataFrame(rows))
    exp = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for col in ("cluster_id", "k", "i", "j", "k_vox", "is_main_peak"):
        assert got[col].tolist() == exp[col].tolist(), col
    for col in ("peak_t", "x", "y", "z"):
        if atol == 0:
            assert got[col].tolist() == exp[col].tolist(), col
        else:
            np.testing.assert_allclose(got[col].to_numpy(), exp[col].to_numpy(), rtol=0, atol=atol)
    # label volume: exactly the reference clusters, numbered by rank
    assert result.labels.dtype == np.int32
    assert result.labels.shape == stat.shape
    assert int(result.labels.max(initial=0)) == len(voxel_sets)
    for rank, members in enumerate(voxel_sets, start=1):
        got_vox = set(map(tuple, np.argwhere(result.labels == rank).tolist()))
        assert got_vox == members
    assert int((result.labels > 0).sum()) == sum(len(m) for m in voxel_sets)


def flip_axes(stat, affine, axes):
    """Same physical image stored with the given voxel axes reversed."""
    stat = np.asarray(stat)
    affine = np.asarray(affine, dtype=float)
    flip = np.eye(4)
    for ax in axes:
        stat = np.flip(stat, axis=ax)
        n = stat.shape[ax]
        f = np.eye(4)
        f[ax, ax] = -1
        f[ax, 3] = n - 1
        flip = flip @ f
    return np.ascontiguousarray(stat), affine @ flip


def assert_same_physical_table(a: ClusterResult, b: ClusterResult, shape, axes):
    ta, tb = a.table, b.table
    assert len(ta) == len(tb) and len(ta) > 0
    for col in ("cluster_id", "k", "peak_t", "x", "y", "z", "is_main_peak"):
        assert ta[col].tolist() == tb[col].tolist(), col
    # voxel indices map through the flip
    for ax, col in enumerate(("i", "j", "k_vox")):
        expected = (shape[ax] - 1 - ta[col]) if ax in axes else ta[col]
        assert tb[col].tolist() == expected.tolist(), col
    flipped_back = b.labels
    for ax in axes:
        flipped_back = np.flip(flipped_back, axis=ax)
    np.testing.assert_array_equal(flipped_back, a.labels)


# --------------------------------------------------------------------------- synthetic maps

AFF_2MM_LAS = np.array([[-2.0, 0, 0, 16], [0, 2.0, 0, -18], [0, 0, 2.0, -20], [0, 0, 0, 1]])
U1 = 2.5


def _smooth_noise(shape, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal(shape), 1.2)
    return scale * x / x.std()


@pytest.fixture(scope="module")
def map1():
    """17x19x21 smooth noise with planted structures (see comments)."""
    shape = (17, 19, 21)
    s = _smooth_noise(shape, seed=1234, scale=1.3)
    # guard region (well below threshold) isolating the planted structures
    s[0:16, 0:8, 0:8] = -10.0
    # A: two 2x2x2 blocks touching only along an edge: (3,3,k) ~ (4,4,k) -> one 18-cluster
    for (i0, j0, k0) in ((2, 2, 2), (4, 4, 2)):
        for i in range(i0, i0 + 2):
            for j in range(j0, j0 + 2):
                for k in range(k0, k0 + 2):
                    s[i, j, k] = 4.0 + 0.1 * i + 0.05 * j + 0.01 * k
    # B: two 2x2x2 blocks touching only at a corner: (11,3,3) ~ (12,4,4) -> two clusters
    for (i0, j0, k0) in ((10, 2, 2), (12, 4, 4)):
        for i in range(i0, i0 + 2):
            for j in range(j0, j0 + 2):
                for k in range(k0, k0 + 2):
                    s[i, j, k] = 3.0 + 0.1 * i + 0.05 * j + 0.01 * k
    # a voxel exactly at the threshold, face-adjacent to block B1: must not join it
    s[10, 2, 1] = U1

    # C: isolated rod along k with maxima at k=10 (8.0), k=14 (7.0, exactly 8 mm from
    # the main peak -> not listed, SPM uses '> Dis') and k=18 (7.5, 16 mm -> listed)
    s[6:11, 12:17, 6:21] = -10.0
    prof_c = {8: 5, 9: 6, 10: 8.0, 11: 6, 12: 5, 13: 6, 14: 7.0, 15: 6, 16: 5, 17: 6, 18: 7.5, 19: 6}
    for k, v in prof_c.items():
        s[8, 14, k] = v

    # D: rod with two *tied* maxima 6.0 (16 mm apart) + E: a separate blob whose peak
    # is also exactly 6.0 -> three tied maxima, two clusters (tie rule decides order)
    s[12:17, 12:17, 2:19] = -10.0
    prof_d = {4: 5, 5: 5.5, 6: 6.0, 7: 5.5, 8: 5, 9: 4.5, 10: 4, 11: 4.5, 12: 5, 13: 5.5, 14: 6.0, 15: 5.5, 16: 5}
    for k, v in prof_d.items():
        s[14, 14, k] = v
    s[11:15, 8:12, 14:19] = -10.0
    for i in range(12, 14):
        for j in range(9, 11):
            for k in range(15, 18):
                s[i, j, k] = 5.0
    s[13, 10, 16] = 6.0
    # NaN = outside mask, including a NaN face-adjacent to a planted block
    s[16, :, :] = np.nan
    s[4, 6, 2] = np.nan
    return s


def test_map1_matches_brute_force(map1):
    for extent in (0, 8, 9):
        for num, dis in ((3, 8.0), (1, 8.0), (5, 4.0)):
            res = find_clusters(map1, AFF_2MM_LAS, U1, extent=extent, max_peaks_per_cluster=num, min_distance_mm=dis)
            assert_matches_reference(res, map1, AFF_2MM_LAS, U1, extent=extent, num=num, dis=dis)
    assert res.threshold == U1 and res.extent == 9


def test_map1_connectivity_threshold_distance_and_ties(map1):
    res = find_clusters(map1, AFF_2MM_LAS, U1, extent=8)
    lab = res.labels
    # edge-touching blocks form one cluster of 16 voxels
    assert lab[3, 3, 2] > 0 and lab[3, 3, 2] == lab[4, 4, 2]
    assert (lab == lab[3, 3, 2]).sum() == 16
    # corner-touching blocks are two clusters of 8 (the voxel == u is not included)
    assert lab[11, 3, 3] > 0 and lab[12, 4, 4] > 0 and lab[11, 3, 3] != lab[12, 4, 4]
    assert (lab == lab[11, 3, 3]).sum() == 8 and (lab == lab[12, 4, 4]).sum() == 8
    assert lab[10, 2, 1] == 0
    # extent: 9 drops the two 8-voxel clusters
    res9 = find_clusters(map1, AFF_2MM_LAS, U1, extent=9)
    assert res9.labels[11, 3, 3] == 0 and res9.labels[12, 4, 4] == 0 and res9.labels[3, 3, 2] > 0

    t = res.table
    # rod C: main 8.0, then 7.5 (16 mm); 7.0 is exactly 8 mm away -> not listed
    rod_c = t[t.cluster_id == lab[8, 14, 10]]
    assert rod_c.peak_t.tolist() == [8.0, 7.5]
    assert rod_c.is_main_peak.tolist() == [True, False]
    assert res.table.cluster_id.iloc[0] == lab[8, 14, 10]  # highest peak ranks first
    # tie: rod D peaks (z=-8 and z=8) and blob E peak (z=12) are all 6.0;
    # order: ascending z -> rod D first (its main peak at k=6), then its k=14 peak, then E
    rows6 = t[t.peak_t == 6.0]
    assert rows6.k_vox.tolist() == [6, 14, 16]
    assert rows6.z.tolist() == [-8.0, 8.0, 12.0]
    assert rows6.is_main_peak.tolist() == [True, False, True]
    assert rows6.cluster_id.iloc[2] == rows6.cluster_id.iloc[0] + 1
    # peak T of first row of each cluster is non-increasing
    mains = t[t.is_main_peak]
    assert mains.cluster_id.tolist() == list(range(1, len(mains) + 1))
    assert (np.diff(mains.peak_t.to_numpy()) <= 0).all()
    assert (t.groupby("cluster_id").size() <= 3).all()


def test_reference_discriminates_on_map1(map1):
    """The planted structures make 26-connectivity and '>= Dis' give different tables,
    so the comparison with the reference can fail if the module used them."""
    rows18, _ = brute_force_table(map1, AFF_2MM_LAS, U1, extent=8)
    rows26, _ = brute_force_table(map1, AFF_2MM_LAS, U1, extent=8, offsets=OFFSETS_26)
    rows_ge, _ = brute_force_table(map1, AFF_2MM_LAS, U1, extent=8, strict_distance=False)
    key = lambda rows: [(r["cluster_id"], r["k"], r["peak_t"], r["x"], r["y"], r["z"]) for r in rows]  # noqa: E731
    assert key(rows18) != key(rows26)
    assert key(rows18) != key(rows_ge)
    res = find_clusters(map1, AFF_2MM_LAS, U1, extent=8)
    assert key(rows18) == [tuple(r) for r in res.table[["cluster_id", "k", "peak_t", "x", "y", "z"]].itertuples(index=False)]


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 1, 2)])
def test_map1_orientation_invariant(map1, axes):
    a = find_clusters(map1, AFF_2MM_LAS, U1, extent=8)
    fs, fa = flip_axes(map1, AFF_2MM_LAS, axes)
    b = find_clusters(fs, fa, U1, extent=8)
    assert_same_physical_table(a, b, map1.shape, axes)


@pytest.fixture(scope="module")
def map2():
    """Plateaus: a 7x3x3 flat-topped ridge (all tied maxima) on a hill, and a second
    plateau cluster; non-integer voxel size and origin."""
    shape = (15, 16, 14)
    s = _smooth_noise(shape, seed=99, scale=1.0)
    s[1:12, 1:9, 1:11] = -10.0
    ii, jj, kk = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    hill = 6.0 - 0.5 * (np.abs(jj - 4) + np.abs(kk - 5))
    box = (ii >= 2) & (ii <= 10) & (jj >= 2) & (jj <= 6) & (kk >= 2) & (kk <= 8)
    s[box] = hill[box]
    s[2:9, 3:6, 4:7] = 6.5  # the plateau (7 x 3 x 3 tied maxima)
    s[12:15, 12:15, 10:13] = 4.0  # second plateau cluster, no neighbours above it
    s[12:15, 11, 9:14] = 3.0
    return s


AFF_25MM = np.array([[2.5, 0, 0, -90.25], [0, 2.5, 0, -126.5], [0, 0, 2.5, -72.75], [0, 0, 0, 1]])


def test_map2_plateau_matches_brute_force(map2):
    for u in (2.0, 3.5, 5.0):
        for num, dis in ((3, 8.0), (10, 8.0), (3, 2.5)):
            res = find_clusters(map2, AFF_25MM, u, extent=5, max_peaks_per_cluster=num, min_distance_mm=dis)
            assert_matches_reference(res, map2, AFF_25MM, u, extent=5, num=num, dis=dis, atol=1e-9)
    res = find_clusters(map2, AFF_25MM, 3.5, extent=5)
    top = res.table[res.table.cluster_id == 1]
    assert (top.peak_t == 6.5).all() and len(top) == 3
    # tie rule: lowest z, then lowest y, then highest x (RAS affine -> highest i)
    assert (top.k_vox.iloc[0], top.j.iloc[0], top.i.iloc[0]) == (4, 3, 8)
    # next plateau voxel in that order more than 8 mm away: 4 voxels (10 mm) along x
    assert (top.k_vox.iloc[1], top.j.iloc[1], top.i.iloc[1]) == (4, 3, 4)
    # then the first one > 8 mm from both: (6,5,6), 8.66 mm from each
    assert (top.k_vox.iloc[2], top.j.iloc[2], top.i.iloc[2]) == (6, 5, 6)


@pytest.mark.parametrize("axes", [(0,), (0, 1, 2), (1, 2)])
def test_map2_orientation_invariant(map2, axes):
    a = find_clusters(map2, AFF_25MM, 3.5, extent=5)
    fs, fa = flip_axes(map2, AFF_25MM, axes)
    b = find_clusters(fs, fa, 3.5, extent=5)
    assert_same_physical_table(a, b, map2.shape, axes)


def test_empty_and_validation():
    s = np.zeros((5, 6, 7))
    res = find_clusters(s, np.eye(4), 1.0)
    assert list(res.table.columns) == TABLE_COLUMNS and res.table.empty
    assert res.labels.dtype == np.int32 and not res.labels.any()
    s[2, 2, 2] = np.nan
    s[1, 1, 1] = 5.0
    res = find_clusters(s, np.eye(4), 1.0, extent=1)
    assert res.table.k.tolist() == [1] and res.table.peak_t.tolist() == [5.0]
    assert res.table[["x", "y", "z"]].iloc[0].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        find_clusters(np.zeros((3, 3)), np.eye(4), 1.0)
    with pytest.raises(ValueError):
        find_clusters(s, np.eye(3), 1.0)


# --------------------------------------------------------------------------- real map


@pytest.fixture(scope="module")
def motor():
    from nilearn.datasets import load_sample_motor_activation_image

    img = nib.load(load_sample_motor_activation_image())
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
    return img


@pytest.mark.parametrize("u,sign,extent", [(3.1, 1, 10), (5.0, 1, 0), (2.5, -1, 10)])
def test_motor_map_matches_brute_force(motor, u, sign, extent):
    stat = sign * np.asarray(motor.dataobj, dtype=np.float64)
    res = find_clusters(stat, motor.affine, u, extent=extent)
    assert len(res.table) > 0
    assert_matches_reference(res, stat, motor.affine, u, extent=extent)


@pytest.mark.parametrize("u", [3.1, 5.0])
def test_motor_map_las_vs_ras(motor, u):
    stat = np.asarray(motor.dataobj, dtype=np.float64)
    las = find_clusters(stat, motor.affine, u)
    ras_img = nib.as_closest_canonical(motor)
    assert nib.aff2axcodes(ras_img.affine) == ("R", "A", "S")
    ras = find_clusters(np.asarray(ras_img.dataobj, dtype=np.float64), ras_img.affine, u)
    assert_same_physical_table(las, ras, stat.shape, (0,))
    # and the manual flip agrees with nibabel's reorientation
    fs, fa = flip_axes(stat, motor.affine, (0,))
    np.testing.assert_array_equal(fa, ras_img.affine)
    manual = find_clusters(fs, fa, u)
    pd.testing.assert_frame_equal(manual.table, ras.table)
    # the map saturates at its maximum, so the two largest clusters' main peaks tie
    # exactly; the documented rule (ascending z first) ranks the lower one first
    mains = las.table[las.table.is_main_peak]
    if u == 3.1:
        assert mains.peak_t.iloc[0] == mains.peak_t.iloc[1] == stat.max()
        assert mains.z.iloc[0] < mains.z.iloc[1]
