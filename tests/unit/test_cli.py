"""The analysis commands of the CLI: machine-readable output on real folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard import cli
from dashboard.sample import DURATION

SAMPLE = Path(__file__).resolve().parents[2] / "sample_results"
REQUIRED_CLUSTER_KEYS = {"direction", "cluster_id", "p_set", "c_set", "p_fwe_cluster", "p_fdr_cluster", "k", "p_unc_cluster",
                         "p_fwe_peak", "p_fdr_peak", "peak_t", "z_score", "p_unc", "x", "y", "z", "label"}
FOOTER_KEYS = {"height_t", "height_p_unc", "height_p_fwe", "extent_k", "extent_p_unc", "extent_p_fwe", "expected_voxels_per_cluster",
               "expected_clusters", "fwe_p_height", "fdr_p_height", "fwe_c_extent", "fdr_c_extent", "df", "fwhm_mm", "fwhm_vox",
               "volume_mm3", "volume_voxels", "volume_resels", "voxel_size_mm", "resel_voxels", "max_peaks", "min_distance_mm", "stat"}


def test_cl001_clusters_json_sample_interaction_sfg_first(capsys):
    assert cli.main(["clusters", str(SAMPLE), "--contrast", "interaction", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert REQUIRED_CLUSTER_KEYS == set(rows[0])
    assert FOOTER_KEYS == set(out["footer"]) and out["footer"]["df"] == [1, 84] and out["footer"]["extent_k"] == 10
    assert out["footer"]["stat"] == "T"
    first = rows[0]
    assert (first["x"], first["y"], first["z"]) == (14, 64, 14)
    assert first["label"].startswith("Frontal_Sup")
    assert first["peak_t"] == pytest.approx(4.57, abs=0.15)
    assert 0 < first["p_fwe_cluster"] < 0.05  # significant at cluster level, as published


def test_cl002_clusters_tsv_header_and_threshold_line(capsys):
    assert cli.main(["clusters", str(SAMPLE), "--contrast", "placebo", "--direction", "neg", "--t", "4.0", "--k", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# placebo neg: T > 4.00")
    assert out[1].split("\t")[:4] == ["direction", "cluster_id", "p_set", "c_set"]
    assert len(out) >= 3
    footer = [line for line in out if line.startswith("# ")][1:]
    assert footer[0].startswith("# Height threshold: T = 4.00, p = 0.000 (")
    assert footer[1].startswith("# Extent threshold: k = 5 voxels, p = ")
    assert any(line.startswith("# FWEp: ") and ", FDRp: " in line and ", FWEc: " in line for line in footer)
    assert "# Degrees of freedom = [1.0, 84.0]" in footer


def test_cl003_regress_json_headline(capsys):
    args = ["regress", str(SAMPLE), "--contrast", "interaction", "--peak", "14,64,14", "--condition", "cocaine_placebo", "--covariate", DURATION, "--format", "json"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["intercept"] == pytest.approx(-0.44, abs=0.03)
    assert out["slope"] == pytest.approx(0.13, abs=0.01)
    assert out["p_value"] < 0.001
    assert len(out["participants"]) == 22
    assert {"participant_id", "covariate", "value", "weight"} == set(out["participants"][0])
    assert sum(p["weight"] for p in out["participants"]) == out["n_eff"]


def test_cl003b_regress_ols_weights_are_the_ols_fit(capsys):
    args = ["regress", str(SAMPLE), "--contrast", "interaction", "--peak", "14,64,14", "--condition", "cocaine_placebo",
            "--covariate", DURATION, "--format", "json", "--method", "ols"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "ols" and out["n_eff"] == 22
    assert [p["weight"] for p in out["participants"]] == [1.0] * 22  # OLS uses everyone (LTS down-weights one)


def test_cl012_clusters_piped_into_a_closed_reader_stops_quietly():
    """As `cue-dashboard clusters ... | head -1`: the reader is gone before the table is written."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "dashboard.cli", "clusters", str(SAMPLE), "--contrast", "placebo"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 0


