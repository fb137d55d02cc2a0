"""The committed synthetic sample against the published study (../shared/study copies in
dashboard/data), computed with the app's own analysis code."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboard.analysis import Analysis, Threshold
from dashboard.results import load_study
from dashboard.sample import DURATION, QUANTUM, T_QUANTUM, data_file, make_sample
from dashboard.stats.models import fit_group_model

SAMPLE = Path(__file__).resolve().parents[2] / "sample_results"
DIRECTION = {"cocaine_gt_neutral": "pos", "neutral_gt_cocaine": "neg", "placebo_gt_nac": "pos"}


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return Analysis(load_study(SAMPLE))


@pytest.fixture(scope="module")
def tables(analysis):
    """App cluster tables at p < 0.001 (T > 3.19, df 84), k >= 10, per contrast and direction."""
    out = {}
    for contrast in ("placebo", "nac", "interaction"):
        for direction in ("pos", "neg"):
            out[(contrast, direction)] = analysis.clusters(contrast, directions=(direction,), threshold=Threshold(p_unc=0.001), extent=10)
    return out


def _published() -> pd.DataFrame:
    pub = pd.read_csv(data_file("published_clusters.tsv"), sep="\t", keep_default_na=False)
    parts = pub["contrast"].str.extract(r"^(placebo|nac|interaction)_(.*)$")
    return pub.assign(c=parts[0], direction=parts[1].map(DIRECTION))


def test_sm001_threshold_is_published_t_3_19(tables):
    assert tables[("placebo", "pos")].df == 84
    assert tables[("placebo", "pos")].height == pytest.approx(3.19, abs=0.005)


@pytest.mark.parametrize("row", _published().to_dict("records"), ids=lambda r: f"{r['contrast']}@{r['x']},{r['y']},{r['z']}")
def test_sm002_every_published_row_is_a_local_maximum(tables, row):
    tab = tables[(row["c"], row["direction"])].table
    d = np.sqrt((tab.x - row["x"]) ** 2 + (tab.y - row["y"]) ** 2 + (tab.z - row["z"]) ** 2)
    assert d.min() <= 4.0, f"no listed maximum within 4 mm of {row['x']},{row['y']},{row['z']}"
    hit = tab.loc[d.idxmin()]
    if "inconsistent" in row["note"]:  # the published T cell is unreliable: match Z
        assert hit.z_score == pytest.approx(row["Z"], abs=0.15)
    else:
        assert hit.peak_t == pytest.approx(row["T"], abs=0.15)
    assert abs(hit.k - row["k"]) <= 0.3 * row["k"], f"k {hit.k} vs published {row['k']}"


def test_sm003_no_other_cluster_larger_than_30(tables):
    pub = _published()
    planted = pd.read_csv(SAMPLE / "tables" / "sample_planted_clusters.tsv", sep="\t")
    for (contrast, direction), res in tables.items():
        main = res.table[res.table.is_main_peak]
        for row in main.itertuples():
            if row.k <= 30:
                continue
            listed = res.table[res.table.cluster_id == row.cluster_id][["x", "y", "z"]].to_numpy(float)
            ref = pd.concat([
                pub[(pub.c == contrast) & (pub.direction == direction)][["x", "y", "z"]],
                planted[(planted.contrast == contrast) & (planted.direction.map(DIRECTION) == direction)][["x", "y", "z"]],
            ]).to_numpy(float)
            dist = np.sqrt(((listed[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min() if len(ref) else np.inf
            assert dist <= 4.0, f"{contrast} {direction}: unplanned cluster of {row.k} voxels at {row.x},{row.y},{row.z}"


def test_sm004_illustrative_clusters_are_marked(tables):
    planted = pd.read_csv(SAMPLE / "tables" / "sample_planted_clusters.tsv", sep="\t")
    pub = _published()
    assert set(planted.origin) == {"published", "illustrative"}
    assert (planted.origin == "published").sum() == len(pub)
    illus = planted[planted.origin == "illustrative"]
    assert set(illus.contrast) == {"placebo"}
    # STUDY.md: prefrontal and insula regions named without coordinates
    text = " ".join(illus.region).lower()
    for word in ("precentral", "inferior frontal", "superior frontal", "frontal pole", "insula"):
        assert word in text
    tab = tables[("placebo", "pos")].table
    for r in illus.itertuples():
        d = np.sqrt((tab.x - r.x) ** 2 + (tab.y - r.y) ** 2 + (tab.z - r.z) ** 2)
        assert d.min() <= 4.0


def test_sm005_stored_maps_are_the_recomputed_cells_model(analysis):
    study = analysis.study
    fit = fit_group_model(study.participant_data, study.condition_ids, "cells")
    for c in study.contrasts:
        # stored maps are rounded to T_QUANTUM, then cast to float32
        np.testing.assert_allclose(study.group_map(c.id), fit.t_map(c.weights), rtol=1e-6, atol=T_QUANTUM / 2 + 1e-6)
        assert study.group_maps[c.id].df == 84


def test_sm006_headline_regression(analysis):
    out = analysis.regress("interaction", (14, 64, 14), condition="cocaine_placebo", covariate=DURATION)
    fit = out.fit
    assert fit.intercept == pytest.approx(-0.44, abs=0.03)
    assert fit.slope == pytest.approx(0.13, abs=0.01)
    assert fit.r_squared == pytest.approx(0.42, abs=0.03)
    assert fit.p_value < 0.001
    assert 1 <= (fit.weights == 0).sum() <= 3
    assert out.cluster_size == pytest.approx(69, rel=0.3)
    assert out.cluster_peak == (14.0, 64.0, 14.0)
    # the app passes the cluster table it already has: the same answer
    table = analysis.clusters("interaction", directions=("pos", "neg"), label_atlas=None, with_rft=False)
    again = analysis.regress("interaction", (14, 64, 14), condition="cocaine_placebo", covariate=DURATION, table=table)
    assert again.fit.slope == out.fit.slope and again.participants.equals(out.participants) and again.cluster_peak == out.cluster_peak


@pytest.mark.parametrize("condition,covariate", [
    ("neutral_placebo", DURATION),
    ("cocaine_placebo", "occus"),
    ("cocaine_placebo", "vas_craving_placebo_before"),
    ("cocaine_placebo", "vas_craving_placebo_after"),
])
def test_sm007_other_regressions_not_significant(analysis, condition, covariate):
    out = analysis.regress("interaction", (14, 64, 14), condition=condition, covariate=covariate)
    assert out.fit.p_value > 0.1


def test_sm008_participant_characteristics(analysis):
    df = analysis.study.participants
    chars = pd.read_csv(data_file("sample_characteristics.tsv"), sep="\t").set_index("variable")
    assert len(df) == 22
    assert (df.sex == "M").sum() == 16 and (df.sex == "F").sum() == 6
    assert (df.route == "nasal").sum() == 19
    assert (df.urine_cocaine_before_placebo == "positive").sum() == 8
    assert (df.urine_cocaine_before_nac == "positive").sum() == 11
    assert (df.session_order == "placebo_first").sum() == 11
    numeric = chars[pd.to_numeric(chars["sd"], errors="coerce").notna()]
    assert len(numeric) >= 15
    for col, row in numeric.iterrows():
        assert df[col].mean() == pytest.approx(float(row["mean"]), rel=0.10), col
        assert df[col].std() == pytest.approx(float(row["sd"]), rel=0.10), col
        if not pd.isna(row["min"]):
            assert df[col].min() >= row["min"] - 1e-9 and df[col].max() <= row["max"] + 1e-9, col
        assert df[col].min() >= 0, col
    grams = df.cocaine_grams_per_week
    assert grams.max() == 52.5 and stats.skew(grams) > 2  # extreme value, skewed


def test_sm009_craving_means_and_one_missing(analysis):
    df = analysis.study.participants
    for col, target in [("vas_craving_placebo_before", 3.41), ("vas_craving_placebo_after", 4.27), ("vas_craving_nac_before", 3.91), ("vas_craving_nac_after", 4.92)]:
        assert df[col].mean() == pytest.approx(target, abs=0.3), col
        assert df[col].between(0, 10).all() or df[col].isna().any()
    vas = df.filter(like="vas_craving")
    assert vas.isna().sum().sum() == 1
    assert vas.dropna().shape[0] == 21


def test_sm010_size_budget_and_tables():
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size <= 40 * 1024 * 1024
    study = load_study(SAMPLE, check_data=False)
    assert study.synthetic
    assert "not participant data" in study.description["SyntheticNote"]
    assert set(study.tables) >= {"published_clusters", "literature_peaks", "sample_planted_clusters"}
    pub = pd.read_csv(data_file("published_clusters.tsv"), sep="\t", keep_default_na=False)
    assert len(study.tables["published_clusters"]) == len(pub)


def test_sm011_every_published_peak_is_a_voxel_centre(analysis):
    aff = analysis.study.affine
    for r in _published().itertuples():
        ijk = np.linalg.solve(aff, [r.x, r.y, r.z, 1.0])[:3]
        np.testing.assert_allclose(ijk, np.round(ijk), atol=1e-9)


# test_sm012: what may differ between machines.  The generator quantises everything that
# comes out of floating-point arithmetic (dashboard/sample.py: participant images to
# QUANTUM, group T maps to T_QUANTUM, smoothness to 6 significant digits), so the bytes
# are the same on every machine unless a value lies within the last-bit noise (~1e-14)
# of a rounding midpoint: then it is one step off.  So: text files and NIfTI headers byte
# for byte; image values to within one storage step in at most MAX_STEP_FLIPS voxels per
# image (a real change of the generator moves far more voxels, or by more than a step);
# sidecar floats to within one unit of their 6th significant digit.
MAX_STEP_FLIPS = 10
SIDECAR_RTOL = 1e-5  # one unit of the 6th significant digit is at most 1e-5 relative


def _same_image(generated: Path, committed: Path) -> None:
    a, b = nib.load(generated), nib.load(committed)
    head = int(a.header["vox_offset"])  # header and extensions, as stored (slope included)
    with gzip.open(generated) as fa, gzip.open(committed) as fb:
        assert fa.read(head) == fb.read(head), f"{committed.name}: header differs"
    va = np.asanyarray(a.dataobj.get_unscaled()).astype(np.float64)
    vb = np.asanyarray(b.dataobj.get_unscaled()).astype(np.float64)
    assert np.array_equal(np.isnan(va), np.isnan(vb)), f"{committed.name}: mask differs"
    dtype = a.get_data_dtype()
    if dtype == np.float32:  # group T map on the T_QUANTUM grid
        step = T_QUANTUM * (1 + 1e-3)  # + float32 rounding of the grid values
    elif dtype == np.int16:  # participant image, raw integers (slope QUANTUM, in the header)
        step = 1
        assert float(a.dataobj.slope) == pytest.approx(QUANTUM)
    else:  # the brain mask: no arithmetic
        step = 0
    diff = np.abs(np.nan_to_num(va) - np.nan_to_num(vb))
    assert diff.max() <= step, f"{committed.name}: values differ by up to {diff.max():g} (raw)"
    flips = int((diff > 0).sum())
    assert flips <= MAX_STEP_FLIPS, f"{committed.name}: {flips} values one step off"


def _same_json(a: Any, b: Any, where: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert a == pytest.approx(b, rel=SIDECAR_RTOL, abs=1e-12), f"{where}: {a} vs {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            _same_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_json(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


@pytest.mark.slow
def test_sm012_generator_is_deterministic_and_is_what_is_committed(tmp_path):
    """The committed sample, regenerated: byte for byte where bytes are fixed on every
    machine, within one quantisation step where they come from floating-point sums."""
    out = make_sample(tmp_path / "s")
    generated = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file()}
    assert generated == committed
    for rel in sorted(generated):
        if rel.name.endswith((".nii", ".nii.gz")):
            _same_image(out / rel, SAMPLE / rel)
        elif rel.parts[0] == "group" and rel.suffix == ".json":  # holds the smoothness estimate
            _same_json(json.loads((out / rel).read_text()), json.loads((SAMPLE / rel).read_text()), str(rel))
        else:
            assert (out / rel).read_bytes() == (SAMPLE / rel).read_bytes(), f"{rel} differs"


def test_sm013_refuses_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        make_sample(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_sm014_sidecar_smoothness_is_the_estimate_and_is_reused(analysis, monkeypatch):
    from dashboard.stats import rft

    study = analysis.study
    fit = fit_group_model(study.participant_data, study.condition_ids, "cells")
    estimated = rft.estimate_smoothness(fit.residuals(), study.mask, fit.df, study.voxel_size)
    fresh = Analysis(study)

    def no_estimate(*a, **k):
        raise AssertionError("estimated although the sidecar holds this model's smoothness")

    monkeypatch.setattr(rft, "estimate_smoothness", no_estimate)
    stored = fresh.smoothness("interaction", "cells")
    np.testing.assert_allclose(stored.fwhm_vox, estimated.fwhm_vox, rtol=1e-5)
    np.testing.assert_allclose(stored.resels, estimated.resels, rtol=1e-5)
    assert stored.search_volume_vox == estimated.search_volume_vox
    with pytest.raises(AssertionError, match="estimated although"):  # another subset: estimated
        fresh.smoothness("interaction", "cells", tuple(study.participant_ids[:-1]))


def test_sm015_stored_map_answers_its_own_question_only(analysis):
    """The published question (stored model, every participant) is read from the stored
    map, without a fit; another subset or model is refitted from the images."""
    study = analysis.study
    fresh = Analysis(study)
    t, df = fresh.t_map("interaction", "cells")
    assert np.array_equal(t, study.group_map("interaction").astype(np.float64)) and df == 84
    assert fresh._fits == {}  # nothing was fitted
    subset = tuple(study.participant_ids[1:])
    t_sub, df_sub = fresh.t_map("interaction", "cells", subset)
    index = list(range(1, len(study.participant_ids)))
    expected = fit_group_model(study.participant_data[index], study.condition_ids, "cells")
    np.testing.assert_allclose(t_sub, expected.t_map(study.contrast("interaction").weights), rtol=1e-6, atol=1e-6)
    assert df_sub == 80
    _, df_paired = fresh.t_map("interaction", "paired")
    assert df_paired == 21  # another model: its own fit, not the stored cells map
