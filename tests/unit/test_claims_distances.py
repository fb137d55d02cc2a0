"""Peaks of other studies against the clusters (dashboard.claims.peak_distances): hand-built
maps on an anisotropic grid, every distance against a brute-force minimum over the
cluster voxels' centres, and the sample's literature table."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from dashboard.analysis import Analysis, Threshold
from dashboard.claims import DISTANCE_COLUMNS, clear_cache, peak_distances, recognise_columns
from dashboard.formats import open_study
from dashboard.stats import rft
from tests.bad_inputs import SAMPLE

# 2 x 3 x 4 mm voxels with an offset: a distance along the wrong axis shows
AFFINE = np.array([[2.0, 0, 0, -20], [0, 3.0, 0, -30], [0, 0, 4.0, -40], [0, 0, 0, 1]])
SHAPE = (20, 20, 20)


class MapAnalysis(Analysis):
    """An Analysis of one given statistic map (contrast "c"), through the real cluster code."""

    def __init__(self, volume: np.ndarray, affine: np.ndarray = AFFINE, stat: str = "T"):
        mask = np.isfinite(volume)

        def unmask(vector: np.ndarray, fill: float = np.nan) -> np.ndarray:
            out = np.full(volume.shape, fill)
            out[mask] = vector
            return out

        study = SimpleNamespace(affine=affine, shape=volume.shape, mask=mask, unmask=unmask, participant_ids=[],
                                group_maps={"c": SimpleNamespace(statistic=stat)})
        super().__init__(study)  # type: ignore[arg-type]
        self.volume = volume
        self.stat = stat

    def t_map(self, contrast: str, model: Any = "cells", participants: Any = None) -> tuple[np.ndarray, float]:
        return self.volume[self.study.mask].astype(np.float64), 30.0

    def map_field(self, contrast: str, model: Any, participants: Any, df: float) -> rft.Field:
        return rft.Field(self.stat, 1.0, df)

    def subset(self, participants: Any) -> tuple[str, ...]:
        return ()


def mm(i: float, j: float, k: float) -> tuple[float, float, float]:
    x, y, z, _ = AFFINE @ [i, j, k, 1.0]
    return float(x), float(y), float(z)


def hand_map() -> np.ndarray:
    vol = np.zeros(SHAPE)
    vol[4:8, 4:8, 4:8] = 4.0  # positive cluster, 64 voxels
    vol[5, 5, 5] = 6.0  # its peak
    vol[12:15, 12:15, 12:15] = -5.0  # negative cluster, 27 voxels
    vol[13, 13, 13] = -7.0
    vol[0:2, :, :] = np.nan  # outside the mask
    return vol


def table(points: list[tuple[float, float, float]], **extra: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"x": [p[0] for p in points], "y": [p[1] for p in points], "z": [p[2] for p in points], **extra})


def brute_force(analysis: Analysis, points: np.ndarray, directions: tuple[str, ...], threshold: Threshold, extent: int,
                affine: np.ndarray = AFFINE) -> np.ndarray:
    """min over the listed clusters' voxel centres of the distance from each point's voxel centre."""
    ct = analysis.clusters("c", directions=directions, threshold=threshold, extent=extent, label_atlas=None, with_rft=False)  # type: ignore[arg-type]
    voxels = np.argwhere(np.any([ct.labels[d] > 0 for d in directions], axis=0))
    centres = voxels @ affine[:3, :3].T + affine[:3, 3]
    ijk = np.rint(np.linalg.solve(affine, np.c_[points, np.ones(len(points))].T)[:3].T)
    at = ijk @ affine[:3, :3].T + affine[:3, 3]
    if not len(centres):
        return np.full(len(points), np.nan)
    return np.sqrt(((at[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


def test_pd001_hand_built_cases():
    analysis = MapAnalysis(hand_map())
    points = [
        mm(5, 5, 5),  # exactly at the positive peak
        mm(8, 5, 5),  # one voxel off the positive cluster's x face: 2 mm
        mm(5, 8, 5),  # ... its y face: 3 mm
        mm(5, 5, 3),  # ... its z face (below): 4 mm
        mm(8, 8, 5),  # diagonal off its edge: sqrt(2^2 + 3^2)
        mm(0, 5, 5),  # outside the mask, 4 voxels along x from the cluster: 8 mm, no map value
        mm(13, 13, 13),  # at the negative peak
        mm(5.4, 5.3, 4.6),  # off the grid, inside the positive cluster's voxel (5, 5, 5)
        mm(-3, 5, 5),  # outside the image, 7 voxels from the cluster along x
        (float("nan"), 1.0, 2.0),  # not a coordinate
    ]
    out = peak_distances(analysis, table(points, study=[f"s{i}" for i in range(len(points))], Z=[4.5] * len(points)), contrast="c",
                         directions=("pos", "neg"), threshold=Threshold(t=3.0), extent=5)
    assert list(out.columns) == DISTANCE_COLUMNS
    assert list(out["source"]) == [f"s{i}" for i in range(len(points))]  # a "study" column is the source; input order kept
    dist = out["nearest_cluster_mm"].to_numpy()
    np.testing.assert_allclose(dist[:9], [0, 2, 3, 4, np.hypot(2, 3), 8, 0, 0, 14], rtol=0, atol=1e-12)
    assert np.isnan(dist[9])
    assert list(out["in_cluster"]) == [True, False, False, False, False, False, True, True, False, False]
    assert list(out["nearest_cluster_direction"][:9]) == ["pos"] * 6 + ["neg", "pos", "pos"]
    assert list(out["nearest_cluster_id"][:9]) == [1] * 6 + [2, 1, 1]  # neg numbered after pos, as the two-sided table
    assert pd.isna(out["nearest_cluster_id"][9]) and out["nearest_cluster_direction"][9] is None
    assert list(out["nearest_cluster_k"][:2]) == [64, 64] and out["nearest_cluster_k"][6] == 27
    assert tuple(out.loc[1, ["nearest_cluster_x", "nearest_cluster_y", "nearest_cluster_z"]]) == mm(5, 5, 5)
    assert tuple(out.loc[6, ["nearest_cluster_x", "nearest_cluster_y", "nearest_cluster_z"]]) == mm(13, 13, 13)
    assert out["map_value"][0] == 6.0 and out["map_value"][6] == -7.0 and out["map_value"][1] == 0.0  # the map as it is
    assert np.isnan(out["map_value"][5]) and np.isnan(out["map_value"][8])  # outside the mask, outside the image
    assert tuple(out.loc[7, ["voxel_x", "voxel_y", "voxel_z"]]) == mm(5, 5, 5)  # where an off-grid coordinate is measured
    assert list(out["reported_z"]) == [4.5] * len(points) and out["reported_t"].isna().all()


def test_pd002_one_direction_and_its_numbering():
    analysis = MapAnalysis(hand_map())
    out = peak_distances(analysis, table([mm(5, 5, 5), mm(16, 13, 13)]), contrast="c", directions=("neg",), threshold=Threshold(t=3.0),
                         extent=5)
    np.testing.assert_allclose(out["nearest_cluster_mm"], [np.linalg.norm((np.array([5, 5, 5]) - [12, 12, 12]) * [2, 3, 4]), 4.0])
    assert list(out["nearest_cluster_id"]) == [1, 1] and list(out["nearest_cluster_direction"]) == ["neg", "neg"]
    assert not out["in_cluster"].any()


def test_pd003_no_clusters():
    analysis = MapAnalysis(hand_map())
    out = peak_distances(analysis, table([mm(5, 5, 5), mm(0, 0, 0)]), contrast="c", directions=("pos", "neg"), threshold=Threshold(t=10.0),
                         extent=0)
    assert out["nearest_cluster_mm"].isna().all() and out["nearest_cluster_id"].isna().all() and not out["in_cluster"].any()
    assert out["map_value"][0] == 6.0


def test_pd004_extent_drops_small_clusters():
    analysis = MapAnalysis(hand_map())
    out = peak_distances(analysis, table([mm(13, 13, 13)]), contrast="c", threshold=Threshold(t=3.0), extent=30)  # 27 < 30
    assert out["nearest_cluster_direction"][0] == "pos" and out["nearest_cluster_mm"][0] > 0


def test_pd005_f_contrast_has_no_negative_side():
    vol = np.abs(np.nan_to_num(hand_map(), nan=0.0))
    analysis = MapAnalysis(vol, stat="F")
    out = peak_distances(analysis, table([mm(13, 13, 13), mm(5, 5, 5)]), contrast="c", directions=("pos", "neg"),
                         threshold=Threshold(t=3.0), extent=5)
    assert list(out["nearest_cluster_direction"]) == ["pos", "pos"] and list(out["in_cluster"]) == [True, True]
    with pytest.raises(ValueError, match="directions"):
        peak_distances(analysis, table([mm(1, 1, 1)]), contrast="c", directions=("up",))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pd006_distances_equal_a_brute_force_minimum(seed):
    """Smooth noise with many clusters; grid points, off-grid points, points outside the
    image: the EDT distance equals the brute-force minimum over the cluster voxels."""
    rng = np.random.default_rng(seed)
    vol = ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.5) * 8
    vol[:, :, 0] = np.nan
    analysis = MapAnalysis(vol)
    thr = Threshold(t=float(np.nanpercentile(np.abs(vol), 93)))
    lo, hi = AFFINE[:3, 3] - 10, AFFINE[:3, 3] + np.diag(AFFINE)[:3] * 19 + 10  # a little beyond the image
    points = np.r_[rng.uniform(lo, hi, (150, 3)), np.array([mm(*v) for v in rng.integers(0, 20, (50, 3))])]
    for directions in [("pos",), ("neg",), ("pos", "neg")]:
        clear_cache(analysis)
        out = peak_distances(analysis, table([tuple(p) for p in points]), contrast="c", directions=directions, threshold=thr, extent=3)
        want = brute_force(analysis, points, directions, thr, 3)
        np.testing.assert_allclose(out["nearest_cluster_mm"], want, rtol=0, atol=1e-9)
        assert (out["in_cluster"] == (want == 0)).all()


@pytest.mark.parametrize("kind", ["rotated", "sheared"])
def test_pd008_oblique_grids(kind):
    """A rotated grid (orthogonal axes: the EDT) and a sheared one (k-d tree) both give
    the brute-force distance in mm."""
    c, s = np.cos(0.3), np.sin(0.3)
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) if kind == "rotated" else np.array([[1, 0.4, 0], [0, 1, 0.2], [0, 0, 1]])
    affine = AFFINE.copy()
    affine[:3, :3] = turn @ AFFINE[:3, :3]
    rng = np.random.default_rng(3)
    vol = ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.5) * 8
    analysis = MapAnalysis(vol, affine)
    thr = Threshold(t=float(np.nanpercentile(np.abs(vol), 95)))
    points = (np.c_[rng.uniform(-2, 21, (120, 3)), np.ones(120)] @ affine.T)[:, :3]
    out = peak_distances(analysis, table([tuple(p) for p in points]), contrast="c", directions=("pos", "neg"), threshold=thr, extent=3)
    want = brute_force(analysis, points, ("pos", "neg"), thr, 3, affine)
    np.testing.assert_allclose(out["nearest_cluster_mm"], want, rtol=0, atol=1e-9)


def test_pd007_sample_literature_peaks():
    study = open_study(SAMPLE, check_data=False)
    lit = study.tables["literature_peaks"]
    assert recognise_columns(list(lit.columns))["source"] == "source"
    out = peak_distances(Analysis(study), lit, contrast="placebo", directions=("pos", "neg"))
    assert len(out) == len(lit) and list(out["x"]) == list(lit["x"].astype(float))  # input order
    assert out["source"].str.startswith("Zhang et al. 2018").all() and list(out["reported_z"]) == list(lit["peak_z"])
    assert out["nearest_cluster_mm"].notna().all() and (out["nearest_cluster_mm"] >= 0).all()
    # the right middle frontal peak (51, 8, 25) lies in the placebo cluster at (48, 10, 28)
    row = out[(out.x == 51) & (out.y == 8)].iloc[0]
    assert row["in_cluster"] and row["nearest_cluster_mm"] == 0 and (row["nearest_cluster_x"], row["nearest_cluster_y"]) == (48, 10)


def test_pd009_source_columns_by_name():
    for name in ("source", "Study", "Author", "first author", "Reference", "paper"):
        assert recognise_columns(["x", "y", "z", name])["source"] == name
    assert "source" not in recognise_columns(["x", "y", "z", "note"])
    assert recognise_columns(["x", "y", "z", "region", "study"]) == {"x": "x", "y": "y", "z": "z", "region": "region", "source": "study"}
