"""Sign-flip permutation inference (dashboard.stats.permutation, dashboard.permutation)
against plain computations: scipy's one-sample t-test and ``ndimage.label`` on every one
of the 2^10 sign flips of a small volume, nilearn's stepped TFCE, the study layer on tiny
results folders and on real SPM12 designs."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nilearn.mass_univariate._utils import calculate_tfce
from scipy import ndimage, stats

from dashboard.analysis import Analysis, Threshold
from dashboard.formats import open_study
from dashboard.permutation import (
    PermutationRequest,
    PermutationResult,
    PermutationUnsupported,
    add_columns,
    chunk_bounds,
    run,
    run_chunk,
    sign_flip_images,
)
from dashboard.stats import permutation as perm
from dashboard.stats.permutation import Grid, NullDistribution, clusters_of, flip_signs, null_distribution, one_sample_t
from dashboard.stats.thresholds import t_threshold
from tests.studies import write_tiny_study

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders"
STRUCTURE = {6: ndimage.generate_binary_structure(3, 1), 18: ndimage.generate_binary_structure(3, 2),
             26: ndimage.generate_binary_structure(3, 3)}


def _ellipsoid(shape: tuple[int, int, int]) -> np.ndarray:
    """A brain-like mask: an ellipsoid touching the box's faces (not the whole box)."""
    ii = np.indices(shape).astype(float)
    c = [(s - 1) / 2 for s in shape]
    return sum(((ii[a] - c[a]) / (c[a] + 0.5)) ** 2 for a in range(3)) < 1.0


def _images(n: int, shape: tuple[int, int, int], seed: int, sigma: float = 1.0) -> tuple[np.ndarray, Grid]:
    """(n, n_voxels) smooth noise with a positive blob and a weaker negative one, and its grid."""
    rng = np.random.default_rng(seed)
    mask = _ellipsoid(shape)
    vol = ndimage.gaussian_filter(rng.normal(size=(n, *shape)), sigma=(0, sigma, sigma, sigma))
    vol /= vol.std()
    vol[:, 3:7, 4:8, 3:6] += 0.9
    vol[:, 6:9, 8:11, 6:9] -= 0.8
    return vol[:, mask], Grid(mask)


