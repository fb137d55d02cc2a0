"""Field-by-field comparison of a cluster table (and its footer) with SPM12's own
``spm_list('Table')`` output saved as JSON by the fixture scripts (scripts/spm_reference,
scripts/spm_fixtures)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard.stats.spm_table import Footer

COLUMNS = ["p_set", "c_set", "p_fwe_cluster", "p_fdr_cluster", "k", "p_unc_cluster", "p_fwe_peak", "p_fdr_peak", "peak_t", "z_score", "p_unc"]
RFT_COLUMNS = {"p_set", "p_fwe_cluster", "p_fdr_cluster", "p_unc_cluster", "p_fwe_peak", "p_fdr_peak"}


def _num(v: Any) -> float | None:
    if v == [] or v is None:
        return None
    if isinstance(v, str):
        return {"Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[v]
    return float(v)


def assert_matches_spm(table: pd.DataFrame, footer_obj: Footer | None, ref: dict[str, Any], *, with_rft: bool = True) -> None:
    """Every row (coordinates exactly; p-values to rel 2e-5 or abs 1e-12, since SPM forms
    tiny p as 1 - cdf; T of the same float32 map to 1e-6) and the footer, numbers and text."""
    rows = ref["TabDat"]["dat"]
    assert len(table) == len(rows), f"{len(table)} rows, SPM {len(rows)}"
    for i, (got, want) in enumerate(zip(table.to_dict("records"), rows, strict=False)):
        assert [got["x"], got["y"], got["z"]] == [float(v) for v in want[11]], f"row {i}"
        for col, value in zip(COLUMNS, want[:11], strict=False):
            expected = _num(value)
            if expected is None:
                if col in ("p_set", "c_set"):
                    assert got[col] is None or np.isnan(got[col]), f"row {i} {col}"
                continue  # SPM prints cluster values on a cluster's first row; ours repeats them
            if not with_rft and col in RFT_COLUMNS:
                continue  # (see above) -- peaks, extents, T, Z and p(unc) are compared
            if col == "peak_t":
                assert got[col] == pytest.approx(expected, abs=1e-6), f"row {i} {col}"  # float32 of the same map
            elif math.isinf(expected):
                assert math.isinf(got[col]), f"row {i} {col}"
            else:
                assert got[col] == pytest.approx(expected, rel=2e-5, abs=1e-12), f"row {i} {col}: {got[col]} vs SPM {expected}"
    if not with_rft:
        return
    footer = footer_obj
    assert footer is not None
    ftr = {fmt.split(":")[0].split(",")[0]: vals for fmt, vals in ref["TabDat"]["ftr"]}
    h = ftr["Height threshold"]
    assert (footer.height_t, footer.height_p_unc, footer.height_p_fwe) == pytest.approx((h[0], h[1], h[2]), rel=1e-6)
    e = ftr["Extent threshold"]
    if int(ref["k"]):
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