"""Real SPM12 second-level folders (tests/data/spm_folders, written by SPM12 r7771 under
Octave from the sample's images at a coarse grid: scripts/spm_fixtures) opened as they
are: every contrast's table, T and F, equals SPM's own spm_list('Table') output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dashboard.analysis import Analysis, Threshold
from dashboard.cli import main
from dashboard.formats import OpenOptions, detect_format, open_study
from dashboard.results import StudyError
from dashboard.stats import rft
from tests.spm_compare import assert_matches_spm

FOLDERS = Path(__file__).resolve().parents[1] / "data" / "spm_folders"
DESIGNS = sorted(p.parent for p in FOLDERS.glob("*/SPM.mat"))
TABLES = sorted(p for d in DESIGNS for p in (d / "spm_tables").glob("*.json"))


def test_sf000_every_design_is_there():
    assert {d.name for d in DESIGNS} >= {"ff_cells", "ff_subjects", "onesample", "onesample_cov", "twosample", "paired"}
    assert len(TABLES) >= 24


@pytest.fixture(scope="module")
def analyses():
    return {d.name: Analysis(open_study(d)) for d in DESIGNS}


@pytest.mark.parametrize("case", TABLES, ids=[f"{p.parent.parent.name}-{p.stem}" for p in TABLES])
def test_sf001_table_and_footer_are_spms(case, analyses):
    ref = json.loads(case.read_text())
    analysis = analyses[case.parent.parent.name]
    cid = str(ref["contrast"]["index"])
    gm = analysis.study.group_maps[cid]
    assert gm.statistic == ref["contrast"]["STAT"] == ref["inputs"]["STAT"]
    assert [gm.df_effect if gm.statistic == "F" else ref["inputs"]["df"][0], gm.df] == ref["inputs"]["df"]
    desc = str(ref["thresDesc"])
    threshold = Threshold(p_fwe=float(ref["u_input"])) if "FWE" in desc else Threshold(p_unc=float(ref["u_input"]))
    result = analysis.clusters(cid, threshold=threshold, extent=int(ref["k"]), label_atlas=None)
    tol = 1e-5 if "FWE" in desc else 1e-6  # spm_uc's Newton steps stop at 1e-6; spm_u bisects (~1e-8 on T, ~2e-7 on F at 11.6)
    assert result.height == pytest.approx(float(ref["u"]), abs=tol)
    smooth = analysis.smoothness(cid)
    assert smooth is not None and list(smooth.resels) == ref["inputs"]["R"] and smooth.search_volume_vox == ref["inputs"]["S"]
    assert list(smooth.fwhm_vox) == ref["inputs"]["FWHM"]
    # the table at SPM's own u (the threshold's last digits are compared above)
    from dashboard.stats.spm_table import spm_table

    field = rft.Field(gm.statistic, gm.df_effect, gm.df)
    res = spm_table(analysis.study.unmask(analysis.study.group_map(cid).astype(float)), analysis.study.affine, float(ref["u"]),
                    int(ref["k"]), smooth, df=gm.df, stat=field.stat, df_effect=field.df_effect, analysis_mask=analysis.study.mask)
    assert_matches_spm(res.table, res.footer, ref)
    assert len(result.table) == len(ref["TabDat"]["dat"])


def test_sf002_cli_on_an_spm_folder_by_number_and_name(capsys):
    folder = FOLDERS / "ff_cells"
    assert detect_format(folder) == "spm"
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "group maps:" in out and "F, df [2, 84]" in out
    assert main(["clusters", str(folder), "--contrast", "3", "--format", "json"]) == 0
    by_number = json.loads(capsys.readouterr().out)
    label = open_study(folder).contrast("3").label
    assert main(["clusters", str(folder), "--contrast", label, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == by_number["rows"]
    assert by_number["df"] == pytest.approx(84, abs=1e-9) and by_number["statistic"] == "T"


def test_sf003_f_contrast_has_no_negative_direction(capsys):
    study = open_study(FOLDERS / "ff_cells")
    f = next(c for c, gm in study.group_maps.items() if gm.statistic == "F")
    assert main(["clusters", str(FOLDERS / "ff_cells"), "--contrast", f, "--direction", "neg"]) == 2
    assert "is an F contrast: it has no negative direction" in capsys.readouterr().err


def test_sf004_broken_spm_folders_are_one_line(tmp_path):
    folder = tmp_path / "spm"
    shutil.copytree(FOLDERS / "onesample", folder)
    (folder / "SPM.mat").write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b"\0" * 200)
    with pytest.raises(StudyError) as info:
        open_study(folder)
    assert [str(p) for p in info.value.problems] == ["SPM.mat: is a MATLAB v7.3 (HDF5) file, which is not read; re-save it in MATLAB with "
                                                     "load('SPM.mat'); save('SPM.mat', 'SPM', '-v7')"]
    shutil.copy(FOLDERS / "onesample" / "SPM.mat", folder / "SPM.mat")
    spmt = sorted(folder.glob("spmT_*.nii"))[0]
    spmt.unlink()
    with pytest.raises(StudyError) as info:
        open_study(folder)
    assert str(info.value.problems[0]).startswith(f"{spmt.name}: missing: the image of contrast 1")
    (folder / "SPM.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(StudyError, match=r"SPM\.mat: cannot be read as a MATLAB file"):
        open_study(folder)


@pytest.mark.parametrize("design", [d.name for d in DESIGNS])
def test_sf005_refit_from_the_design_images_reproduces_spms_maps(design, capsys):
    """SPM.xY.P holds paths of the machine that estimated the model (/tmp/...): they are
    found relative to the folder, and the refitted design gives SPM's spmT/spmF to 1e-5."""
    assert main(["validate", str(FOLDERS / design)]) == 0
    out = capsys.readouterr().out
    n = len(open_study(FOLDERS / design, check_data=False).group_maps)
    assert n >= 2
    line = next(x for x in out.splitlines() if x.strip().startswith("refit:"))
    assert float(line.split(" to ")[1].split()[0]) < 1e-5, line