def _brute_clusters(t: np.ndarray, grid: Grid, height: float, connectivity: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per direction: (extent, mass) of every cluster by scipy.ndimage.label."""
    out = {}
    for direction, signed in (("pos", t), ("neg", -t)):
        vol = np.zeros(grid.mask.shape)
        vol[grid.mask] = signed
        lab, n = ndimage.label(vol > height, STRUCTURE[connectivity])
        ids = np.arange(1, n + 1)
        extent = np.asarray(ndimage.sum_labels(np.ones_like(vol), lab, ids)) if n else np.zeros(0)
        mass = np.asarray(ndimage.sum_labels(vol - height, lab, ids)) if n else np.zeros(0)
        out[direction] = (extent, mass)
    return out


def _brute_null(images: np.ndarray, grid: Grid, signs: np.ndarray, height: float, connectivity: int = 18) -> dict[str, dict[str, np.ndarray]]:
    """The null of the maxima by a plain loop: scipy's t-test and ndimage.label per flip."""
    out = {d: {k: np.zeros(len(signs)) for k in ("max_t", "max_extent", "max_mass")} for d in ("pos", "neg")}
    for i, s in enumerate(signs):
        t = stats.ttest_1samp(s[:, None] * images, 0.0, axis=0).statistic
        cl = _brute_clusters(t, grid, height, connectivity)
        for d, signed in (("pos", t), ("neg", -t)):
            out[d]["max_t"][i] = signed.max()
            out[d]["max_extent"][i] = cl[d][0].max(initial=0)
            out[d]["max_mass"][i] = cl[d][1].max(initial=0.0)
    return out


# -- flips --------------------------------------------------------------------------------
def test_pm001_flips_exhaustive_when_every_flip_fits():
    for n_perm in (32, 33, 5000):  # 2^5 = 32 <= n_perm: each of the 32 flips once
        signs, exhaustive = flip_signs(5, n_perm, seed=7)
        assert exhaustive and signs.shape == (32, 5) and signs.dtype == np.int8
        assert set(np.unique(signs)) == {-1, 1}
        assert (signs[0] == 1).all()
        assert len({tuple(r) for r in signs}) == 32
    # the seed plays no part in an enumeration
    assert np.array_equal(flip_signs(5, 100, 0)[0], flip_signs(5, 100, 1)[0])


def test_pm002_flips_drawn_identity_first_distinct_and_seeded():
    for n, n_perm in ((4, 15), (10, 100), (12, 4000), (70, 300)):  # (4, 15): 15 of the 16; 70: beyond exact codes
        signs, exhaustive = flip_signs(n, n_perm, seed=3)
        assert not exhaustive and signs.shape == (n_perm, n) and signs.dtype == np.int8
        assert set(np.unique(signs)) == {-1, 1}
        assert (signs[0] == 1).all() and not (signs[1:] == 1).all(axis=1).any()  # the identity once, first
        assert len({tuple(r) for r in signs}) == n_perm
        again, _ = flip_signs(n, n_perm, seed=3)
        assert np.array_equal(signs, again)
        other, _ = flip_signs(n, n_perm, seed=4)
        assert not np.array_equal(signs[1:], other[1:])
    # uniform draws: each participant flipped in half the random flips (sd 0.008 at 3999 draws)
    signs, _ = flip_signs(12, 4000, seed=0)
    assert np.abs((signs[1:] == -1).mean(axis=0) - 0.5).max() < 0.05


def test_pm003_flips_refuse_bad_arguments():
    for n_perm in (0, -1, perm.MAX_N_PERM + 1):
        with pytest.raises(ValueError, match="number of permutations"):
            flip_signs(8, n_perm, 0)
    with pytest.raises(ValueError, match="at least 2"):
        flip_signs(1, 100, 0)
    assert flip_signs(8, 1, 0)[0].tolist() == [[1] * 8]  # one "permutation": the data as observed


# -- one-sample t -------------------------------------------------------------------------
def test_pm004_one_sample_t_is_scipys():
    rng = np.random.default_rng(5)
    y = rng.normal(0.3, 1.0, size=(9, 400)) * rng.uniform(0.1, 10, size=400)
    signs = np.where(rng.random((25, 9)) < 0.5, -1, 1).astype(np.int8)
    got = one_sample_t(y, signs)
    want = stats.ttest_1samp(signs[:, :, None] * y[None], 0.0, axis=1).statistic
    assert got.shape == (25, 400)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # float32 input as the images are stored; a voxel with no data at all gives 0, not NaN
    y[:, 7] = 0.0
    got32 = one_sample_t(y.astype(np.float32), signs)
    assert (got32[:, 7] == 0).all() and np.isfinite(got32).all()
    np.testing.assert_allclose(np.delete(got32, 7, axis=1), np.delete(want, 7, axis=1), rtol=1e-5, atol=1e-6)


def test_pm004b_a_voxel_without_variance_gives_zero():
    """The docstring's promise ("voxels with no variance get 0") for a constant that is
    not 0: the same value 0.1 in all 22 images (scipy: NaN, undefined)."""
    y = np.random.default_rng(0).normal(size=(22, 3))
    y[:, 1] = 0.1
    assert one_sample_t(y, np.ones((1, 22), np.int8))[0, 1] == 0.0


# -- exact enumeration against brute force ------------------------------------------------
@pytest.fixture(scope="module")
def enumerated():
    images, grid = _images(10, (12, 14, 12), seed=11)
    height = t_threshold(0.01, 9)
    signs, exhaustive = flip_signs(10, 5000, seed=0)
    assert exhaustive and len(signs) == 1024
    return images, grid, height, signs, null_distribution(images, grid, signs, height), _brute_null(images, grid, signs, height)


def test_pm005_every_flip_matches_a_brute_force_loop(enumerated):
    _, grid, _, _, null, brute = enumerated
    assert 0 < grid.mask.sum() < grid.mask.size * 0.6  # a mask, not the box
    assert null.n == 1024 and null.directions == ("pos", "neg") and not null.tfce
    for d in ("pos", "neg"):
        np.testing.assert_allclose(null.stats[d]["max_t"], brute[d]["max_t"], rtol=1e-10)
        np.testing.assert_array_equal(null.stats[d]["max_extent"], brute[d]["max_extent"])
        np.testing.assert_allclose(null.stats[d]["max_mass"], brute[d]["max_mass"], rtol=1e-9, atol=1e-9)
    # the data has clusters in both directions under the identity, and the nulls are not trivial
    assert brute["pos"]["max_extent"][0] > 20 and brute["neg"]["max_extent"][0] >= 3
    assert np.unique(brute["pos"]["max_extent"]).size > 20
    # all flips: flipping every sign maps T to -T, so the two directions' nulls are one multiset
    for k in ("max_t", "max_extent", "max_mass"):
        np.testing.assert_allclose(np.sort(null.stats["pos"][k]), np.sort(null.stats["neg"][k]), rtol=1e-10, atol=1e-10)


def test_pm006_exact_p_of_the_observed_maximum(enumerated):
    images, grid, height, _, null, brute = enumerated
    obs = perm.observed(images, grid, height)
    np.testing.assert_allclose(obs.t, stats.ttest_1samp(images, 0.0, axis=0).statistic, rtol=1e-10)
    for d, sign in (("pos", 1.0), ("neg", -1.0)):
        top = float((sign * obs.t).max())
        want = np.count_nonzero(brute[d]["max_t"] >= top - 1e-9) / 1024
        p = float(null.p_fwe(d, "max_t", top)[0])
        assert p == want and p >= 1 / 1024
        # the largest observed cluster against the brute-force null of extents
        k = float(obs.clusters.extent[d].max())
        assert float(null.p_fwe(d, "max_extent", k)[0]) == np.count_nonzero(brute[d]["max_extent"] >= k) / 1024
    assert float(null.p_fwe("pos", "max_t", 1e9)[0]) == 0.0 and float(null.p_fwe("pos", "max_t", -1e9)[0]) == 1.0


# -- clusters -----------------------------------------------------------------------------
@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_pm007_clusters_are_ndimage_labels(connectivity):
    rng = np.random.default_rng(connectivity)
    grid = Grid(_ellipsoid((15, 13, 11)))
    t = ndimage.gaussian_filter(rng.normal(size=grid.mask.shape), 0.6)[grid.mask] * 3
    height = 1.0
    got = clusters_of(t, grid, height, connectivity)
    for d, signed in (("pos", t), ("neg", -t)):
        vol = np.zeros(grid.mask.shape)
        vol[grid.mask] = signed
        lab, n = ndimage.label(vol > height, STRUCTURE[connectivity])
        want = lab[grid.mask]
        mine = got.labels[d]
        assert n > 5
        assert ((mine > 0) == (signed > height)).all()
        # the same partition: labels correspond one to one
        pairs = set(zip(mine[mine > 0].tolist(), want[want > 0].tolist(), strict=True))
        assert len(pairs) == n == len({a for a, _ in pairs})
        for a, b in pairs:
            assert got.extent[d][a] == np.count_nonzero(want == b)
            assert got.mass[d][a] == pytest.approx(float((signed[want == b] - height).sum()), rel=1e-12)
        assert got.extent[d].sum() == np.count_nonzero(signed > height)
    # one direction only
    only = clusters_of(t, grid, height, connectivity, directions=("neg",))
    assert set(only.labels) == {"neg"}
    np.testing.assert_array_equal(np.sort(only.extent["neg"][1:][only.extent["neg"][1:] > 0]),
                                  np.sort(got.extent["neg"][got.extent["neg"] > 0]))


def test_pm008_connectivity_matters_on_these_maps():
    """The maps of pm007 are rough enough that 6, 18 and 26 neighbours give other clusters."""
    rng = np.random.default_rng(0)
    grid = Grid(_ellipsoid((15, 13, 11)))
    t = ndimage.gaussian_filter(rng.normal(size=grid.mask.shape), 0.6)[grid.mask] * 3
    counts = [int((clusters_of(t, grid, 1.0, c).extent["pos"] > 0).sum()) for c in (6, 18, 26)]
    assert counts[0] > counts[1] > counts[2]


# -- TFCE ---------------------------------------------------------------------------------
def test_pm009_tfce_is_the_limit_of_nilearns_stepped_sum():
    """nilearn sums ``e(h)^E h^H`` at h = dh, 2 dh, ..., max|T| (26 neighbours here, as
    ours), without the factor dh: times dh it is a right Riemann sum of our exact integral
    ``int_0^T e(h)^E h^H dh``.  Its error is first order in dh (the extent e(h) is a step
    function and the last partial step [floor(T/dh) dh, T] is left out), so 4x the steps
    cut it about 4x (0.25; zeroth order, e.g. another E, H or connectivity, would stay
    ~1, second order would be 1/16).  The left-out last step alone is at most
    ``dh e^E T^H`` against an integral of about ``e^E T^(H+1)/3``, i.e. 3 dh / T: at 100
    steps under 3% where T is near the map's maximum (the voxels whose TFCE is large)."""
    rng = np.random.default_rng(1)
    shape = (18, 20, 16)
    mask = _ellipsoid(shape)
    z = ndimage.gaussian_filter(rng.normal(size=shape), 0.7) * 4
    z[5:10, 6:12, 4:9] += 2.5
    z[12:16, 3:7, 9:13] -= 2.0
    grid = Grid(mask)
    t = z[mask]
    ours = perm.tfce_maps(t[None], grid)[0].astype(np.float64)
    assert ours.shape == t.shape
    assert (np.sign(ours[np.abs(t) > 0.5]) == np.sign(t[np.abs(t) > 0.5])).all()  # negative T: negative TFCE
    big = np.abs(ours) > 0.5 * np.abs(ours).max()
    assert big.sum() > 20
    vol = np.zeros((*shape, 1))
    vol[mask, 0] = t
    top = np.abs(t).max()

    def stepped(steps: int, connectivity: int = 26) -> np.ndarray:
        dh = top / steps
        return calculate_tfce(vol, STRUCTURE[connectivity], dh=dh, two_sided_test=True)[mask, 0] * dh

    err = {steps: np.abs(stepped(steps) - ours) for steps in (100, 400)}
    assert (err[100][big] / np.abs(ours[big])).max() < 0.03
    ratio = err[400].sum() / err[100].sum()
    assert 0.1 < ratio < 0.4, ratio
    # 18 neighbours is another transform: its error does not shrink with the steps
    assert np.abs(stepped(400, 18) - ours).sum() > 5 * err[400].sum()


def test_pm010_tfce_null_is_each_flips_maximum():
    images, grid = _images(8, (12, 14, 12), seed=4)
    signs, _ = flip_signs(8, 40, seed=2)
    null = null_distribution(images, grid, signs, 2.5, tfce=True)
    for i, s in enumerate(signs):  # one map at a time: no axis mix-up in the batched transform
        tf = perm.tfce_maps(stats.ttest_1samp(s[:, None] * images, 0.0, axis=0).statistic[None], grid)[0]
        assert null.stats["pos"]["max_tfce"][i] == pytest.approx(max(float(tf.max()), 0.0), rel=1e-5)
        assert null.stats["neg"]["max_tfce"][i] == pytest.approx(max(float(-tf.min()), 0.0), rel=1e-5)


# -- the study layer ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Analysis:
    return Analysis(open_study(write_tiny_study(tmp_path_factory.mktemp("tiny") / "s", n=9, seed=2)))


def test_pm011_chunks_concatenate_to_the_whole(tiny):
    request = PermutationRequest("placebo", 2.0, ("pos", "neg"), "paired", n_perm=200, seed=5, tfce=True)
    whole = run(tiny, request)
    assert whole.n_planned == 200 and not whole.exhaustive and whole.complete and whole.null.n == 200
    bounds = chunk_bounds(200, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] == 200 and all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    merged = NullDistribution.concatenate([run_chunk(tiny, request, a, b) for a, b in bounds])
    assert merged.directions == whole.null.directions and merged.tfce
    for d in ("pos", "neg"):
        assert set(merged.stats[d]) == set(perm.STATISTICS)
        for k in perm.STATISTICS:
            np.testing.assert_array_equal(merged.stats[d][k], whole.null.stats[d][k])
    assert chunk_bounds(2, 5) == [(0, 1), (1, 2)]
    # JSON round trips (the worker's result travels as JSON)
    back = PermutationResult.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert back.request == request and back.n_planned == 200 and back.exhaustive is False
    for d in ("pos", "neg"):
        for k in perm.STATISTICS:
            np.testing.assert_array_equal(back.null.stats[d][k], whole.null.stats[d][k])
    assert PermutationRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    again = NullDistribution.from_dict(json.loads(json.dumps(merged.to_dict())))
    assert again.n == 200 and np.array_equal(again.stats["neg"]["max_mass"], merged.stats["neg"]["max_mass"])


def test_pm012_cancel_stops_early(tiny):
    request = PermutationRequest("placebo", 2.0, ("pos",), "paired", n_perm=200, seed=1)
    seen: list[tuple[int, int]] = []

    def on_batch(done: int, total: int) -> bool:
        seen.append((done, total))
        return len(seen) < 2

    part = run(tiny, request, on_batch=on_batch)
    assert seen == [(perm.BATCH, 200), (2 * perm.BATCH, 200)]
    assert part.null.n == 2 * perm.BATCH < 200 and not part.complete
    whole = run(tiny, request)
    np.testing.assert_array_equal(part.null.stats["pos"]["max_t"], whole.null.stats["pos"]["max_t"][:2 * perm.BATCH])


def test_pm013_flipped_images_give_the_paired_t(tiny):
    for contrast in ("placebo", "nac", "interaction"):
        images = sign_flip_images(tiny, contrast, "paired", ())
        assert images.shape == (9, int(tiny.study.mask.sum()))
        t, df = tiny.t_map(contrast, "paired")
        assert df == 8
        np.testing.assert_allclose(one_sample_t(images, np.ones((1, 9), np.int8))[0], t, rtol=1e-6, atol=1e-6)
    some = tuple(tiny.study.participant_ids[:6])
    images = sign_flip_images(tiny, "placebo", "paired", some)
    np.testing.assert_allclose(one_sample_t(images, np.ones((1, 6), np.int8))[0], tiny.t_map("placebo", "paired", some)[0],
                               rtol=1e-6, atol=1e-6)
    for model in ("cells", "subjects"):
        with pytest.raises(PermutationUnsupported, match="paired model"):
            sign_flip_images(tiny, "placebo", model, ())


def _spm_t(folder: Path, study, contrast: str) -> np.ndarray:
    """The spmT image SPM wrote, read with nibabel (not through the study)."""
    return np.asarray(nib.load(folder / f"spmT_{int(contrast):04d}.nii").get_fdata(), np.float64)[study.mask]


def test_pm014_spm_one_sample_and_paired_designs_are_sign_flip_tests():
    for name in ("onesample", "paired"):
        study = open_study(SPM / name)
        analysis = Analysis(study)
        for contrast in ("1", "2"):
            images = sign_flip_images(analysis, contrast, "paired", ())
            assert images.shape == (22, 3642)
            t = one_sample_t(images, np.ones((1, 22), np.int8))[0]
            np.testing.assert_allclose(t, _spm_t(SPM / name, study, contrast), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(t, analysis.t_map(contrast)[0], rtol=1e-4, atol=1e-4)


def test_pm015_other_spm_designs_are_refused_by_their_numbers(tmp_path):
    for name in ("onesample_cov", "ff_subjects", "twosample"):
        analysis = Analysis(open_study(SPM / name))
        for contrast in ("1", "2"):
            with pytest.raises(PermutationUnsupported, match="not a one-sample t"):
                sign_flip_images(analysis, contrast, "paired", ())
    # the folder's name plays no part: a two-sample design called "onesample" is refused,
    # a one-sample design under another name is accepted
    # (the designs find their participants' images in the sibling firstlevel/ folder)
    shutil.copytree(SPM / "firstlevel", tmp_path / "firstlevel")
    shutil.copytree(SPM / "twosample", tmp_path / "onesample")
    with pytest.raises(PermutationUnsupported, match="not a one-sample t"):
        sign_flip_images(Analysis(open_study(tmp_path / "onesample")), "1", "paired", ())
    shutil.copytree(SPM / "onesample", tmp_path / "grp_cov_model")
    assert sign_flip_images(Analysis(open_study(tmp_path / "grp_cov_model")), "1", "paired", ()).shape == (22, 3642)


def test_pm016_table_columns_are_brute_force_shares(tiny):
    threshold = Threshold(p_unc=0.05)
    table = tiny.clusters("placebo", directions=("pos", "neg"), model="paired", threshold=threshold, extent=1,
                          label_atlas=None, with_rft=False)
    assert {"pos", "neg"} <= set(table.table["direction"]) and len(table.table) > 3
    request = PermutationRequest("placebo", table.height, ("pos", "neg"), "paired", n_perm=300, seed=9)
    result = run(tiny, request)
    frame = add_columns(tiny, table, result)
    # an independent null: scipy's t and ndimage's 18-neighbour clusters on the same flips
    images = sign_flip_images(tiny, "placebo", "paired", ())
    signs, _ = flip_signs(images.shape[0], 300, 9)
    grid = Grid(tiny.study.mask)
    brute = _brute_null(images, grid, signs, table.height)
    volume, _ = tiny.t_volume("placebo", "paired")
    for _, row in frame.iterrows():
        d = row["direction"]
        sign = 1.0 if d == "pos" else -1.0
        peak = float(row["peak_t"])
        assert row["p_fwe_perm_peak"] == np.count_nonzero(brute[d]["max_t"] >= peak - 1e-6) / 300
        k = int(row["k"])
        assert row["p_fwe_perm_cluster"] == np.count_nonzero(brute[d]["max_extent"] >= k) / 300
        members = _cluster_voxels(tiny, table, row)
        mass = float((sign * volume[members] - table.height).sum())
        assert members.sum() == k
        assert row["p_fwe_perm_mass"] == np.count_nonzero(brute[d]["max_mass"] >= mass - 1e-6) / 300
        assert row["cluster_mass"] == pytest.approx(mass, rel=1e-9)
    assert frame["p_fwe_perm_peak"].between(1 / 300, 1).all()
    main = frame[frame["is_main_peak"]]
    assert (main.groupby("direction")["p_fwe_perm_peak"].min() >= 1 / 300).all()


def _cluster_voxels(analysis: Analysis, table, row) -> np.ndarray:
    """The voxels (3D bool) of a row's cluster: its direction's listed cluster holding the row's peak."""
    labels = table.labels[row["direction"]]
    ijk = tuple(int(v) for v in np.rint(np.linalg.inv(analysis.study.affine) @ [row["x"], row["y"], row["z"], 1.0])[:3])
    assert labels[ijk] > 0
    return labels == labels[ijk]
