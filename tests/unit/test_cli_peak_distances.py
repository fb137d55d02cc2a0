"""`cue-dashboard peak-distances`: other studies' peaks against one contrast's clusters,
checked against a brute-force minimum over the listed clusters' voxel centres."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dashboard.analysis import Analysis, Threshold
from dashboard.cli import main
from dashboard.formats import open_study
from tests.conftest import SAMPLE


def test_pd001_literature_peaks_against_placebo(capsys):
    assert main(["peak-distances", str(SAMPLE), "literature_peaks", "--contrast", "placebo", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    table = pd.read_csv(SAMPLE / "tables" / "literature_peaks.tsv", sep="\t")
    assert len(out["rows"]) == len(table)
    analysis = Analysis(open_study(SAMPLE, check_data=False))
    ct = analysis.clusters("placebo", directions=("pos",), threshold=Threshold(p_unc=0.001), extent=10, label_atlas=None, with_rft=False)
    ijk = np.argwhere(ct.labels["pos"] > 0)
    centres = (analysis.study.affine @ np.c_[ijk, np.ones(len(ijk))].T)[:3].T
    for row, (_, peak) in zip(out["rows"], table.iterrows(), strict=True):
        voxel = np.array([row["voxel_x"], row["voxel_y"], row["voxel_z"]])
        assert np.all(np.abs(voxel - peak[["x", "y", "z"]].to_numpy(float)) <= 1.0 + 1e-9)  # the peak's voxel (2 mm grid)
        assert abs(row["nearest_cluster_mm"] - np.min(np.linalg.norm(centres - voxel, axis=1))) < 1e-6
    inside = sum(r["nearest_cluster_mm"] == 0 for r in out["rows"])
    assert out["summary"] == f"{len(table)} peaks against placebo (pos, k >= 10): {inside} inside a listed cluster"


def test_pd002_a_table_without_coordinates_is_one_line(tmp_path, capsys):
    bad = tmp_path / "peaks.csv"
    bad.write_text("study,region\nDoe,PCC\n")
    assert main(["peak-distances", str(SAMPLE), str(bad), "--contrast", "placebo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: no column for MNI x, y, z") and err.count("\n") == 1
