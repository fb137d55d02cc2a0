"""The volumes the browser draws from: int16 NIfTI-1 read back by nibabel (an
independent reader) equal the server's T maps to half a quantisation step, with the
missing voxels and world coordinates where the server has them."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dashboard import figures
from dashboard.render import volume as V
from dashboard.results import load_study

SAMPLE = Path(__file__).resolve().parents[2] / "sample_results"


@pytest.fixture(scope="module")
def study():
    return load_study(SAMPLE)


def test_round_trip_is_within_half_a_step_and_keeps_missing_voxels(study):
    inside, grid = figures.to_ras(study.mask, study.affine)
    vol = np.where(inside, np.random.default_rng(0).normal(0, 3, inside.shape), np.nan).astype(np.float32)
    back, _ = V.read_nifti_bytes(V.gzipped(V.nifti_bytes(vol, grid)))
    q = V.quantize(vol)
    finite = np.isfinite(vol)
    assert np.array_equal(np.isnan(back), ~finite)
    err = np.abs(back[finite] - vol[finite])
    assert err.max() <= q.max_error  # half a step plus float32 decoding
    assert err.max() > 0  # quantised, not a float copy
    assert np.abs(q.values[finite]).max() == V.TOP and (q.values[finite] != V.MISSING).all()


def test_world_coordinates_of_each_voxel_are_the_display_grid(study):
    ras, grid = figures.to_ras(study.mask.astype(np.float32), study.affine)
    img = nib.Nifti1Image.from_bytes(V.nifti_bytes(ras, grid))
    for ijk in [(0, 0, 0), (10, 20, 30), tuple(s - 1 for s in ras.shape)]:
        xyz = nib.affines.apply_affine(img.affine, ijk)
        assert np.allclose(xyz, (grid.x[ijk[0]], grid.y[ijk[1]], grid.z[ijk[2]]))
    # and the voxel at a world coordinate holds what the study's own image has there
    mask = study.mask
    stored = np.argwhere(mask)[len(np.argwhere(mask)) // 3]
    world = nib.affines.apply_affine(study.affine, stored)
    back = np.asarray(img.dataobj.get_unscaled())
    at = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), world)).astype(int)
    assert back[tuple(at)] == V.TOP  # inside the mask (value 1, the peak) in both
    assert img.header.get_qform(coded=True)[1] == 4  # MNI-152


def test_empty_and_constant_volumes():
    grid = figures.RasGrid(np.arange(3.0), np.arange(4.0), np.arange(5.0))
    empty = np.full((3, 4, 5), np.nan, np.float32)
    q = V.quantize(empty)
    assert q.slope == 1.0 and (q.values == V.MISSING).all()
    back, _ = V.read_nifti_bytes(V.nifti_bytes(empty, grid))
    assert np.isnan(back).all()
    const = np.full((3, 4, 5), -2.5, np.float32)
    const[0, 0, 0] = np.inf  # not a value: stored as missing, never as a huge T
    back, _ = V.read_nifti_bytes(V.nifti_bytes(const, grid))
    assert np.isnan(back[0, 0, 0]) and np.allclose(back[1:], -2.5)
