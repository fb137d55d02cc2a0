"""A corpus of broken results folders, each the sample with one thing wrong.

Every case is built from ``sample_results/`` (or another folder) by :func:`build_case`
as a *link farm*: real directories, every file a symlink to the source, and only the
files a case breaks replaced by new ones (unlinked first, never written through a
link), so building the corpus never modifies the source.  Real NIfTI files throughout
(nibabel), real gzip streams for the bombs.

``python -m tests.bad_inputs OUT`` writes the whole corpus to ``OUT/<case>/`` (to try
the CLI or the app on them by hand); the tests build each case in a temporary folder.

Each case: (build function, expected stderr line of ``cue-dashboard validate``).  The
expected line is the whole output: one problem per case, one line per problem.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from dashboard.results import GROUP_DIR, MASK_NAME, group_map_name, participant_image_name, sidecar_path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_results"

P_IMG = participant_image_name("sub-02", "placebo", "cocaine")
G_IMG = group_map_name("interaction")
G_SIDE = str(sidecar_path(Path(G_IMG)))
MASK = f"{GROUP_DIR}/{MASK_NAME}"


# ----------------------------------------------------------------------------------
# link farm and replacing files
# ----------------------------------------------------------------------------------
def link_farm(source: Path, out: Path) -> Path:
    """``out`` mirrors ``source``: directories made, files symlinked."""
    for path in sorted(source.rglob("*")):
        target = out / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    return out


def replace_bytes(path: Path, data: bytes) -> None:
    """Put new content at ``path``: the link (or file) is removed first, so the source
    behind a link is never written."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def replace_text(path: Path, text: str) -> None:
    replace_bytes(path, text.encode("utf-8"))


def edit_json(path: Path, fn: Callable[[dict[str, Any]], Any]) -> None:
    """Change a JSON file in place (``fn`` mutates the parsed object)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    fn(data)
    replace_text(path, json.dumps(data))


def edit_lines(path: Path, fn: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    replace_text(path, "\n".join(fn(lines)) + "\n")


def replace_image(path: Path, img: nib.Nifti1Image) -> None:
    path.unlink(missing_ok=True)
    nib.save(img, str(path))


def rewrite_image(path: Path, fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
    img = nib.load(str(path))
    data, affine = fn(np.asarray(img.get_fdata(), dtype=np.float32), img.affine.copy())
    replace_image(path, nib.Nifti1Image(data, affine))


def header_only_gz(path: Path, shape: tuple[int, ...], dtype: type = np.float32) -> None:
    """A .nii.gz holding a valid header that claims ``shape`` and no voxel data."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_qform(np.diag([2.0, 2, 2, 1]), code=1)
    hdr["vox_offset"] = 352
    replace_bytes(path, gzip.compress(hdr.binaryblock + b"\0" * 4, compresslevel=9))


def gzip_with_trailing_zeros(path: Path, n_zero_bytes: int) -> None:
    """The image at ``path`` (valid) followed, inside the same gzip stream, by
    ``n_zero_bytes`` zeros: a decompression bomb whose header is honest."""
    raw = gzip.decompress(path.read_bytes())
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    chunks = [comp.compress(raw)]
    block = b"\0" * 2**24
    for _ in range(n_zero_bytes // len(block)):
        chunks.append(comp.compress(block))
    chunks.append(comp.flush())
    replace_bytes(path, b"".join(chunks))


def patch_header(path: Path, **fields: Any) -> None:
    """Set raw header fields of a .nii.gz and keep its data bytes as they are
    (nibabel's writer would recompute the fields a broken file gets wrong)."""
    raw = gzip.decompress(path.read_bytes())
    hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(raw[:348]))
    for key, value in fields.items():
        hdr[key] = value
    replace_bytes(path, gzip.compress(hdr.binaryblock + raw[348:], compresslevel=6))


def _as_int16_slope0(path: Path) -> None:
    img = nib.load(str(path))
    data = np.nan_to_num(np.asarray(img.get_fdata())) * 100
    replace_image(path, nib.Nifti1Image(np.round(data).astype(np.int16), img.affine))
    patch_header(path, scl_slope=0, scl_inter=0)  # values meant as x 0.01, stored with no slope


