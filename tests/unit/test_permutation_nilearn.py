"""Sign-flip permutation inference (dashboard.stats.permutation) against nilearn's
``non_parametric_inference`` on the same NIfTI images and mask: a one-sample (intercept)
design, one-sided, cluster-forming p < 0.001, 6 neighbours (nilearn's), the same number
of permutations.

The two draw their sign flips from different random streams, so their p-values are two
independent Monte-Carlo estimates of one permutation p: each has variance about
``p (1 - p) / n_perm``, their difference ``2 p (1 - p) / n_perm``; 4 standard deviations
of that difference (a false alarm about once in 16 000 comparisons) plus ``1 / n_perm``
for the conventions that differ by one permutation (ours counts the data as observed in
its null, p = #{null >= x} / n; nilearn's peak p is (1 + #{null >= x}) / (n + 1), its
cluster p excludes the data and is clipped at 1 / n) bound ``|p_ours - p_nilearn|``.
"""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.second_level import non_parametric_inference
from nilearn.maskers import NiftiMasker
from nilearn.mass_univariate import permuted_ols
from scipy import ndimage

from dashboard.stats import permutation as perm
from dashboard.stats.thresholds import t_threshold

N = 14  # participants
SHAPE = (20, 24, 20)
N_PERM = 4000
P_CLUSTER = 0.001
SEED = 0

pytestmark = [
    pytest.mark.slow,
    # nilearn's own cluster labelling (int64 labels into new_img_like) warns about itself
    pytest.mark.filterwarnings("ignore:Data array used to create a new image contains 64-bit ints:UserWarning"),
]


def _tolerance(p: float) -> float:
    """Four standard deviations of the difference of two independent estimates of ``p``
    from ``N_PERM`` permutations each, plus one permutation (see the module docstring)."""
    return 4 * math.sqrt(2 * p * (1 - p) / N_PERM) + 1 / N_PERM


def _study(out: Path) -> tuple[list[str], Path, np.ndarray, np.ndarray]:
    """14 participants' smooth noise images with a strong blob and a weak one, written as
    NIfTI; an ellipsoid mask.  Returns (image paths, mask path, mask, (n, n_voxels) data)."""
    rng = np.random.default_rng(0)
    ii = np.indices(SHAPE).astype(float)
    c = [(s - 1) / 2 for s in SHAPE]
    mask = sum(((ii[a] - c[a]) / (c[a] + 0.5)) ** 2 for a in range(3)) < 1.0
    vol = ndimage.gaussian_filter(rng.normal(size=(N, *SHAPE)), (0, 1.5, 1.5, 1.5))
    vol /= vol.std()
    vol[:, 5:9, 6:10, 6:10] += 1.2  # FWE p at the floor
    vol[:, 12:15, 14:17, 10:13] += 1.1  # a small cluster, FWE p about 0.2
    vol[:, ~mask] = 0.0
    vol = vol.astype(np.float32)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    paths = []
    for i in range(N):
        path = out / f"sub-{i + 1:02d}_con.nii.gz"
        nib.save(nib.Nifti1Image(vol[i], affine), path)
        paths.append(str(path))
    mask_path = out / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), mask_path)
    return paths, mask_path, mask, vol[:, mask].astype(np.float64)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    paths, mask_path, mask, images = _study(tmp_path_factory.mktemp("nilearn"))
    masker = NiftiMasker(mask_img=str(mask_path), standardize=None)
    design = pd.DataFrame({"intercept": np.ones(N)})
    nl = non_parametric_inference(paths, design_matrix=design, mask=masker, n_perm=N_PERM, two_sided_test=False,
                                  threshold=P_CLUSTER, n_jobs=1, random_state=SEED)
    maps = {k: np.asarray(img.get_fdata())[mask] for k, img in nl.items()}
    # the nulls behind those maps: nilearn's engine on the same data, masker and seed
    fitted = masker.fit()
    h0 = permuted_ols(np.ones((N, 1)), fitted.transform(paths), model_intercept=True, n_perm=N_PERM, two_sided_test=False,
                      threshold=P_CLUSTER, masker=fitted, n_jobs=1, random_state=SEED)
    grid = perm.Grid(mask)
    height = t_threshold(P_CLUSTER, N - 1)
    signs, exhaustive = perm.flip_signs(N, N_PERM, seed=1)
    assert not exhaustive
    null = perm.null_distribution(images, grid, signs, height, directions=("pos",), connectivity=6)
    obs = perm.observed(images, grid, height, connectivity=6)
    return maps, h0, null, obs


