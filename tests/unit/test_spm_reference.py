"""The project's cluster tables against SPM12's own (r7771 under Octave: tests/data/spm,
made by scripts/spm_reference from the sample's group maps): every column and the footer."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dashboard.stats import rft
from dashboard.stats.spm_table import spm_table
from dashboard.stats.thresholds import t_threshold
from tests.conftest import SAMPLE

TABLES = Path(__file__).resolve().parents[1] / "data" / "spm" / "tables"
CASES = sorted(p for p in TABLES.glob("*.json"))
COLUMNS = ["p_set", "c_set", "p_fwe_cluster", "p_fdr_cluster", "k", "p_unc_cluster", "p_fwe_peak", "p_fdr_peak", "peak_t", "z_score", "p_unc"]
RFT_COLUMNS = {"p_set", "p_fwe_cluster", "p_fdr_cluster", "p_unc_cluster", "p_fwe_peak", "p_fdr_peak"}


def _num(v):
    if v == [] or v is None:
        return None
    if isinstance(v, str):
        return {"Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[v]
    return float(v)


def test_sr000_fixtures_were_made_from_the_committed_maps():
    """If the sample is regenerated, scripts/spm_reference/make_spm_tables.sh must be rerun."""
    group = SAMPLE / "group"
    for line in (TABLES / "inputs.sha256").read_text().splitlines():
        digest, name = line.split()
        path = group / name
        if path.exists():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} changed since SPM's tables were made"
    assert len(CASES) >= 20


@pytest.fixture(scope="module")
def maps():
    out = {}
    for contrast in ("placebo", "nac", "interaction"):
        img = nib.load(str(SAMPLE / "group" / f"task-cue_contrast-{contrast}_stat-t_statmap.nii.gz"))
        side = json.loads((SAMPLE / "group" / f"task-cue_contrast-{contrast}_stat-t_statmap.json").read_text())
        mask = np.asarray(nib.load(str(SAMPLE / "group" / "task-cue_desc-brain_mask.nii.gz")).dataobj) > 0
        vol = np.where(mask, np.asarray(img.dataobj, dtype=np.float64), np.nan)
        smooth = rft.smoothness_from_sidecar(side["Smoothness"], side["DegreesOfFreedom"], (2.0, 2.0, 2.0))
        out[contrast] = (vol, img.affine, mask, smooth, float(side["DegreesOfFreedom"]))
    return out


def _sphere(affine, shape, centre, radius):
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return (np.sum((xyz - np.asarray(centre)) ** 2, axis=1) <= radius**2).reshape(shape)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_sr001_table_and_footer_are_spms(case, maps):
    ref = json.loads(case.read_text())
    vol, affine, mask, smooth, df = maps[ref["contrast"]]
    if ref["direction"] == "neg":
        vol = -vol
    u, k = float(ref["u"]), int(ref["k"])
    if str(ref["thresDesc"]).endswith("(unc.)"):  # spm_u is a bisection: our exact quantile agrees to ~1e-8
        assert t_threshold(float(ref["u_input"]), df) == pytest.approx(u, abs=1e-7)
    elif "FWE" in str(ref["thresDesc"]):
        assert rft.t_threshold_fwe(0.05, smooth) == pytest.approx(u, abs=1e-5)
    svc = ref.get("svc")
    svc_mask = None
    if svc:  # SPM's sphere: its resels are spm_resels' analytic sphere; ours come from the voxelised ROI
        svc_mask = _sphere(affine, vol.shape, svc["xyz"], float(svc["spec"]))
    res = spm_table(vol, affine, u, k, smooth, df=df, svc_mask=svc_mask, analysis_mask=mask)
    rows = ref["TabDat"]["dat"]
    assert len(res.table) == len(rows), f"{len(res.table)} rows, SPM {len(rows)}"
    for i, (got, want) in enumerate(zip(res.table.to_dict("records"), rows, strict=False)):
        assert [got["x"], got["y"], got["z"]] == [float(v) for v in want[11]], f"row {i}"
        for col, value in zip(COLUMNS, want[:11], strict=False):
            expected = _num(value)
            if expected is None:
                if col in ("p_set", "c_set"):
                    assert got[col] is None or np.isnan(got[col]), f"row {i} {col}"
                continue  # SPM prints cluster values on a cluster's first row; ours repeats them
            if svc and col in RFT_COLUMNS:
                continue  # (see above) -- peaks, extents, T, Z and p(unc) are compared
            if col == "peak_t":
                assert got[col] == pytest.approx(expected, abs=1e-6), f"row {i} {col}"  # float32 of the same map
            elif math.isinf(expected):
                assert math.isinf(got[col]), f"row {i} {col}"
            else:
                assert got[col] == pytest.approx(expected, rel=2e-5, abs=1e-12), f"row {i} {col}: {got[col]} vs SPM {expected}"
    if svc:
        return
    footer = res.footer
    assert footer is not None
    ftr = {fmt.split(":")[0].split(",")[0]: vals for fmt, vals in ref["TabDat"]["ftr"]}
    h = ftr["Height threshold"]
    assert (footer.height_t, footer.height_p_unc, footer.height_p_fwe) == pytest.approx((h[0], h[1], h[2]), rel=1e-6)
    e = ftr["Extent threshold"]
    if k:
        assert (footer.extent_k, footer.extent_p_unc, footer.extent_p_fwe) == pytest.approx((e[0], e[1], e[2]), rel=1e-6)
    assert footer.expected_voxels_per_cluster == pytest.approx(ftr["Expected voxels per cluster"], rel=1e-6)
    assert footer.expected_clusters == pytest.approx(ftr["Expected number of clusters"], rel=1e-6)
    uc = [_num(v) for v in ref["uc"]]
    ours = [footer.fwe_p_height, footer.fdr_p_height, footer.fwe_c_extent, footer.fdr_c_extent]
    assert ours[0] == pytest.approx(uc[0], abs=1e-5)
    for a, b in zip(ours[1:], uc[1:], strict=False):
        assert (math.isinf(a) and math.isinf(b)) or a == pytest.approx(b, rel=1e-6), (ours, uc)
    assert footer.volume_voxels == ftr["Volume"][1] and footer.volume_resels == pytest.approx(ftr["Volume"][2], rel=1e-6)
    fwhm = next(vals for fmt, vals in ref["TabDat"]["ftr"] if fmt.startswith("FWHM"))
    assert list(footer.fwhm_vox) == pytest.approx(fwhm[3:], rel=1e-6)
    # and the text SPM prints, line for line
    assert footer.lines()[: len(ref["TabDat"]["ftr_text"])] == ref["TabDat"]["ftr_text"]