def _complex(path: Path) -> None:
    img = nib.load(str(path))
    data = np.asarray(img.get_fdata(), dtype=np.float32)
    replace_image(path, nib.Nifti1Image((data + 1j * data).astype(np.complex64), img.affine))


def _with_value(value: float, where: tuple[int, int, int] = (40, 50, 40)):
    def fn(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = data.copy()
        data[where] = value
        return data, affine
    return fn


def _nan_blob(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = data.copy()
    data[30:35, 40:45, 30:35] = np.nan  # 125 voxels, all inside the sample's brain mask
    return data, affine


def _fifo(path: Path) -> None:
    os.mkfifo(path)


# ----------------------------------------------------------------------------------
# the cases
# ----------------------------------------------------------------------------------
def _desc(r: Path) -> Path:
    return r / "dataset_description.json"


def _design(r: Path) -> Path:
    return r / "design.json"


def _tsv(r: Path) -> Path:
    return r / "participants.tsv"


Case = tuple[Callable[[Path], None], str]

CASES: dict[str, Case] = {
    # -- dataset_description.json ----------------------------------------------------
    "description_missing": (lambda r: _desc(r).unlink(), "dataset_description.json: missing"),
    "description_empty_object": (lambda r: replace_text(_desc(r), "{}"),
        'dataset_description.json: no DatasetType (a results folder is a BIDS derivative: "DatasetType": "derivative")'),
    "description_not_derivative": (lambda r: edit_json(_desc(r), lambda d: d.update(DatasetType="raw")),
        "dataset_description.json: DatasetType must be \"derivative\", got 'raw'"),
    "description_name_not_string": (lambda r: edit_json(_desc(r), lambda d: d.update(Name=["a", "b"])),
        "dataset_description.json: Name must be a string, not a list"),
    "description_not_json": (lambda r: replace_text(_desc(r), "{not json"),
        "dataset_description.json: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    "description_array": (lambda r: replace_text(_desc(r), "[1, 2]"), "dataset_description.json: must hold a JSON object, not a list"),
    "description_deep_nesting": (lambda r: replace_text(_desc(r), "[" * 100_000 + "]" * 100_000),
        "dataset_description.json: not usable JSON (nested too deeply)"),
    "description_not_utf8": (lambda r: replace_bytes(_desc(r), '{"Name": "Étude", "DatasetType": "derivative"}'.encode("latin-1")),
        "dataset_description.json: is not UTF-8 text (byte 0xc9 on line 1); save it as UTF-8"),
    "description_huge": (lambda r: replace_bytes(_desc(r), b"{" + b" " * (17 * 2**20) + b"}"),
        "dataset_description.json: is 17.8 MB; metadata files over 16 MB are refused"),
    # -- design.json -------------------------------------------------------------------
    "design_missing": (lambda r: _design(r).unlink(), "design.json: missing"),
    "design_empty_object": (lambda r: replace_text(_design(r), "{}"), "design.json: is empty: it needs Conditions and Contrasts"),
    "design_conditions_number": (lambda r: edit_json(_design(r), lambda d: d.update(Conditions=4)),
        "design.json: Conditions must be a non-empty list of objects, not a number"),
    "design_condition_without_cue": (lambda r: edit_json(_design(r), lambda d: d["Conditions"][1].pop("cue")),
        "design.json: Conditions[1] needs id, cue and session as strings (missing or not a string: cue)"),
    "design_condition_cue_not_label": (lambda r: edit_json(_design(r), lambda d: d["Conditions"][0].update(cue="coc aine")),
        "design.json: Conditions[0] cue 'coc aine' must be a BIDS label (letters and digits only: it is part of file names)"),
    "design_duplicate_condition": (lambda r: edit_json(_design(r), lambda d: d["Conditions"][1].update(id=d["Conditions"][0]["id"])),
        "design.json: condition id 'cocaine_placebo' is defined twice"),
    "design_contrasts_missing": (lambda r: edit_json(_design(r), lambda d: d.pop("Contrasts")),
        "design.json: Contrasts must be a non-empty list of objects, not missing"),
    "design_weights_string": (lambda r: edit_json(_design(r), lambda d: d["Contrasts"][0].update(weights="1 -1")),
        "design.json: contrast 'placebo' must be an object of condition: weight, not a string"),
    "design_weight_infinite": (lambda r: replace_text(_design(r), _design(r).read_text().replace('"neutral_placebo": -1', '"neutral_placebo": -Infinity', 1)),
        "design.json: contrast 'placebo' weight of 'neutral_placebo' must be a finite number, got -inf"),
    "design_weights_unknown_condition": (lambda r: edit_json(_design(r), lambda d: d["Contrasts"][1]["weights"].update(cocaine_baseline=1)),
        "design.json: contrast 'nac' weights unknown conditions 'cocaine_baseline'"),
    "design_contrast_id_not_label": (lambda r: edit_json(_design(r), lambda d: d["Contrasts"][2].update(id="inter action")),
        "design.json: Contrasts[2] id 'inter action' must be a BIDS label (letters and digits only: it is part of file names)"),
    "design_label_not_string": (lambda r: edit_json(_design(r), lambda d: d["Contrasts"][0].update(label={"en": "x"})),
        "design.json: Contrasts[0] label must be a string, not an object"),
    "design_default_model_unknown": (lambda r: edit_json(_design(r), lambda d: d.update(DefaultModel="mixed")),
        "design.json: DefaultModel 'mixed' is not one of cells, subjects, paired"),
    "design_view_defaults_unknown_covariate": (lambda r: edit_json(_design(r), lambda d: d["ViewDefaults"].update(Covariate="craving")),
        "design.json: ViewDefaults Covariate 'craving' is not a numeric participants.tsv column "
        "(numeric: age, occus, cocaine_duration_years, cocaine_grams_per_week, cocaine_uses_per_week, cocaine_cumulative_grams, ...)"),
    "design_view_defaults_text_covariate": (lambda r: edit_json(_design(r), lambda d: d["ViewDefaults"].update(Covariate="route")),
        "design.json: ViewDefaults Covariate 'route' is not a numeric participants.tsv column "
        "(numeric: age, occus, cocaine_duration_years, cocaine_grams_per_week, cocaine_uses_per_week, cocaine_cumulative_grams, ...)"),
    "design_quick_filter_unknown_column": (lambda r: edit_json(_design(r), lambda d: d["ViewDefaults"]["QuickFilters"].append("height")),
        "design.json: ViewDefaults QuickFilters names columns participants.tsv does not have: 'height'"),
    # -- participants.tsv / .json --------------------------------------------------------
    "participants_missing": (lambda r: _tsv(r).unlink(), "participants.tsv: missing, but the folder has participant images"),
    "participants_no_id_column": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0].replace("participant_id", "subject"), *ls[1:]]),
        "participants.tsv: no participant_id column (columns: 'subject', 'age', 'sex', 'session_order', 'route', 'urine_cocaine_before_placebo')"),
    "participants_duplicate_id": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0], *ls[1:], ls[1]]),
        "participants.tsv: duplicate participant_id sub-01"),
    "participants_bad_id": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0], ls[1].replace("sub-01", "sub-01</script><img src=x onerror=alert(1)>", 1), *ls[2:]]),
        "participants.tsv: participant_id must be sub-<letters and digits> (BIDS); refused: 'sub-01</script><img src=x onerror=aler…"),
    "participants_ragged_long": (lambda r: edit_lines(_tsv(r), lambda ls: [*ls[:3], ls[3] + "\textra", *ls[4:]]),
        "participants.tsv: line 4 has 26 tab-separated fields, the header has 25"),
    "participants_ragged_short": (lambda r: edit_lines(_tsv(r), lambda ls: [*ls[:5], ls[5].rsplit("\t", 1)[0], *ls[6:]]),
        "participants.tsv: line 6 has 24 tab-separated fields, the header has 25"),
    "participants_not_utf8": (lambda r: replace_bytes(_tsv(r), _tsv(r).read_bytes().replace(b"\tF\t", b"\t\xe9\t", 1)),
        "participants.tsv: is not UTF-8 text (byte 0xe9 on line 4); save it as UTF-8"),
    "participants_duplicate_column": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0].replace("\tsex\t", "\tage\t"), *ls[1:]]),
        "participants.tsv: duplicate column names 'age'"),
    "participants_row_without_images": (lambda r: edit_lines(_tsv(r), lambda ls: [*ls, ls[1].replace("sub-01", "sub-99", 1)]),
        "participants.tsv: sub-99 has a row but no images"),
    "participants_images_without_row": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0], *[x for x in ls[1:] if not x.startswith("sub-04\t")]]),
        "sub-04: has images but no row in participants.tsv"),
    "participants_text_in_numeric_column": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0], *ls[1:5], _set_field(ls[0], ls[5], "age", "thirty"), *ls[6:]]),
        "participants.tsv: column 'age' is numeric (Units 'years') but sub-05 has 'thirty'"),
    "participants_infinite_value": (lambda r: edit_lines(_tsv(r), lambda ls: [ls[0], *ls[1:5], _set_field(ls[0], ls[5], "age", "inf"), *ls[6:]]),
        "participants.tsv: column 'age' has 1 infinite values"),
    "participants_json_levels_not_object": (lambda r: edit_json(r / "participants.json", lambda d: d["sex"].update(Levels=["M", "F"])),
        "participants.json: 'sex': Levels must be an object of level: description strings"),
    # -- participant images --------------------------------------------------------------
    "image_missing": (lambda r: (r / P_IMG).unlink(),
        "sub-02: missing image for condition cocaine_placebo (sub-02/ses-placebo/func/sub-02_ses-placebo_task-cue_contrast-cocaine_stat-effect_statmap.nii.gz)"),
    "image_truncated": (lambda r: replace_bytes(r / P_IMG, (r / P_IMG).read_bytes()[: (r / P_IMG).stat().st_size // 2]),
        f"{P_IMG}: truncated or corrupt image data (Compressed file ended before the end-of-stream marker was reached)"),
    "image_garbage": (lambda r: replace_bytes(r / P_IMG, gzip.compress(b"this is not a nifti file" * 20)),
        f"{P_IMG}: not a readable NIfTI image (Cannot work out file type of \"{Path(P_IMG).name}\")"),
    "image_4d": (lambda r: rewrite_image(r / P_IMG, lambda d, a: (np.stack([d, d], axis=-1), a)),
        f"{P_IMG}: expected a 3D image, got shape (79, 95, 79, 2)"),
    "image_other_shape": (lambda r: rewrite_image(r / P_IMG, lambda d, a: (d[:-1], a)),
        f"{P_IMG}: grid (78, 95, 79) differs from the study grid (79, 95, 79) of 91 other images"),
    "image_other_affine": (lambda r: rewrite_image(r / P_IMG, lambda d, a: (d, a + np.array([[0, 0, 0, 2.0], [0] * 4, [0] * 4, [0] * 4]))),
        f"{P_IMG}: affine differs from the study grid (79, 95, 79) of 91 other images by up to 2 mm (images must share one grid)"),
    "image_nan_affine": (lambda r: patch_header(r / P_IMG, srow_x=[np.nan, 0, 0, 78], sform_code=1, qform_code=0),
        f"{P_IMG}: the voxel-to-world affine is not finite and invertible (zero or NaN voxel size?)"),
    "image_infinite": (lambda r: rewrite_image(r / P_IMG, _with_value(np.inf)),
        f"{P_IMG}: contains 1 infinite values (NaN marks outside-mask; Inf is an error)"),
    "image_nan_in_mask": (lambda r: rewrite_image(r / P_IMG, _nan_blob), f"{P_IMG}: 125 non-finite values inside the brain mask"),
    "image_complex": (lambda r: _complex(r / P_IMG), f"{P_IMG}: complex-valued data (complex64): only real-valued images are supported"),
    "image_int16_slope_zero": (lambda r: _as_int16_slope0(r / P_IMG),
        f"{P_IMG}: stores int16 values with scl_slope 0, so no scaling is applied (raw integers); rewrite it with its real slope or as float32"),
    "image_bad_name": (lambda r: (r / "sub-02/ses-placebo/func/sub-02_ses-placebo_cue_statmap.nii.gz").symlink_to((r / P_IMG).resolve()),
        "sub-02/ses-placebo/func/sub-02_ses-placebo_cue_statmap.nii.gz: file name does not follow "
        "sub-<id>_ses-<ses>_task-<task>_contrast-<cue>_stat-effect_statmap.nii.gz"),
    "image_unknown_cue": (lambda r: (r / P_IMG.replace("cocaine", "alcohol")).symlink_to((r / P_IMG).resolve()),
        f"{P_IMG.replace('cocaine', 'alcohol')}: cue 'alcohol' in session 'placebo' is not a condition of design.json"),
    "image_is_a_directory": (lambda r: ((r / P_IMG).unlink(), (r / P_IMG).mkdir()) and None, f"{P_IMG}: not a regular file"),
    "image_is_a_fifo": (lambda r: ((r / P_IMG).unlink(), _fifo(r / P_IMG)) and None, f"{P_IMG}: not a regular file"),
    # -- the mask -------------------------------------------------------------------------
    "mask_other_grid": (lambda r: rewrite_image(r / MASK, lambda d, a: (d[::2, ::2, ::2], a @ np.diag([2.0, 2, 2, 1]))),
        f"{MASK}: grid (40, 48, 40) differs from the study grid (79, 95, 79) of 91 other images"),
    "mask_empty": (lambda r: rewrite_image(r / MASK, lambda d, a: (np.zeros_like(d), a)), f"{MASK}: the brain mask has no voxels > 0"),
    "mask_claims_256mb_in_64_bytes": (lambda r: header_only_gz(r / MASK, (400, 400, 400)),
        f"{MASK}: header claims 256.0 MB of voxel data, more than a gzip file of 64 bytes can hold (corrupt header or a decompression bomb); not read"),
    "mask_claims_16gb": (lambda r: header_only_gz(r / MASK, (2048, 2048, 1024)),
        f"{MASK}: header claims 2048x2048x1024 = 4294967296 voxels (17.2 GB), more than a 3D brain image has (at most 67108864); not read"),
    # -- group maps and sidecars ------------------------------------------------------------
    "group_sidecar_missing": (lambda r: (r / G_SIDE).unlink(), f"{G_SIDE}: missing"),
    "group_df_missing": (lambda r: edit_json(r / G_SIDE, lambda d: d.pop("DegreesOfFreedom")), f"{G_SIDE}: no DegreesOfFreedom (error df of the statistic)"),
    "group_df_infinity": (lambda r: replace_text(r / G_SIDE, (r / G_SIDE).read_text().replace('"DegreesOfFreedom": 84,', '"DegreesOfFreedom": Infinity,')),
        f"{G_SIDE}: DegreesOfFreedom inf is not a finite number"),
    "group_df_tiny": (lambda r: edit_json(r / G_SIDE, lambda d: d.update(DegreesOfFreedom=1e-9)), f"{G_SIDE}: DegreesOfFreedom must be at least 1, got 1e-09"),
    "group_df_string": (lambda r: edit_json(r / G_SIDE, lambda d: d.update(DegreesOfFreedom="84")), f"{G_SIDE}: DegreesOfFreedom '84' is not a finite number"),
    "group_statistic_unknown": (lambda r: edit_json(r / G_SIDE, lambda d: d.update(StatisticType="Z")), f"{G_SIDE}: StatisticType must be \"T\", got 'Z'"),
    "group_weights_string": (lambda r: edit_json(r / G_SIDE, lambda d: d.update(ContrastWeights="1 -1 -1 1")),
        f"{G_SIDE}: ContrastWeights must be an object of condition: weight, not a string"),
    "group_weights_disagree": (lambda r: edit_json(r / G_SIDE, lambda d: d.update(ContrastWeights={"cocaine_placebo": 1, "neutral_placebo": -1})),
        f"{G_SIDE}: ContrastWeights {{'cocaine_placebo': 1.0, 'neutral_placebo': -1.0}} are not those of contrast 'interaction' in design.json "
        "{'cocaine_nac': -1.0, 'cocaine_placebo': 1.0, 'neutral_nac': 1.0, 'neutral_placebo': -1.0}"),
    "group_smoothness_string": (lambda r: edit_json(r / G_SIDE, lambda d: d.update(Smoothness="6 mm")), f"{G_SIDE}: Smoothness: must be an object, not a string"),
    "group_smoothness_bad_values": (lambda r: edit_json(r / G_SIDE, lambda d: d["Smoothness"].update(FWHMVoxels=[3.1, -1, 3.1])),
        f"{G_SIDE}: Smoothness: FWHMVoxels must be positive, got [3.1, -1, 3.1]"),
    "group_smoothness_short_resels": (lambda r: edit_json(r / G_SIDE, lambda d: d["Smoothness"].update(Resels=[1, 85.9])),
        f"{G_SIDE}: Smoothness: Resels must be a list of 4 finite numbers, got [1, 85.9]"),
    "group_map_unknown_contrast": (lambda r: (r / group_map_name("craving")).symlink_to((r / G_IMG).resolve()),
        f"{group_map_name('craving')}: contrast 'craving' is not defined in design.json"),
    "group_map_all_nan": (lambda r: rewrite_image(r / G_IMG, lambda d, a: (np.full_like(d, np.nan), a)), f"{G_IMG}: has no finite voxels"),
    "group_map_gzip_bomb": (lambda r: header_only_gz(r / G_IMG, (1024, 1024, 1024), np.int8),
        f"{G_IMG}: header claims 1024x1024x1024 = 1073741824 voxels (1.1 GB), more than a 3D brain image has (at most 67108864); not read"),
    # -- tables -------------------------------------------------------------------------------
    "table_ragged": (lambda r: edit_lines(r / "tables/published_clusters.tsv", lambda ls: [*ls[:2], ls[2] + "\t1", *ls[3:]]),
        "tables/published_clusters.tsv: line 3 has 13 tab-separated fields, the header has 12"),
    "table_not_utf8": (lambda r: replace_bytes(r / "tables/literature_peaks.tsv", (r / "tables/literature_peaks.tsv").read_bytes() + "Noyau caudé\n".encode("latin-1")),
        "tables/literature_peaks.tsv: is not UTF-8 text (byte 0xe9 on line 9); save it as UTF-8"),
}

# The other kinds of folder, each broken one way: name -> (source folder, build, expected line)
SPM_SOURCE = REPO / "tests" / "data" / "spm_folders" / "onesample"
FSL_SOURCE = REPO / "tests" / "data" / "fsl" / "group.gfeat"
MAPS_SOURCE = SAMPLE / "group"  # a folder of T maps with sidecars and a mask
SPMT = "spmT_0001.nii"
ZSTAT = "cope1.feat/stats/zstat1.nii.gz"
MAP_SIDE = "task-cue_contrast-placebo_stat-t_statmap.json"


def _truncate_raw(path: Path) -> None:
    replace_bytes(path, path.read_bytes()[:4000])


FORMAT_CASES: dict[str, tuple[Path, Callable[[Path], None], str]] = {
    "spm_mat_v73": (SPM_SOURCE, lambda r: replace_bytes(r / "SPM.mat", b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b"\0" * 200),
                    "SPM.mat: is a MATLAB v7.3 (HDF5) file, which is not read; re-save it in MATLAB with load('SPM.mat'); "
                    "save('SPM.mat', 'SPM', '-v7')"),
    "spm_mat_truncated": (SPM_SOURCE, lambda r: replace_bytes(r / "SPM.mat", (r / "SPM.mat").read_bytes()[:3000]),
                          "SPM.mat: cannot be read as a MATLAB file (could not read bytes)"),
    "spm_spmt_missing": (SPM_SOURCE, lambda r: (r / SPMT).unlink(),
                         f"{SPMT}: missing: the image of contrast 1 ('cocaine > neutral, placebo') in SPM.xCon"),
    "spm_mask_missing": (SPM_SOURCE, lambda r: (r / "mask.nii").unlink(), "mask.nii: missing: SPM writes the analysis mask beside SPM.mat"),
    "spm_spmt_garbage": (SPM_SOURCE, lambda r: replace_bytes(r / SPMT, b"not an image" * 100),
                         f'{SPMT}: not a readable NIfTI image (Cannot work out file type of "{SPMT}")'),
    "spm_spmt_truncated": (SPM_SOURCE, lambda r: _truncate_raw(r / SPMT),
                           f"{SPMT}: truncated: the header claims 31.3 kB of voxel data from byte 352, the file has 4.0 kB"),
    "spm_spmt_other_grid": (SPM_SOURCE, lambda r: rewrite_image(r / SPMT, lambda d, a: (d[:-1], a)),
                            f"{SPMT}: grid (16, 23, 20) differs from the study grid (17, 23, 20) of 2 other images"),
    "fsl_smoothness_garbled": (FSL_SOURCE, lambda r: replace_text(r / "cope1.feat/stats/smoothness", "DLH x\nVOLUME\n"),
                               "cope1.feat/stats/smoothness: needs RESELS and VOLUME lines (as FSL's smoothest writes them)"),
    "fsl_zstat_truncated": (FSL_SOURCE, lambda r: replace_bytes(r / ZSTAT, (r / ZSTAT).read_bytes()[:200]),
                            f'{ZSTAT}: not a readable NIfTI image (Cannot work out file type of "zstat1.nii.gz")'),
    "fsl_design_mat_not_numbers": (FSL_SOURCE, lambda r: replace_text(r / "cope1.feat/design.mat", "/NumWaves 1\n/Matrix\none\n"),
                                   "cope1.feat/design.mat: has no /Matrix of numbers"),
    "maps_sidecar_not_json": (MAPS_SOURCE, lambda r: replace_text(r / MAP_SIDE, "{"),
                              f"{MAP_SIDE}: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    "maps_t_without_df": (MAPS_SOURCE, lambda r: edit_json(r / MAP_SIDE, lambda d: d.pop("DegreesOfFreedom")),
                          "task-cue_contrast-placebo_stat-t_statmap.nii.gz: a T map needs its error df (no df): "
                          "add DegreesOfFreedom to a sidecar or pass --df N"),
    "maps_unknown_statistic": (MAPS_SOURCE, lambda r: edit_json(r / MAP_SIDE, lambda d: d.update(StatisticType="X")),
                               "task-cue_contrast-placebo_stat-t_statmap.nii.gz: StatisticType must be \"T\", \"Z\" or \"F\", got 'X'"),
}

# Broken in a way that must still load: (build function, what must hold afterwards)
LOADS: dict[str, Callable[[Path], None]] = {
    # the gzip stream holds 1 GB of zeros after a valid image: only the claimed bytes are read
    "group_map_trailing_gigabyte": lambda r: gzip_with_trailing_zeros(r / G_IMG, 2**30),
    # no mask: derived from the group maps (SPM writes NaN outside its analysis mask)
    "mask_absent": lambda r: (r / MASK).unlink(),
}


def _set_field(header_line: str, line: str, column: str, value: str) -> str:
    fields = line.split("\t")
    fields[header_line.split("\t").index(column)] = value
    return "\t".join(fields)


def build_case(name: str, out: Path, source: Path = SAMPLE) -> Path:
    """The folder of case ``name`` at ``out`` (created), built from ``source`` (a case of
    another kind of folder brings its own source)."""
    if name in FORMAT_CASES:
        source, build, _ = FORMAT_CASES[name]
    else:
        build = CASES[name][0] if name in CASES else LOADS[name]
    link_farm(source, out)
    build(out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.bad_inputs OUT_DIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    for name in [*CASES, *LOADS, *FORMAT_CASES]:
        build_case(name, out / name)
    print(f"{len(CASES) + len(LOADS) + len(FORMAT_CASES)} folders in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
