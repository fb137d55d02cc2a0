"""`cue-dashboard validate` on folders broken one way each (real NIfTI files).

Each case builds a complete tiny study, breaks one thing, and checks the exit code,
the one-line message naming the file, and that no file under the folder changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dashboard.cli import main
from dashboard.results import StudyError, group_map_name, load_study, participant_image_name
from tests.studies import write_tiny_study

P_IMG = participant_image_name("sub-02", "placebo", "cocaine")
G_IMG = group_map_name("interaction")


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _edit_tsv(root: Path, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = root / "participants.tsv"
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    fn(df).to_csv(path, sep="\t", index=False)


def _rewrite_image(path: Path, fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
    img = nib.load(str(path))
    data, affine = fn(np.asarray(img.get_fdata(), dtype=np.float32), img.affine.copy())
    nib.save(nib.Nifti1Image(data, affine), str(path))


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(gzip.compress(b"this is not a nifti file" * 20))


def _drop_df(root: Path) -> None:
    side = root / G_IMG.replace(".nii.gz", ".json")
    d = json.loads(side.read_text())
    del d["DegreesOfFreedom"]
    side.write_text(json.dumps(d))


def _with_inf(data, affine):
    data = data.copy()
    data[3, 3, 3] = np.inf
    return data, affine


CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "missing_description": (lambda r: (r / "dataset_description.json").unlink(), "dataset_description.json", "missing"),
    "bad_design_json": (lambda r: (r / "design.json").write_text("{not json"), "design.json", "not valid JSON"),
    "truncated_gz": (lambda r: _truncate(r / P_IMG), P_IMG, "truncated or corrupt"),
    "garbage_image": (lambda r: _garbage(r / P_IMG), P_IMG, "not a readable NIfTI image"),
    "four_d": (lambda r: _rewrite_image(r / G_IMG, lambda d, a: (np.stack([d, d], axis=-1), a)), G_IMG, "expected a 3D image, got shape (7, 8, 9, 2)"),
    "other_shape": (lambda r: _rewrite_image(r / P_IMG, lambda d, a: (d[:-1], a)), P_IMG, "grid (6, 8, 9) differs"),
    "other_affine": (lambda r: _rewrite_image(r / P_IMG, lambda d, a: (d, a + np.diag([0, 0, 0, 0]) + np.eye(4) * [0, 0, 0, 0] + np.array([[0, 0, 0, 2.0], [0] * 4, [0] * 4, [0] * 4]))), P_IMG, "affine differs"),
    "infinite_values": (lambda r: _rewrite_image(r / P_IMG, _with_inf), P_IMG, "contains 1 infinite values"),
    "no_participant_id": (lambda r: _edit_tsv(r, lambda d: d.rename(columns={"participant_id": "subject"})), "participants.tsv", "no participant_id column"),
    "duplicate_id": (lambda r: _edit_tsv(r, lambda d: d.assign(participant_id=d.participant_id.replace("sub-03", "sub-02"))), "participants.tsv", "duplicate participant_id sub-02"),
    "row_without_images": (lambda r: _edit_tsv(r, lambda d: pd.concat([d, d.iloc[[0]].assign(participant_id="sub-99")])), "participants.tsv", "sub-99 has a row but no images"),
    "images_without_row": (lambda r: _edit_tsv(r, lambda d: d[d.participant_id != "sub-04"]), "sub-04", "has images but no row in participants.tsv"),
    "non_numeric_covariate": (lambda r: _edit_tsv(r, lambda d: d.assign(age=d.age.where(d.participant_id != "sub-05", "thirty"))), "participants.tsv", "column 'age' is numeric (Units 'years') but sub-05 has 'thirty'"),
    "sidecar_without_df": (_drop_df, G_IMG.replace(".nii.gz", ".json"), "no DegreesOfFreedom"),
    "missing_condition_image": (lambda r: (r / P_IMG).unlink(), "sub-02", "missing image for condition cocaine_placebo"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_va001_broken_folder_exit_2_with_message(case, tiny_study, capsys):
    breaker, file, message = CASES[case]
    breaker(tiny_study)
    before = _snapshot(tiny_study)
    code = main(["validate", str(tiny_study)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert any(line.startswith(f"{file}: ") and message in line for line in lines), err
    assert all(": " in line for line in lines), "one '<file>: <problem>' line per problem"
    assert _snapshot(tiny_study) == before, "validation must not touch the results folder"


def test_va002_valid_folder_exit_0_and_untouched(tiny_study, capsys):
    before = _snapshot(tiny_study)
    assert main(["validate", str(tiny_study)]) == 0
    out = capsys.readouterr().out
    assert "participants: 6" in out
    assert "df 20" in out  # cells model, 6 x 4 images - 4
    assert "7x8x9 voxels of 3x3x3 mm" in out
    assert _snapshot(tiny_study) == before
    assert not list(tiny_study.rglob("*cache*"))


def test_va003_nan_outside_mask_is_not_an_error(tiny_study):
    # SPM writes NaN outside its analysis mask: the tiny study already has NaN there
    img = nib.load(str(tiny_study / P_IMG))
    assert np.isnan(img.get_fdata()).any()
    study = load_study(tiny_study)
    assert np.isfinite(study.participant_data).all()


def test_va004_group_maps_only_folder_loads(tmp_path, capsys):
    root = write_tiny_study(tmp_path / "g", with_images=False)
    assert main(["validate", str(root)]) == 0
    assert "no participant images: group maps only" in capsys.readouterr().out
    study = load_study(root)
    assert not study.has_participant_images
    with pytest.raises(StudyError, match="no participant images"):
        study.participant_data  # noqa: B018


def test_va005_mask_derived_from_group_maps_when_absent(tmp_path):
    with_mask = load_study(write_tiny_study(tmp_path / "a"))
    without = load_study(write_tiny_study(tmp_path / "b", with_mask=False))
    assert without.mask_path is None
    np.testing.assert_array_equal(with_mask.mask, without.mask)


def test_va006_not_a_directory(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_va007_console_script_installed(tiny_study):
    exe = Path(sys.executable).with_name("cue-dashboard")
    proc = subprocess.run([str(exe), "validate", str(tiny_study)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (tiny_study / "design.json").unlink()
    proc = subprocess.run([str(exe), "validate", str(tiny_study)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["design.json: missing"]


def test_va008_read_only_folder_loads(tiny_study):
    # results folders are read-only to us: loading must work without write permission
    modes = {}
    for p in [tiny_study, *tiny_study.rglob("*")]:
        modes[p] = p.stat().st_mode
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    try:
        study = load_study(tiny_study)
        assert study.participant_data.shape == (6, 4, study.n_voxels)
    finally:
        for p, mode in sorted(modes.items(), key=lambda kv: -len(str(kv[0]))):
            os.chmod(p, mode)


def test_va009_deferred_participant_checks_name_the_file_on_first_read(tiny_study):
    _rewrite_image(tiny_study / P_IMG, _with_inf)
    study = load_study(tiny_study, defer_participant_data=True)  # headers only for participant images
    with pytest.raises(StudyError) as err:
        study.participant_data  # noqa: B018
    # the same line validate prints for this image
    assert [str(p) for p in err.value.problems] == [f"{P_IMG}: contains 1 infinite values (NaN marks outside-mask; Inf is an error)"]
    _truncate(tiny_study / P_IMG)
    with pytest.raises(StudyError, match="truncated or corrupt"):
        load_study(tiny_study, defer_participant_data=True).participant_data  # noqa: B018
