"""Folders other than the project's own layout: plain statistic maps (NeuroVault-style).

Built from real images: the sample's group T maps (with their sidecars and mask) and a
Z map converted from one of them with scipy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import stats

from dashboard.analysis import Analysis, Threshold
from dashboard.cli import main
from dashboard.formats import OpenOptions, detect_format, open_study
from dashboard.formats.maps import statistic_from_name
from dashboard.results import StudyError, load_study
from tests.bad_inputs import SAMPLE

GROUP = SAMPLE / "group"
T_MAP = "task-cue_contrast-interaction_stat-t_statmap"


def _maps_folder(out: Path, *, sidecar: bool = True, name: str = T_MAP) -> Path:
    out.mkdir()
    shutil.copy(GROUP / f"{T_MAP}.nii.gz", out / f"{name}.nii.gz")
    if sidecar:
        shutil.copy(GROUP / f"{T_MAP}.json", out / f"{name}.json")
    shutil.copy(GROUP / "task-cue_desc-brain_mask.nii.gz", out / "task-cue_desc-brain_mask.nii.gz")
    return out


@pytest.mark.parametrize(("name", "stat"), [
    ("task-x_contrast-a_stat-t_statmap.nii.gz", "T"), ("sub-01_stat-z_statmap.nii", "Z"), ("spmT_0003.nii", "T"),
    ("spmF_0004.nii", "F"), ("zstat1.nii.gz", "Z"), ("zfstat2.nii.gz", "Z"), ("tstat12.nii.gz", "T"), ("fstat1.nii.gz", "F"),
    ("faces_z_map.nii.gz", "Z"), ("contrast-faces_zmap.nii.gz", "Z"), ("motor_t_map.nii.gz", "T"), ("cope1.nii.gz", None),
    ("beta_0001.nii", None), ("statmap.nii.gz", None),
])
def test_fm001_statistic_from_the_name(name, stat):
    assert statistic_from_name(name) == stat


def test_fm002_a_folder_of_the_samples_t_map_gives_the_projects_table(tmp_path):
    """The same T map with the same sidecar (df, smoothness) and mask, read as a plain map,
    gives exactly the table the project's folder gives."""
    folder = _maps_folder(tmp_path / "maps")
    assert detect_format(folder) == "maps"
    plain = Analysis(open_study(folder))
    (cid,) = plain.study.group_maps
    ours = plain.clusters(cid, directions=("pos", "neg"))
    project = Analysis(load_study(SAMPLE, check_data=False)).clusters("interaction", directions=("pos", "neg"))
    assert ours.df == project.df == 84
    assert ours.table.drop(columns="label").equals(project.table.drop(columns="label"))
    assert ours.footers["pos"] == project.footers["pos"]


def test_fm003_z_map_uses_gaussian_conventions(tmp_path, capsys):
    folder = tmp_path / "z"
    folder.mkdir()
    img = nib.load(str(GROUP / f"{T_MAP}.nii.gz"))
    t = np.asarray(img.get_fdata())
    z = np.where(np.isfinite(t), stats.norm.isf(stats.t.sf(t, 84)), np.nan).astype(np.float32)
    nib.save(nib.Nifti1Image(z, img.affine), str(folder / "zstat1.nii.gz"))
    assert main(["validate", str(folder)]) == 0
    assert "group maps:   zstat1 (Z)" in capsys.readouterr().out
    assert main(["clusters", str(folder), "--contrast", "1", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["height_threshold"] == pytest.approx(stats.norm.isf(0.001), rel=1e-12)
    assert out["title"] == "zstat1 pos: p < 0.001 uncorrected (Z > 3.09, Gaussian), k >= 10, the folder's stored map"
    assert out["statistic"] == "Z" and out["df"] is None
    rows = out["rows"]
    assert rows and out["footer"] is None  # no smoothness given: no RFT columns
    for row in rows:
        p = stats.norm.sf(row["peak_t"])
        assert row["p_unc"] == pytest.approx(-np.expm1(-(p + np.finfo(float).eps)), rel=1e-9)  # SPM's R = 1 peak p
        assert row["z_score"] == pytest.approx(row["peak_t"], abs=1e-6)  # Z of a Z map is the map


def test_fm004_t_map_without_df_says_what_to_add(tmp_path, capsys):
    folder = _maps_folder(tmp_path / "nodf", sidecar=False, name="spmT_0001")
    assert main(["validate", str(folder)]) == 2
    assert capsys.readouterr().err == ("spmT_0001.nii.gz: a T map needs its error df (no df): "
                                       "add DegreesOfFreedom to a sidecar or pass --df N\n")
    assert main(["validate", str(folder), "--df", "84"]) == 0
    assert "(T, df 84)" in capsys.readouterr().out


def test_fm005_unknown_statistic_and_contrast_names(tmp_path, capsys):
    folder = _maps_folder(tmp_path / "plain", sidecar=False, name="result")
    assert main(["validate", str(folder)]) == 2
    assert capsys.readouterr().err.startswith("result.nii.gz: statistic unknown: add a sidecar with StatisticType")
    assert main(["clusters", str(folder), "--stat", "t", "--df", "84", "--contrast", "nothing"]) == 2
    assert capsys.readouterr().err == f"{folder}: unknown contrast 'nothing'; known: 1 result\n"
    assert main(["clusters", str(folder), "--stat", "t", "--df", "84", "--contrast", "result", "--format", "json"]) == 0


def test_fm006_empty_and_foreign_folders(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(StudyError, match="not a results folder"):
        open_study(tmp_path)
    only_mask = tmp_path / "m"
    only_mask.mkdir()
    shutil.copy(GROUP / "task-cue_desc-brain_mask.nii.gz", only_mask / "mask.nii.gz")
    with pytest.raises(StudyError, match="no statistic maps besides the mask"):
        open_study(only_mask, OpenOptions())


def test_fm007_thresholds_on_f_and_z_fields():
    from dashboard.stats import rft

    assert Threshold(p_unc=0.001).height(20, None, rft.Field("F", 2, 20)) == pytest.approx(stats.f.isf(0.001, 2, 20))
    assert Threshold(p_unc=0.001).describe(20, None, rft.Field("F", 2, 20)).endswith("(F > 9.95, df [2, 20])")
