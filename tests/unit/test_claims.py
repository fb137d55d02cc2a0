"""Claim check (dashboard/claims.py): hand-built cases, the T/Z consistency test against
scipy's exact tails, the sample's published table and an SPM12 fixture's own table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboard.claims import (
    check_row,
    contrast_of,
    direction_of,
    implied_df,
    recognise_columns,
    tz_consistent,
    z_from_t,
)
from dashboard.cli import main
from dashboard.formats import open_study
from tests.bad_inputs import SAMPLE

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders"
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def test_cc001_columns_by_name_with_z_and_Z():
    cols = recognise_columns(["contrast", "x", "y", "z", "region", "k", "T", "Z", "p_fwe_wholebrain"])
    assert cols == {"x": "x", "y": "y", "z": "z", "zscore": "Z", "t": "T", "k": "k", "p": "p_fwe_wholebrain", "region": "region",
                    "contrast": "contrast"}
    assert recognise_columns(["MNI X", "MNI Y", "MNI Z", "peak T", "Z-score", "Cluster size"])["zscore"] == "Z-score"
    assert recognise_columns(["a", "b", "c"], {"x": "a", "y": "b", "z": "c"})["z"] == "c"
    with pytest.raises(ValueError, match="no column for MNI x, y, z"):
        recognise_columns(["a", "b", "c"])


def test_cc002_t_z_consistency_depends_on_df():
    z21 = round(z_from_t(4.0, 21), 2)  # 3.41, hand-checked against scipy below
    assert z21 == round(float(stats.norm.isf(stats.t.sf(4.0, 21))), 2) == 3.41
    assert tz_consistent(4.0, z21, 21) and not tz_consistent(4.0, z21, 84)
    assert not tz_consistent(4.76, 4.61, 84)  # the sample's published pair (its note says so)
    assert tz_consistent(4.93, 4.61, 84)
    df = implied_df(4.76, 4.61)
    assert df is not None and z_from_t(4.76, df) == pytest.approx(4.61, abs=1e-6)
    assert implied_df(3.0, 3.5) is None  # Z above T: no df


def _peaks(rows):
    return pd.DataFrame(rows, columns=["x", "y", "z", "peak_t", "z_score", "k", "_label"])


@pytest.mark.parametrize(("xyz", "verdict", "words"), [
    ((10.0, 10.0, 10.0), "match", "nearest listed peak 0.0 mm away"),  # exactly at the peak
    ((12.0, 10.0, 10.0), "match", "nearest listed peak 2.0 mm away"),  # one voxel off
    ((10.0, 10.0, 20.0), "near", "nearest listed peak 10.0 mm away"),  # 10 mm from the peak, outside the cluster
    ((2.0, 2.0, 2.0), "not found", "outside the analysis mask"),  # outside the mask
])
def test_cc003_hand_built_rows(xyz, verdict, words):
    vol = np.zeros((20, 20, 20))
    vol[0:2, :, :] = np.nan  # outside the mask
    labels = np.zeros((20, 20, 20), np.int32)
    labels[4:8, 4:8, 4:8] = 1
    vol[4:8, 4:8, 4:8] = 4.0
    vol[5, 5, 5] = 5.0
    peaks = _peaks([(10.0, 10.0, 10.0, 5.0, 4.5, 64, 1)])
    row = {"x": xyz[0], "y": xyz[1], "z": xyz[2], "t": 5.0, "zscore": round(z_from_t(5.0, 84), 2)}
    out = check_row(row, volume=vol, labels=labels, affine=AFFINE, peaks=peaks, df=84, atlas_label="")
    assert out.verdict == verdict and words in out.reason, out.reason


def test_cc004_the_samples_published_table(capsys):
    """Its own notes flag two T/Z pairs as garbled in the source: exactly those two are
    'inconsistent'; every other peak is reproduced."""
    assert main(["check-table", str(SAMPLE), "published_clusters", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"].startswith("19 of 21 peaks reproduced within 4 mm")
    table = pd.read_csv(SAMPLE / "tables" / "published_clusters.tsv", sep="\t", keep_default_na=False)
    assert [(r["x"], r["y"], r["z"]) for r in out["rows"]] == list(zip(table.x, table.y, table.z, strict=True))  # input order
    flagged = [i for i, note in enumerate(table["note"]) if "inconsistent" in note]
    assert [i for i, r in enumerate(out["rows"]) if r["verdict"] == "inconsistent"] == flagged
    assert {r["checked_direction"] for r, c in zip(out["rows"], table.contrast, strict=True) if "neutral_gt_cocaine" in c} == {"neg"}


def test_cc005_an_spm_fixtures_own_table_is_reproduced(tmp_path, capsys):
    ref = json.loads((SPM / "ff_cells" / "spm_tables" / "0001_p0.001_k0.json").read_text())
    rows = [{"x": r[11][0], "y": r[11][1], "z": r[11][2], "T": round(r[8], 2), "Z": round(r[9], 2)} for r in ref["TabDat"]["dat"]]
    path = tmp_path / "spm_table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["check-table", str(SPM / "ff_cells"), str(path), "--contrast", "1", "--k", "0", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in out["rows"]] == ["match"] * len(rows)
    assert all(r["nearest_peak_mm"] == 0 for r in out["rows"])


def test_cc006_contrast_and_direction_from_the_table():
    study = open_study(SAMPLE, check_data=False)
    assert contrast_of("placebo_cocaine_gt_neutral", study) == "placebo"
    assert direction_of("placebo_cocaine_gt_neutral", study, "placebo") == "pos"
    assert direction_of("nac_neutral_gt_cocaine", study, "nac") == "neg"
    assert direction_of("interaction_placebo_gt_nac", study, "interaction") == "pos"
    with pytest.raises(ValueError, match="give --contrast"):
        contrast_of("faces_gt_houses", study)


def test_cc007_bad_tables_are_one_line(tmp_path, capsys):
    bad = tmp_path / "t.tsv"
    bad.write_text("a\tb\n1\t2\n")
    assert main(["check-table", str(SAMPLE), str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}: no column for MNI x, y, z")
    assert main(["check-table", str(SAMPLE), "nothing"]) == 2
    assert "not a table of the folder (tables: literature_peaks, published_clusters, sample_planted_clusters)" in capsys.readouterr().err


def test_cc008_z_from_t_is_scipy_stats_exactly():
    """z_from_t calls the ufuncs behind scipy.stats' t.sf and norm.isf: the same numbers."""
    rng = np.random.default_rng(8)
    for t, df in zip(np.r_[rng.uniform(-5, 40, 300), 0.0, np.inf], np.r_[rng.uniform(0.5, 1e4, 300), 84, 21], strict=True):
        want = float(stats.norm.isf(stats.t.sf(t, df)))
        assert z_from_t(t, df) == want or (np.isnan(want) and np.isnan(z_from_t(t, df)))


def test_cc009_cluster_records_are_cached_per_question():
    """A second check reuses the clusters (same rows); another threshold is another question;
    clear_cache forgets them."""
    from dashboard.analysis import Analysis, Threshold
    from dashboard.claims import _CACHE, check_table, clear_cache

    study = open_study(SAMPLE, check_data=False)
    analysis = Analysis(study)
    table = study.tables["published_clusters"]
    first, line = check_table(analysis, table)
    assert len(_CACHE[analysis]) == 5  # placebo and nac both ways, interaction positive: only what the rows ask for
    again, line2 = check_table(analysis, table)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert line == line2
    strict, _ = check_table(analysis, table, threshold=Threshold(t=5.0))
    assert len(_CACHE[analysis]) == 10 and not strict["in_cluster"].equals(first["in_cluster"])
    clear_cache(analysis)
    assert analysis not in _CACHE
    pd.testing.assert_frame_equal(check_table(analysis, table)[0], first, check_exact=True)
