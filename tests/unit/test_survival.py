"""Leave-one-out cluster survival (dashboard.survival) against a plain refit loop, on
small real folders and a real SPM12 design, and its CLI (influence --cluster-survival)."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from dashboard import cli
from dashboard.analysis import Analysis, Threshold
from dashboard.design import CONDITIONS, CONTRASTS, cue_design
from dashboard.formats import open_study
from dashboard.stats import rft
from dashboard.stats.models import fit_group_model
from dashboard.stats.thresholds import t_threshold
from dashboard.survival import COLUMNS, Survival, cache_key, leave_one_out
from dashboard.writer import write_results_folder
from tests.studies import TINY_AFFINE, TINY_SHAPE, write_tiny_study

SPM = Path(__file__).resolve().parents[1] / "data" / "spm_folders"
BLOB = (slice(2, 4), slice(2, 5), slice(3, 6))  # 18 voxels
OUTLIER = 4  # sub-05


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Analysis:
    return Analysis(open_study(write_tiny_study(tmp_path_factory.mktemp("tiny") / "s", n=8)))


def _main_peak(analysis: Analysis, contrast: str = "placebo", **kw) -> tuple[float, float, float]:
    row = analysis.clusters(contrast, label_atlas=None, with_rft=False, **kw).table.iloc[0]
    return float(row["x"]), float(row["y"]), float(row["z"])


def _plain_loop(analysis: Analysis, contrast: str, peak, direction="pos", **kw):
    """Refit without each participant with Analysis.clusters (RFT smoothness estimated
    for each refit) and take the listed cluster sharing most voxels with the original."""
    full = analysis.clusters(contrast, label_atlas=None, directions=(direction,), **kw)
    ijk = tuple(np.rint(np.linalg.solve(analysis.study.affine, [*peak, 1.0])[:3]).astype(int))
    original = full.labels[direction] == full.labels[direction][ijk]
    out = []
    for p in analysis.study.participant_ids:
        others = tuple(q for q in analysis.study.participant_ids if q != p)
        loo = analysis.clusters(contrast, label_atlas=None, participants=others, directions=(direction,), **kw)
        best, common = 0, 0
        for cid in range(1, int(loo.labels[direction].max()) + 1):
            n = int(((loo.labels[direction] == cid) & original).sum())
            if n > common:
                best, common = cid, n
        row = loo.table[(loo.table["cluster_id"] == best) & loo.table["is_main_peak"]]
        out.append({"participant_id": p, "survives": bool(best), "common": common, "height": loo.height, "df": loo.df, "table": loo,
                    "peak_t": float(row["peak_t"].iloc[0]) if best else np.nan, "k": int(row["k"].iloc[0]) if best else 0,
                    "p_fwe_cluster": float(row["p_fwe_cluster"].iloc[0]) if best else np.nan})
    return full, int(original.sum()), out


def test_su001_matches_a_plain_refit_loop(tiny):
    peak = _main_peak(tiny)
    got = leave_one_out(tiny, "placebo", peak)
    full, k_full, want = _plain_loop(tiny, "placebo", peak)
    frame = got.frame
    assert list(frame.columns) == COLUMNS and len(frame) == 8 and got.complete
    assert got.full["k"] == k_full and got.full["peak_t"] == pytest.approx(float(full.table["peak_t"].iloc[0]), abs=0)
    assert got.full["p_fwe_cluster"] == float(full.table["p_fwe_cluster"].iloc[0])
    for (_, row), ref in zip(frame.iterrows(), want, strict=True):
        assert row["participant_id"] == ref["participant_id"] and row["survives"] == ref["survives"]
        assert row["peak_t"] == ref["peak_t"] and row["k"] == ref["k"] and row["common_voxels"] == ref["common"]
        assert row["df"] == ref["df"] == 24 and row["height"] == ref["height"] == pytest.approx(t_threshold(0.001, 24), rel=1e-12)
        assert row["dice"] == pytest.approx(2 * ref["common"] / (k_full + ref["k"]))
        # default: the full subset's smoothness at the refit's df (an independent computation)
        s = dataclasses.replace(full.smoothness, df=ref["df"])
        assert row["p_fwe_cluster"] == pytest.approx(float(rft.cluster_p_fwe(ref["k"], ref["height"], s)), rel=1e-12)
        # and close to the p-FWE with the refit's own smoothness
        assert row["p_fwe_cluster"] == pytest.approx(ref["p_fwe_cluster"], rel=0.25)
    assert "full subset's RFT smoothness" in got.note and "8 participants" in got.note
    exact = leave_one_out(tiny, "placebo", peak, reestimate_smoothness=True)
    assert exact.frame["p_fwe_cluster"].tolist() == [r["p_fwe_cluster"] for r in want]
    assert "re-estimated" in exact.note
    assert exact.frame.drop(columns="p_fwe_cluster").equals(frame.drop(columns="p_fwe_cluster"))


def test_su002_fwe_height_from_the_full_smoothness_at_each_df(tiny):
    threshold = Threshold(p_fwe=0.05)
    peak = _main_peak(tiny, threshold=threshold)
    got = leave_one_out(tiny, "placebo", peak, threshold=threshold, extent=1)
    smooth = tiny.clusters("placebo", threshold=threshold, extent=1, label_atlas=None).smoothness
    for _, row in got.frame.iterrows():
        assert row["height"] == pytest.approx(rft.t_threshold_fwe(0.05, dataclasses.replace(smooth, df=row["df"])), rel=1e-12)
    assert got.frame["height"].gt(got.full["height"]).all()  # fewer df: a higher FWE height
    assert "FWE height thresholds" in got.note


def _write_outlier_study(out: Path) -> Path:
    """8 participants; in an 18-voxel blob (the same values in each of its voxels) the
    placebo effect is small for everyone but sub-05, who has a large one: the blob's T is
    1.36-1.68 without any one of the others, 0.39 without sub-05.  Outside the blob the
    two placebo conditions are the same images, so T is exactly 0 there (only the blob can
    be a cluster at T > 1)."""
    n = 8
    rng = np.random.default_rng(3)
    mask = np.zeros(TINY_SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    data = ndimage.gaussian_filter(rng.normal(size=(n, 4, *TINY_SHAPE)), sigma=(0, 0, 1, 1, 1))
    data[:, 1] = data[:, 0]
    pattern = np.random.default_rng(1).normal(size=(n, 4))
    pattern -= pattern.mean(axis=0)
    pattern /= pattern.std()
    pattern[:, 0] += 0.3
    pattern[OUTLIER, 0] += 10.0
    data[(slice(None), slice(None), *BLOB)] = pattern[:, :, None, None, None]
    data[:, :, ~mask] = np.nan
    data = data.astype(np.float32)
    ids = [f"sub-{i + 1:02d}" for i in range(n)]
    fit = fit_group_model(data[:, :, mask], [c["id"] for c in CONDITIONS], "cells")
    group = {}
    for c in CONTRASTS:
        t = np.full(TINY_SHAPE, np.nan, np.float32)
        t[mask] = fit.t_map(c["weights"])
        group[c["id"]] = (t, {"StatisticType": "T", "DegreesOfFreedom": fit.df, "Model": "cells", "ContrastWeights": c["weights"]})
    write_results_folder(
        out,
        description={"Name": "outlier study", "BIDSVersion": "1.9.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "tests"}]},
        design=cue_design(),
        participants=pd.DataFrame({"participant_id": ids, "age": np.linspace(20, 40, n)}),
        participant_columns={"age": {"Description": "Age", "Units": "years"}},
        affine=TINY_AFFINE,
        mask=mask,
        participant_images={(pid, cond["session"], cond["cue"]): data[i, j] for i, pid in enumerate(ids) for j, cond in enumerate(CONDITIONS)},
        group_maps=group,
    )
    return out


def test_su003_one_outlier_carries_the_cluster(tmp_path):
    analysis = Analysis(open_study(_write_outlier_study(tmp_path / "o")))
    threshold = Threshold(t=1.0)
    full = analysis.clusters("placebo", threshold=threshold, label_atlas=None)
    assert full.table.loc[full.table["is_main_peak"], "k"].tolist() == [18]  # the blob, nothing else
    peak = _main_peak(analysis, threshold=threshold)
    got = leave_one_out(analysis, "placebo", peak, threshold=threshold)
    frame = got.frame.set_index("participant_id")
    assert frame["survives"].tolist() == [p != "sub-05" for p in frame.index]
    lost = frame.loc["sub-05"]
    assert lost["k"] == 0 and lost["common_voxels"] == 0 and lost["dice"] == 0 and np.isnan(lost["peak_t"])
    others = tuple(p for p in analysis.study.participant_ids if p != "sub-05")
    tvec, _ = analysis.t_map("placebo", "cells", others)
    assert lost["max_t_in_original"] == pytest.approx(float(analysis.study.unmask(tvec)[BLOB].max()), rel=1e-12)
    assert np.isnan(lost["p_fwe_cluster"]) and lost["max_t_in_original"] < 0.5
    kept = frame.drop(index="sub-05")
    assert (kept["k"] == 18).all() and (kept["dice"] == 1).all() and (kept["peak_t"] > 1.3).all()
    assert got.full["peak_t"] > 1.3
    s = got.summary
    assert (s["n_survive"], s["n_left_out"], s["n_participants"], s["lost_without"]) == (7, 8, 8, ["sub-05"])
    assert s["lowest_peak_without"] == "sub-05" and s["smallest_k_without"] == "sub-05" and s["smallest_k"] == 0
    assert s["text"].startswith("the cluster survives 7 of 8 leave-outs") and "lost without sub-05" in s["text"]
    # the same answer by hand: without sub-05 nothing passes T > 1
    assert analysis.clusters("placebo", threshold=threshold, participants=others, label_atlas=None).table.empty


def test_su004_progress_from_the_start_and_early_stop(tiny):
    peak = _main_peak(tiny)
    calls: list[tuple[int, int]] = []
    leave_one_out(tiny, "placebo", peak, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 8) for i in range(9)]
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    calls.clear()
    part = leave_one_out(tiny, "placebo", peak, progress=lambda d, t: calls.append((d, t)), should_stop=stop)
    assert not part.complete and len(part.frame) == 3 and calls == [(0, 8), (1, 8), (2, 8), (3, 8)]
    assert part.summary["n_left_out"] == 3 and "stopped after 3 of 8" in part.summary["text"]


def test_su005_picklable_and_json_round_trip(tiny):
    got = leave_one_out(tiny, "placebo", _main_peak(tiny))
    again = pickle.loads(pickle.dumps(got))
    assert again.frame.equals(got.frame) and again.summary == got.summary
    text = json.dumps(got.to_dict(), allow_nan=False)
    back = Survival.from_dict(json.loads(text))
    pd.testing.assert_frame_equal(back.frame, got.frame)
    assert back.full == got.full and back.threshold == got.threshold and back.note == got.note and back.participants == got.participants
    key = cache_key(tiny, "placebo", got.peak)
    assert key == cache_key(tiny, "placebo", got.peak, participants=tuple(tiny.study.participant_ids))
    assert key != cache_key(tiny, "placebo", got.peak, threshold=Threshold(p_unc=0.01))
    assert key != cache_key(tiny, "placebo", got.peak, participants=tuple(tiny.study.participant_ids[1:]))


def test_su006_refusals(tiny, tmp_path):
    with pytest.raises(ValueError, match="no listed pos cluster of placebo"):
        leave_one_out(tiny, "placebo", (9.0, -12.0, -12.0))  # voxel (0, 0, 0): outside the mask
    with pytest.raises(ValueError, match="outside the image"):
        leave_one_out(tiny, "placebo", (500.0, 0.0, 0.0))
    group_only = Analysis(open_study(write_tiny_study(tmp_path / "g", with_images=False)))
    with pytest.raises(ValueError, match="group maps only"):
        leave_one_out(group_only, "placebo", (0.0, 0.0, 0.0))


def test_su007_spm_design_refitted_without_each_participant():
    """A real SPM12 one-sample design: its own design refitted on 21 rows each time."""
    analysis = Analysis(open_study(SPM / "onesample"))
    got = leave_one_out(analysis, "1", (-56.0, -32.0, 40.0), extent=0)
    assert got.full["k"] == 16 and got.full["df"] == pytest.approx(21) and got.full["peak_t"] == pytest.approx(8.558, abs=1e-3)
    _, k_full, want = _plain_loop(analysis, "1", (-56.0, -32.0, 40.0), extent=0)
    assert k_full == 16 and len(got.frame) == 22
    for (_, row), ref in zip(got.frame.iterrows(), want, strict=True):
        assert (row["survives"], row["peak_t"], row["k"], row["common_voxels"]) == (ref["survives"], ref["peak_t"], ref["k"], ref["common"])
        assert row["df"] == pytest.approx(20) and row["height"] == ref["height"]
        assert row["p_fwe_cluster"] == pytest.approx(ref["p_fwe_cluster"], rel=0.25)
    assert got.summary["n_survive"] == 22


def test_su008_spm_negative_direction():
    """The negative cluster of a flexible-factorial contrast (SPM: the negated contrast)."""
    analysis = Analysis(open_study(SPM / "ff_cells"))
    row = analysis.clusters("1", directions=("neg",), extent=0, label_atlas=None, with_rft=False).table.iloc[0]
    peak = (float(row["x"]), float(row["y"]), float(row["z"]))
    got = leave_one_out(analysis, "1", peak, direction="neg", extent=0)
    assert got.direction == "neg" and got.full["peak_t"] == pytest.approx(5.2288, abs=1e-3)  # -min(spmT), as SPM lists it
    _, _, want = _plain_loop(analysis, "1", peak, direction="neg", extent=0)
    assert got.frame["peak_t"].tolist() == [r["peak_t"] for r in want] and got.frame["k"].tolist() == [r["k"] for r in want]
    assert (got.frame["df"] == 80).all()
    with pytest.raises(ValueError, match="no listed pos cluster"):
        leave_one_out(analysis, "1", peak, direction="pos", extent=0)


def _influence_args(root: Path, peak: tuple[float, float, float]) -> list[str]:
    return ["influence", str(root), "--contrast", "placebo", "--peak", ",".join(f"{v:g}" for v in peak),
            "--condition", "cocaine_placebo", "--covariate", "age", "--cluster-survival"]


def test_su009_cli_influence_cluster_survival(tiny, capsys):
    root = tiny.study.root
    peak = _main_peak(tiny)
    want = leave_one_out(tiny, "placebo", peak)
    assert cli.main([*_influence_args(root, peak), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # progress only on a terminal
    out = json.loads(captured.out)
    assert len(out["participants"]) == 8 and out["cluster_survival"] == json.loads(json.dumps(want.to_dict()))
    assert cli.main(_influence_args(root, peak)) == 0
    lines = capsys.readouterr().out.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("# cluster survival"))
    assert "placebo pos cluster" in lines[title] and want.summary["text"] in lines[title] and want.note in lines[title]
    assert lines[title + 1].split("\t") == COLUMNS and len(lines) == title + 2 + 8
    assert lines[title + 2].split("\t")[0] == "sub-01"


def test_su010_cli_progress_on_a_terminal_only(tiny, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main([*_influence_args(tiny.study.root, _main_peak(tiny)), "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert err == "".join(f"\rleft out {i} of 8" for i in range(9)) + "\n"
