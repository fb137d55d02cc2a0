"""The project's cluster tables against SPM12's own (r7771 under Octave: tests/data/spm,
made by scripts/spm_reference from the sample's group maps): every column and the footer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dashboard.stats import rft
from dashboard.stats.spm_table import spm_table
from dashboard.stats.thresholds import t_threshold
from tests.conftest import SAMPLE
from tests.spm_compare import assert_matches_spm

TABLES = Path(__file__).resolve().parents[1] / "data" / "spm" / "tables"
CASES = sorted(p for p in TABLES.glob("*.json"))
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
    assert_matches_spm(res.table, res.footer, ref, with_rft=not svc)
