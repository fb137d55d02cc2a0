"""Cross-contrast correspondence against an independent computation: scipy's 18-connected
labelling of each thresholded map (extent applied), overlaps counted with numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dashboard.analysis import Analysis, Threshold
from dashboard.cli import main
from dashboard.correspondence import correspondence
from dashboard.formats import open_study
from dashboard.stats.thresholds import t_threshold
from tests.bad_inputs import SAMPLE


def _clusters(analysis, contrast, sign, u, k):
    vol = sign * analysis.study.unmask(analysis.t_map(contrast)[0])
    lab, n = ndimage.label(np.nan_to_num(vol, nan=-np.inf) >= u, structure=ndimage.generate_binary_structure(3, 2))
    return [lab == i for i in range(1, n + 1) if (lab == i).sum() >= k]


def test_co001_overlaps_and_dice_match_a_plain_labelling():
    analysis = Analysis(open_study(SAMPLE, check_data=False))
    u = t_threshold(0.001, 84)
    table = correspondence(analysis, "placebo", threshold=Threshold(p_unc=0.001), extent=10)
    ours = sorted((r.direction, r.other_contrast, r.other_direction, int(r.common_voxels), round(float(r.dice), 9))
                  for r in table.itertuples() if r.other_contrast == r.other_contrast and r.common_voxels == r.common_voxels)
    expected = []
    for sign, direction in ((1, "pos"), (-1, "neg")):
        for a in _clusters(analysis, "placebo", sign, u, 10):
            for other in ("nac", "interaction"):
                for o_sign, o_dir in ((1, "pos"), (-1, "neg")):
                    for b in _clusters(analysis, other, o_sign, u, 10):
                        common = int((a & b).sum())
                        if common:
                            expected.append((direction, other, o_dir, common, round(2 * common / int(a.sum() + b.sum()), 9)))
    assert ours == sorted(expected)
    assert len(ours) > 0
    assert (table["dice"].dropna() <= 1).all() and (table["peak_distance_mm"].dropna() >= 0).all()


def test_co002_cli(capsys):
    assert main(["correspond", str(SAMPLE), "--contrast", "nac", "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows and {r["other_contrast"] for r in rows if r["other_contrast"]} <= {"placebo", "interaction"}
    with pytest.raises(SystemExit):
        main(["correspond", str(SAMPLE)])  # --contrast is required