def test_sf006_design_images_elsewhere_are_found_by_their_tail(tmp_path, capsys):
    folder = tmp_path / "copied" / "onesample"
    shutil.copytree(FOLDERS / "onesample", folder)
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "images:       0 of 22 design images (SPM.xY.P) found; participant features are off until they are" in out
    assert "    not found:  /tmp/cue-nac-study-spm12/firstlevel/sub-01/con_0005.nii,1" in out and "... and 17 more" in out
    assert "refit:" not in out
    assert main(["validate", str(folder), "--first-level-root", str(FOLDERS)]) == 0
    out = capsys.readouterr().out
    assert "images:       22 of 22 design images (SPM.xY.P) found" in out and "refit:" in out


def test_sf007_scan_paths_written_on_windows(tmp_path):
    from dashboard.formats.spm import resolve_scan

    (tmp_path / "data" / "sub-01").mkdir(parents=True)
    (tmp_path / "spm").mkdir()
    (tmp_path / "data" / "sub-01" / "con_0001.nii").write_bytes(b"")
    written = r"C:\Users\lab\study\data\sub-01\con_0001.nii,1"
    assert resolve_scan(written, r"C:\Users\lab\study\spm", tmp_path / "spm", None) == tmp_path / "spm" / ".." / "data" / "sub-01" / "con_0001.nii"
    assert resolve_scan(written, "/elsewhere", tmp_path / "spm", tmp_path) == tmp_path / "data" / "sub-01" / "con_0001.nii"
    assert resolve_scan(written, "/elsewhere", tmp_path / "spm", None) is None


SUBSET = tuple(f"sub-{i:02d}" for i in range(1, 23) if i not in (4, 17))  # 20 of 22


def _firstlevel(con: str, ids) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    imgs = [np.asarray(nib.load(str(FOLDERS / "firstlevel" / p / f"{con}.nii")).dataobj, dtype=np.float64) for p in ids]
    return np.stack(imgs), np.asarray(nib.load(str(FOLDERS / "onesample" / "mask.nii")).dataobj) > 0


