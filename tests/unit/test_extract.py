"""SPM first eigenvariate (spm_regions, no adjustment) and cluster mean."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.stats.extract import cluster_values, first_eigenvariate


def _svd_reference(y: np.ndarray) -> np.ndarray:
    """METHODS.md written out with numpy's SVD: d * U[:,0] * S[0] / sqrt(n_voxels)."""
    u, s, vt = np.linalg.svd(y, full_matrices=False)
    d = np.sign(vt[0].sum())
    return d * u[:, 0] * s[0] / np.sqrt(y.shape[1])


def test_ev001_shared_profile_returns_that_profile_exactly():
    profile = np.array([0.3, -1.2, 2.0, 0.7, -0.1, 1.5])
    y = np.tile(profile[:, None], (1, 9))
    np.testing.assert_allclose(first_eigenvariate(y), profile, rtol=1e-12)
    # and equals the voxel mean
    np.testing.assert_allclose(first_eigenvariate(y), y.mean(axis=1), rtol=1e-12)


def test_ev002_sign_rule_follows_sum_of_right_singular_vector():
    profile = np.array([1.0, 2.0, 3.0, -1.0])
    y = np.tile(profile[:, None], (1, 5))
    # all voxels flipped: the right singular vector sums negative under +profile,
    # so the eigenvariate follows the data (-profile), not an arbitrary SVD sign
    np.testing.assert_allclose(first_eigenvariate(-y), -profile, rtol=1e-12)


def test_ev003_scaling_by_sqrt_voxels():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(20, 7))
    ev = first_eigenvariate(y)
    ref = _svd_reference(y)
    np.testing.assert_allclose(ev, ref, rtol=1e-10, atol=1e-12)
    # scaling: norm of eigenvariate = S[0] / sqrt(n_voxels)
    s0 = np.linalg.svd(y, compute_uv=False)[0]
    assert np.linalg.norm(ev) == pytest.approx(s0 / np.sqrt(7))


@pytest.mark.parametrize("shape", [(88, 40), (12, 30)])  # rows > cols and rows < cols branches
def test_ev004_both_branches_match_svd(shape):
    rng = np.random.default_rng(shape[0])
    y = rng.normal(size=shape) + 0.5
    np.testing.assert_allclose(first_eigenvariate(y), _svd_reference(y), rtol=1e-9, atol=1e-12)


def test_ev005_cluster_values_use_every_image_then_condition_rows():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(6, 4, 30)).astype(np.float32)
    vox = np.array([2, 5, 11, 17])
    y = data[:, :, vox].reshape(24, 4).astype(np.float64)
    ref = _svd_reference(y).reshape(6, 4)
    for cond in range(4):
        np.testing.assert_allclose(cluster_values(data, vox, cond), ref[:, cond], rtol=1e-6)
        np.testing.assert_allclose(cluster_values(data, vox, cond, "mean"), data[:, cond][:, vox].mean(1), rtol=1e-6)
    with pytest.raises(ValueError, match="no voxels"):
        cluster_values(data, np.array([], int), 0)