def test_pn001_same_voxels_t_and_clusters(both):
    maps, h0, _, obs = both
    # the same voxels in the same order and the same T (the images are float32)
    np.testing.assert_allclose(maps["t"], obs.t, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h0["t"][0], obs.t, rtol=1e-5, atol=1e-5)
    # the same clusters: each voxel's cluster size and mass as nilearn maps them
    lab = obs.clusters.labels["pos"]
    np.testing.assert_array_equal(maps["size"], obs.clusters.extent["pos"][lab] * (lab > 0))
    np.testing.assert_allclose(maps["mass"], obs.clusters.mass["pos"][lab] * (lab > 0), rtol=1e-5, atol=1e-5)
    assert (obs.clusters.extent["pos"] > 0).sum() >= 2
    # nilearn's p conventions, read off its nulls (what the tolerance allows for)
    v = int(np.argmax(obs.t))
    n_ge = np.count_nonzero(h0["h0_max_t"][0] >= maps["t"][v])
    assert 10 ** -maps["logp_max_t"][v] == pytest.approx((1 + n_ge) / (N_PERM + 1), rel=1e-9)
    k = maps["size"][v]
    assert 10 ** -maps["logp_max_size"][v] == pytest.approx(max(np.count_nonzero(h0["h0_max_size"][0] >= k), 1) / N_PERM, rel=1e-9)


def test_pn002_fwe_p_of_peaks_and_clusters_agree(both):
    maps, _, null, obs = both
    cl = obs.clusters
    compared = []
    for label in np.flatnonzero(cl.extent["pos"]):
        voxels = np.flatnonzero(cl.labels["pos"] == label)
        v = int(voxels[np.argmax(obs.t[voxels])])  # the cluster's peak
        pairs = {
            "peak": (null.p_fwe("pos", "max_t", obs.t[v])[0], 10 ** -maps["logp_max_t"][v]),
            "size": (null.p_fwe("pos", "max_extent", cl.extent["pos"][label])[0], 10 ** -maps["logp_max_size"][v]),
            "mass": (null.p_fwe("pos", "max_mass", cl.mass["pos"][label])[0], 10 ** -maps["logp_max_mass"][v]),
        }
        for what, (ours, theirs) in pairs.items():
            p = (ours + theirs) / 2
            assert abs(ours - theirs) <= _tolerance(p), (label, what, ours, theirs)
            compared.append((what, ours))
    # both the floor (the strong blob) and the middle of the range were compared
    assert min(p for _, p in compared) <= 2 / N_PERM
    assert any(0.05 < p < 0.5 for w, p in compared if w == "size")


@pytest.mark.parametrize(("ours_key", "theirs_key"), [("max_t", "h0_max_t"), ("max_extent", "h0_max_size"),
                                                      ("max_mass", "h0_max_mass")])
def test_pn003_null_quantiles_agree(both, ours_key, theirs_key):
    """At our null's 50th, 90th, 95th and 99th percentiles, the share of nilearn's null at
    or above them is the same share (two independent estimates of one survival function at
    one point: the same tolerance as the p-values; compared in p, it holds with the ties of
    the discrete cluster sizes too)."""
    _, h0, null, _ = both
    ours = null.stats["pos"][ours_key]
    theirs = np.asarray(h0[theirs_key][0], np.float64)
    assert ours.size == theirs.size == N_PERM
    for q in (50, 90, 95, 99):
        x = float(np.percentile(ours, q))
        s_ours = np.count_nonzero(ours >= x) / N_PERM
        s_theirs = np.count_nonzero(theirs >= x) / N_PERM
        assert abs(s_ours - s_theirs) <= _tolerance((s_ours + s_theirs) / 2), (q, x, s_ours, s_theirs)
    # and the 95th percentile of the maximum T itself, in T: its standard error from the
    # null's own density (sqrt(p (1-p) / n) / f(x95), f from the spread of the 94-96th
    # percentiles) times 4 * sqrt(2) for a difference of two estimates
    if ours_key == "max_t":
        lo, x95, hi = np.percentile(ours, [94, 95, 96])
        density = 0.02 / (hi - lo)
        se = math.sqrt(0.05 * 0.95 / N_PERM) / density
        assert abs(x95 - float(np.percentile(theirs, 95))) <= 4 * math.sqrt(2) * se