def test_sf008_subset_of_a_one_sample_design_is_scipys_one_sample_t():
    analysis = Analysis(open_study(FOLDERS / "onesample"))
    assert analysis.study.participant_ids == [f"sub-{i:02d}" for i in range(1, 23)]
    values, df = analysis.t_map("1", participants=SUBSET)
    data, mask = _firstlevel("con_0005", SUBSET)
    expected = stats.ttest_1samp(data[:, mask], 0.0).statistic
    assert df == 19
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    assert analysis.map_field("1", "cells", SUBSET, df) == rft.Field("T", 1.0, 19.0)


@pytest.mark.parametrize(("design", "model"), [("ff_cells", "cells"), ("ff_subjects", "subjects")])
def test_sf009_subset_of_a_flexible_factorial_is_the_projects_own_model(design, model):
    """SPM's cells x (subjects) design refitted on 20 participants (dashboard/stats/glm.py)
    equals the project's independent cells / cells + subjects model on the same images."""
    from dashboard.stats.models import fit_group_model

    analysis = Analysis(open_study(FOLDERS / design))
    values, df = analysis.t_map("3", participants=SUBSET)  # the interaction, [1 -1 -1 1] over SPM's cell order
    _, mask = _firstlevel("con_0001", SUBSET)
    cells = np.stack([_firstlevel(f"con_000{k}", SUBSET)[0][:, mask] for k in (1, 2, 3, 4)], axis=1)  # project order
    fit = fit_group_model(cells.astype(np.float32), ["cocaine_placebo", "neutral_placebo", "cocaine_nac", "neutral_nac"], model)
    ref = fit.t_map({"cocaine_placebo": 1, "neutral_placebo": -1, "cocaine_nac": -1, "neutral_nac": 1})
    assert df == fit.df == (80 - 4 if model == "cells" else 80 - 4 - 19)
    np.testing.assert_allclose(values, ref, rtol=1e-4, atol=1e-5)


def test_sf010_subset_f_contrast_and_rft_on_the_refit(capsys):
    analysis = Analysis(open_study(FOLDERS / "ff_cells"))
    table = analysis.clusters("4", participants=SUBSET)
    assert table.statistic == rft.Field("F", 2.0, 76.0)
    assert table.smoothness is not None and table.smoothness.stat == "F" and table.smoothness.df == 76
    assert table.smoothness.resels != analysis.smoothness("4").resels  # re-estimated, not SPM's whole-sample xVol
    assert main(["clusters", str(FOLDERS / "ff_cells"), "--contrast", "4", "--participants", ",".join(SUBSET)]) == 0
    assert "(F > 7.58, df [2, 76]), k >= 10, the folder's design refitted on 20 participants" in capsys.readouterr().out


def test_sf011_participants_tsv_beside_spm_mat_adds_columns(tmp_path, capsys):
    root = tmp_path / "study"
    shutil.copytree(FOLDERS / "onesample_cov", root / "spm")
    shutil.copytree(FOLDERS / "firstlevel", root / "firstlevel")
    shutil.copy(FOLDERS / "firstlevel" / "participants.tsv", root / "spm" / "participants.tsv")
    study = open_study(root / "spm")
    assert {"age", "sex", "cocaine_duration_years"} <= set(study.participants.columns)
    assert study.participants.loc["sub-03", "sex"] == "F" and study.participants["age"].dtype.kind == "f"
    # the design's own covariate (SPM.xC) is kept, not the table's copy
    assert list(study.participants.columns).count("cocaine_duration_years") == 1
    (root / "spm" / "participants.tsv").write_text((root / "spm" / "participants.tsv").read_text() + "sub-99" + "\tn/a" * 24 + "\n")
    assert main(["validate", str(root / "spm")]) == 2
    assert capsys.readouterr().err == "participants.tsv: 1 participant(s) not in the design's images, e.g. sub-99\n"


