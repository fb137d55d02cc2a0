"""An FSL group FEAT folder.  FSL is not available here: tests/data/fsl/group.gfeat is
built from FSL's documented layout by scripts/fsl_fixture/make_gfeat.py (a one-sample
OLS of the SPM fixtures' placebo images), not written by FSL (see its README.txt)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from dashboard.analysis import Analysis, Threshold
from dashboard.cli import main
from dashboard.formats import detect_format, open_study
from dashboard.results import StudyError
from dashboard.stats import rft

DATA = Path(__file__).resolve().parents[1] / "data"
GFEAT = DATA / "fsl" / "group.gfeat"


def test_fs001_gfeat_opens_with_fsls_smoothness(capsys):
    assert detect_format(GFEAT) == "fsl" and detect_format(GFEAT / "cope1.feat") == "fsl"
    assert main(["validate", str(GFEAT)]) == 0
    out = capsys.readouterr().out
    assert "group maps:   cope1zstat1 (Z)" in out and "FSL:          Z maps listed with SPM's rules" in out
    study = open_study(GFEAT)
    gm = study.group_maps["cope1zstat1"]
    assert gm.statistic == "Z" and math.isinf(gm.df) and study.contrasts[0].label == "group mean"
    fields = dict(line.split() for line in (GFEAT / "cope1.feat" / "stats" / "smoothness").read_text().splitlines())
    fwhm = float(fields["RESELS"]) ** (1 / 3)
    assert gm.smoothness["FWHMVoxels"] == [pytest.approx(fwhm)] * 3
    assert float(fields["DLH"]) == pytest.approx((4 * math.log(2)) ** 1.5 / float(fields["RESELS"]), rel=1e-5)  # smoothest's relation
    assert gm.smoothness["Resels"] == pytest.approx(list(rft.resel_counts(study.mask, (fwhm,) * 3)))
    assert gm.smoothness["SearchVolumeVoxels"] == int(fields["VOLUME"]) == study.n_voxels


def test_fs002_same_clusters_as_spm_on_the_same_data():
    """Z is a monotone function of T at df 21, so at p < 0.001 the FEAT z map must give the
    clusters and peaks SPM12 itself listed for the one-sample T map of the same images."""
    ref = json.loads((DATA / "spm_folders" / "onesample" / "spm_tables" / "0001_p0.001_k0.json").read_text())
    table = Analysis(open_study(GFEAT)).clusters("cope1zstat1", threshold=Threshold(p_unc=0.001), extent=0, label_atlas=None).table
    assert [[r["x"], r["y"], r["z"]] for r in table.to_dict("records")] == [[float(v) for v in row[11]] for row in ref["TabDat"]["dat"]]
    sizes = [row[4] for row in ref["TabDat"]["dat"] if row[4] != []]
    assert table.drop_duplicates("cluster_id")["k"].tolist() == sizes
    z_spm = [row[9] for row in ref["TabDat"]["dat"]]
    assert table["z_score"].tolist() == pytest.approx(z_spm, abs=2e-5)  # SPM's equivalent Z of the T vs FSL-style ttoz


def test_fs003_broken_or_missing_smoothness(tmp_path, capsys):
    folder = tmp_path / "g.gfeat"
    shutil.copytree(GFEAT, folder)
    smooth = folder / "cope1.feat" / "stats" / "smoothness"
    smooth.write_text("DLH 1.2\nVOLUME lots\n")
    assert main(["validate", str(folder)]) == 2
    assert capsys.readouterr().err == "cope1.feat/stats/smoothness: needs RESELS and VOLUME lines (as FSL's smoothest writes them)\n"
    smooth.unlink()
    assert main(["validate", str(folder)]) == 0
    assert "cope1.feat/stats/smoothness missing: no RFT p-values for cope 1" in capsys.readouterr().out
    assert Analysis(open_study(folder)).clusters("cope1zstat1").footers == {}
    (folder / "cope1.feat" / "mask.nii.gz").unlink()
    with pytest.raises(StudyError, match=r"cope1\.feat/mask\.nii\.gz: missing"):
        open_study(folder)


def test_fs004_a_subset_refits_the_lower_level_copes():
    """filtered_func_data's volumes are the participants ('input 01'..); a subset refits
    design.mat's rows by OLS: the one-sample T of those inputs (scipy)."""
    import nibabel as nib
    import numpy as np
    from scipy import stats

    analysis = Analysis(open_study(GFEAT))
    ids = analysis.study.participant_ids
    assert ids[0] == "input 01" and len(ids) == 22
    keep = tuple(p for i, p in enumerate(ids) if i not in (3, 16))
    values, df = analysis.t_map("cope1zstat1", participants=keep)
    data = np.asarray(nib.load(str(GFEAT / "cope1.feat" / "filtered_func_data.nii.gz")).dataobj, dtype=np.float64)
    mask = analysis.study.mask
    chosen = [i for i in range(22) if i not in (3, 16)]
    expected = stats.ttest_1samp(np.stack([data[..., i][mask] for i in chosen]), 0.0).statistic
    assert df == 19
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    assert analysis.map_field("cope1zstat1", "cells", keep, df) == rft.Field("T", 1.0, 19.0)
    assert analysis.map_field("cope1zstat1", "cells", None, math.inf).stat == "Z"  # everyone: FEAT's own z map