def test_cl004_participant_subset_and_model_change_df(capsys):
    subset = ",".join(f"sub-{i:02d}" for i in range(1, 12))
    assert cli.main(["clusters", str(SAMPLE), "--contrast", "placebo", "--participants", subset, "--model", "paired"]) == 0
    assert "df 10" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["clusters", "--contrast", "nope"], "unknown contrast 'nope'"),
        (["regress", "--contrast", "interaction", "--peak", "0,0,0", "--condition", "cocaine_placebo", "--covariate", DURATION], "no cluster"),
        (["regress", "--contrast", "interaction", "--peak", "14,64,14", "--condition", "cocaine_placebo", "--covariate", "shoe_size"], "no column 'shoe_size'"),
        (["clusters", "--contrast", "placebo", "--participants", "sub-01,sub-77"], "unknown participants: sub-77"),
    ],
)
def test_cl005_bad_requests_exit_2_with_one_line(args, message, capsys):
    code = cli.main([args[0], str(SAMPLE), *args[1:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err


def test_cl006_group_only_folder_clusters_use_stored_map_and_regress_says_why(tmp_path, capsys):
    from tests.studies import write_tiny_study

    root = write_tiny_study(tmp_path / "g", with_images=False)
    assert cli.main(["clusters", str(root), "--contrast", "placebo", "--p-unc", "0.05", "--k", "1"]) == 0
    capsys.readouterr()
    code = cli.main(["regress", str(root), "--contrast", "placebo", "--peak", "0,0,0", "--condition", "cocaine_placebo", "--covariate", "age"])
    assert code == 2
    assert "participant images" in capsys.readouterr().err


def test_cl007_serve_warns_off_loopback_and_never_debug_by_default(monkeypatch, tiny_study, capsys):
    import dash

    seen = {}
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: seen.update(kw))
    assert cli.main(["serve", str(tiny_study), "--host", "0.0.0.0", "--port", "8765"]) == 0
    assert seen == {"host": "0.0.0.0", "port": 8765, "debug": False}
    assert "warning: binding to 0.0.0.0" in capsys.readouterr().err
    assert cli.main(["serve", str(tiny_study)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_cl008_serve_bad_folder_exit_2(tmp_path, capsys):
    (tmp_path / "design.json").write_text("{}")
    assert cli.main(["serve", str(tmp_path)]) == 2
    assert "dataset_description.json: missing" in capsys.readouterr().err


def test_cl009_group_only_folder_refuses_other_models_and_subsets(tmp_path, capsys):
    from tests.studies import write_tiny_study

    root = write_tiny_study(tmp_path / "g", with_images=False)
    assert cli.main(["clusters", str(root), "--contrast", "placebo", "--model", "paired"]) == 2
    assert "needs participant images" in capsys.readouterr().err
    assert cli.main(["clusters", str(root), "--contrast", "placebo", "--participants", "sub-01,sub-02,sub-03"]) == 2
    assert "needs participant images" in capsys.readouterr().err


def test_cl010_small_volume_correction_in_aal_roi(capsys):
    base = ["clusters", str(SAMPLE), "--contrast", "placebo", "--k", "1", "--format", "json"]
    assert cli.main(base) == 0
    whole = {(r["x"], r["y"], r["z"]): r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert cli.main([*base, "--svc-region", "Hippocampus_R,Hippocampus_L"]) == 0
    svc = json.loads(capsys.readouterr().out)["rows"]
    assert svc and all(r["label"].startswith("Hippocampus") for r in svc)
    peak = next(r for r in svc if (r["x"], r["y"], r["z"]) == (30, -34, -4))  # published R hippocampus
    assert peak["peak_t"] == whole[(30, -34, -4)]["peak_t"]
    assert peak["p_fwe_peak"] < 0.05 < whole[(30, -34, -4)]["p_fwe_peak"]  # as published: SVC 0.005, whole brain 0.212


def test_cl011_svc_mask_off_grid_is_an_error(tmp_path, capsys):
    import nibabel as nib
    import numpy as np

    path = tmp_path / "roi.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4)), str(path))
    assert cli.main(["clusters", str(SAMPLE), "--contrast", "placebo", "--svc-mask", str(path)]) == 2
    assert "not on the study grid" in capsys.readouterr().err