def test_sf012_regress_on_an_spm_design_uses_its_images(capsys):
    """Cluster values of an SPM design: the participant's image of the condition; the
    voxel mean checked against the first-level files read directly."""
    folder = FOLDERS / "onesample_cov"
    analysis = Analysis(open_study(folder))
    assert analysis.study.design_rows.conditions == ("mean",)
    out = analysis.regress("1", (-56.0, -32.0, 40.0), condition="mean", covariate="cocaine_duration_years", value="mean", method="ols")
    table = analysis.clusters("1", label_atlas=None, with_rft=False)
    vox, _ = analysis.cluster_voxels(table, (-56.0, -32.0, 40.0))
    data, mask = _firstlevel("con_0005", analysis.study.participant_ids)
    expected = data[:, mask][:, vox].mean(axis=1)
    np.testing.assert_allclose(out.participants["value"].to_numpy(float), expected, rtol=1e-6)
    cov = analysis.study.participants["cocaine_duration_years"].to_numpy(float)
    ref = stats.linregress(cov, expected)
    assert out.fit.slope == pytest.approx(ref.slope, rel=1e-6) and out.fit.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert main(["regress", str(folder), "--contrast", "1", "--peak=-56,-32,40", "--condition", "1", "--covariate",
                 "cocaine_duration_years", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 22
    assert main(["regress", str(folder), "--contrast", "1", "--peak=-56,-32,40", "--condition", "cells", "--covariate", "x"]) == 2
    assert "unknown condition (a condition column of the design) 'cells'; known: 1 mean" in capsys.readouterr().err


def test_sf013_two_sample_conditions_are_the_groups():
    analysis = Analysis(open_study(FOLDERS / "twosample"))
    dr = analysis.study.design_rows
    assert dr.conditions == ("Group_{1}", "Group_{2}")
    assert sorted({c for c in dr.row_conditions}) == [0, 1]


def test_sf014_view_defaults_beside_spm_mat_or_on_the_command_line(tmp_path, capsys):
    from dashboard.app.state import default_state

    root = tmp_path / "study"
    shutil.copytree(FOLDERS / "onesample_cov", root / "spm")
    shutil.copytree(FOLDERS / "firstlevel", root / "firstlevel")
    (root / "spm" / "cue-dashboard.json").write_text(json.dumps({"ViewDefaults": {"Contrast": "2", "Condition": "mean"}}))
    state = default_state(open_study(root / "spm"))
    assert state["contrast"] == "2" and state["condition"] == "mean" and state["covariate"] == "cocaine_duration_years"
    other = tmp_path / "view.json"
    other.write_text(json.dumps({"Contrast": "9", "Colour": "red"}))
    assert main(["validate", str(root / "spm"), "--view-defaults", str(other)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "view.json: ViewDefaults has unknown keys 'Colour' (known: Contrast, Condition, Covariate, QuickFilters)",
        "view.json: ViewDefaults Contrast '9' is not one of the folder's: 1, 2, 3"]


def test_sf015_participants_table_by_order_or_by_flag(tmp_path, capsys):
    root = tmp_path / "study"
    shutil.copytree(FOLDERS / "onesample", root / "spm")
    shutil.copytree(FOLDERS / "firstlevel", root / "firstlevel")
    import pandas as pd

    full = pd.read_csv(FOLDERS / "firstlevel" / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    by_order = root / "by_order.tsv"
    full.drop(columns="participant_id")[["age", "sex"]].to_csv(by_order, sep="\t", index=False)
    study = open_study(root / "spm", OpenOptions(participants_table=by_order))
    assert study.participants.loc["sub-03", "sex"] == "F" and study.participants["age"].dtype.kind == "f"  # matched by order
    full.iloc[:5].to_csv(root / "short.tsv", sep="\t", index=False)  # by id: five rows is fine
    assert "age" in open_study(root / "spm", OpenOptions(participants_table=root / "short.tsv")).participants.columns
    full[["age"]].iloc[:5].to_csv(root / "short_no_id.tsv", sep="\t", index=False)
    assert main(["validate", str(root / "spm"), "--participants-table", str(root / "short_no_id.tsv")]) == 2
    assert capsys.readouterr().err == ("short_no_id.tsv: has no participant_id column and 5 rows for the design's 22 participants: "
                                       "rows can be matched neither by id nor by order\n")
