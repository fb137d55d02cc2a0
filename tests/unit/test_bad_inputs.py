"""The bad-input corpus (tests/bad_inputs.py): every broken folder answered in one line.

Each case is the sample with one thing wrong.  For each: ``validate`` exits 2 and prints
exactly the expected line and nothing else (no traceback), the folder's bytes are
unchanged, and the app's loader refuses the folder too, or (participant-image data,
which the app reads on first use) refuses it with the same line on that first read.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.cli import main
from dashboard.results import StudyError, load_study
from tests.bad_inputs import CASES, FORMAT_CASES, LOADS, SAMPLE, build_case

# cases whose problem lies in participant-image voxel data, which the app checks on
# first read (load_study(defer_participant_data=True)) rather than at start-up
DEFERRED = {"image_truncated", "image_infinite", "image_nan_in_mask"}


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: symlinks by target, regular files by content hash,
    anything else (a FIFO, a directory) by its type; never opens a non-regular file."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.readlink(path))
            out[rel] = ("link", str(target), hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else None)
        elif stat.S_ISREG(st.st_mode):
            out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns)
        else:
            out[rel] = (stat.filemode(st.st_mode)[0],)
    return out


@pytest.fixture(scope="module", autouse=True)
def sample_untouched():
    """Building and validating the corpus never changes the sample it is built from."""
    before = _snapshot(SAMPLE)
    yield
    assert _snapshot(SAMPLE) == before


@pytest.mark.parametrize("case", list(CASES))
def test_bi001_validate_prints_exactly_one_line_naming_the_file(case, tmp_path, capsys):
    root = build_case(case, tmp_path / case)
    before = _snapshot(root)
    code = main(["validate", str(root)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == CASES[case][1] + "\n"
    assert _snapshot(root) == before, "validation must not touch the results folder"


@pytest.mark.parametrize("case", list(CASES))
def test_bi002_the_app_loader_refuses_with_the_same_line(case, tmp_path):
    root = build_case(case, tmp_path / case)
    expected = CASES[case][1]
    if case in DEFERRED:
        study = load_study(root, check_data=True, defer_participant_data=True)
        with pytest.raises(StudyError) as info:
            _ = study.participant_data
    else:
        with pytest.raises(StudyError) as info:
            load_study(root, check_data=True, defer_participant_data=True)
    assert [str(p) for p in info.value.problems] == [expected]


@pytest.mark.parametrize("case", list(LOADS))
def test_bi003_odd_but_valid_folders_load(case, tmp_path, capsys):
    root = build_case(case, tmp_path / case)
    assert main(["validate", str(root)]) == 0
    assert ": OK" in capsys.readouterr().out


def _peak_rss_kb(root: Path) -> tuple[int, str]:
    """Peak resident memory of ``cue-dashboard validate root`` in a fresh process."""
    code = (
        "import resource, sys\n"
        "from dashboard.cli import main\n"
        "status = main(['validate', sys.argv[1]])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    peak = int(proc.stderr.strip().splitlines()[-1].split()[1])
    return peak, proc.stderr


@pytest.mark.parametrize("case", ["mask_claims_16gb", "mask_claims_256mb_in_64_bytes", "group_map_gzip_bomb", "group_map_trailing_gigabyte"])
def test_bi004_memory_stays_near_the_real_data_size_whatever_a_header_claims(case, tmp_path):
    """A header claiming gigabytes costs nothing: peak memory stays within 1.5x that of
    validating the clean sample (measured in the same run), and the bomb is named."""
    baseline, _ = _peak_rss_kb(SAMPLE)
    root = build_case(case, tmp_path / case)
    peak, err = _peak_rss_kb(root)
    assert peak < 1.5 * baseline, f"{case}: {peak} kB peak vs {baseline} kB for the sample"
    if case in CASES:
        assert CASES[case][1] in err


def test_bi005_corpus_script_writes_every_case(tmp_path):
    """``python -m tests.bad_inputs OUT`` writes one folder per case (for trying by hand)."""
    proc = subprocess.run([sys.executable, "-m", "tests.bad_inputs", str(tmp_path)], capture_output=True, text=True,
                          cwd=SAMPLE.parent, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*CASES, *LOADS, *FORMAT_CASES])


@pytest.mark.parametrize("case", ["design_weights_string", "participants_bad_id", "image_complex", "image_truncated", "mask_other_grid",
                                  "group_smoothness_string", "group_map_all_nan", "group_map_gzip_bomb", "table_ragged"])
def test_bi006_clusters_and_regress_give_the_same_line(case, tmp_path, capsys):
    """The analysis commands load with validate's checks; participant-image data is
    checked when a command reads those images (regress does, clusters on a stored map
    does not)."""
    root = build_case(case, tmp_path / case)
    expected = CASES[case][1] + "\n"
    regress = ["regress", str(root), "--contrast", "interaction", "--peak", "14,64,14", "--condition", "cocaine_placebo",
               "--covariate", "cocaine_duration_years"]
    for argv in (["clusters", str(root), "--contrast", "interaction"], regress):
        if case in DEFERRED and argv[0] == "clusters":
            continue
        assert main(argv) == 2, argv[0]
        assert capsys.readouterr().err == expected, argv[0]


def test_bi007_bad_command_line_values_are_one_line(tmp_path, capsys):
    roi = tmp_path / "roi.nii"
    roi.write_text("not an image")
    for args, message in (
        (["--svc-mask", str(roi)], f'{roi}: not a readable NIfTI image (Cannot work out file type of "roi.nii")'),
        (["--t", "inf"], f"{SAMPLE}: a T threshold must be a finite number, got inf"),
    ):
        assert main(["clusters", str(SAMPLE), "--contrast", "interaction", *args]) == 2
        assert capsys.readouterr().err == message + "\n"


@pytest.mark.parametrize("case", list(FORMAT_CASES))
def test_bi008_other_kinds_of_folder_are_one_line_too(case, tmp_path, capsys):
    """SPM12, FSL and plain-map folders, each broken one way (built from the committed
    fixtures and the sample's group maps): the same treatment as the project's format."""
    source, _, expected = FORMAT_CASES[case]
    source_before = _snapshot(source)
    root = build_case(case, tmp_path / case)
    before = _snapshot(root)
    assert main(["validate", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == expected + "\n"
    assert _snapshot(root) == before and _snapshot(source) == source_before
