"""Copy the SPM12 fixture folders out of the scratch folder, check them, write README.md.

Step (c) of ``make_spm_folders.sh`` (see README.md in this folder)::

    finish_folders.py SCRATCH OUT_DIR --command "..." [--command "..."]

- copies ``SCRATCH/firstlevel``, every design folder and ``spm_summary.json`` to
  OUT_DIR (replacing only those entries);
- makes the copies deterministic: the one thing SPM/Octave write that changes from
  run to run is the date in the 116-byte descriptive text at the start of each
  SPM.mat ("MATLAB 5.0 MAT-file, written by Octave 7.3.0, <date> UTC"); it is replaced
  by a fixed date (1970-01-01 00:00:00 UTC), padded with spaces as Octave pads it.
  MATLAB, Octave and scipy ignore this text;
- checks every folder: scipy.io.loadmat reads SPM.mat (squeeze_me=False,
  struct_as_record=False) with the fields a reader needs, the images are on one grid,
  mask.nii has xVol.S voxels, every spmT/spmF maximum matches spm_summary.json;
- writes OUT_DIR/README.md (versions, command lines, layout, numbers).

Options for a benchmark folder (not a committed fixture): ``--designs ff_cells`` (a
comma-separated subset of the six designs), ``--benchmark`` (a short README that says
the folder is a benchmark input, not a fixture). SCRATCH may be OUT_DIR itself (SPM ran
in the output folder, so ``SPM.xY.P`` are valid paths there): nothing is copied then,
the SPM.mat dates are still fixed.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import scipy
import scipy.io as sio

DESIGNS = ("ff_cells", "ff_subjects", "onesample", "onesample_cov", "twosample", "paired")
FIXED_STAMP = b"1970-01-01 00:00:00 UTC"
STAMP_RE = re.compile(rb"^(MATLAB 5\.0 MAT-file, written by Octave [^,]+, )(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)")

DESCRIPTIONS = {
    "ff_cells": (
        "Flexible factorial, factors cue (2) x session (2), no subject factor; main effect = the "
        "cue x session interaction (4 cell columns); independence yes, variance equal (OLS); 88 images"
    ),
    "ff_subjects": (
        "Flexible factorial, factors subject (22) x cue (2) x session (2); main effect of subject + "
        "cue x session interaction (4 cells + 22 subject columns, rank 25); independence yes, "
        "variance equal for every factor; 88 images (SPM sorts each participant's scans by cell, "
        "see xY.P)"
    ),
    "onesample": "One-sample t on the 22 placebo difference images (firstlevel con_0005)",
    "onesample_cov": (
        "One-sample t on con_0005 with covariate cocaine_duration_years (centred on its overall "
        "mean, iCC = 1; no interaction, iCFI = 1)"
    ),
    "twosample": (
        "Two-sample t on con_0005, group 1 = sex M (16), group 2 = sex F (6); independence yes, "
        "variance equal"
    ),
    "paired": (
        "Paired t-test, per participant con_0005 (placebo difference) and con_0006 (N-AC difference); "
        "2 condition columns + 22 subject columns"
    ),
}


def normalise_mat_header(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    m = STAMP_RE.match(bytes(raw[:116]))
    if not m:
        sys.exit(f"{path}: unexpected MAT-file header {bytes(raw[:116])!r}")
    text = m.group(1) + FIXED_STAMP
    raw[:116] = text.ljust(116, b" ")
    path.write_bytes(bytes(raw))


def copy_out(scratch: Path, out: Path, designs: tuple[str, ...] = DESIGNS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    in_place = scratch.resolve() == out.resolve()
    for name in ("firstlevel", *designs):
        dst = out / name
        if not in_place:
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(scratch / name, dst)
        mat = dst / "SPM.mat"
        if mat.exists():
            normalise_mat_header(mat)
    if not in_place:
        shutil.copyfile(scratch / "spm_summary.json", out / "spm_summary.json")


def field(s: Any, name: str) -> Any:
    return getattr(s, name)


def text(a: Any) -> str:
    a = np.asarray(a)
    return str(a.item()) if a.size == 1 else "".join(map(str, a.ravel()))


def check(out: Path, summary: dict[str, Any], designs: tuple[str, ...] = DESIGNS) -> dict[str, dict[str, Any]]:
    ref = nib.load(out / "firstlevel" / "sub-01" / "con_0001.nii")
    grid = (ref.shape, ref.affine)
    inside = int(np.isfinite(np.asarray(ref.dataobj)).sum())
    facts: dict[str, dict[str, Any]] = {}
    for d in designs:
        folder = out / d
        m = sio.loadmat(folder / "SPM.mat", squeeze_me=False, struct_as_record=False)
        spm = m["SPM"][0, 0]
        for f in ("xY", "xX", "xVol", "xCon", "swd", "xC", "xM", "Vbeta", "VResMS", "VM", "nscan"):
            if f not in spm._fieldnames:
                sys.exit(f"{folder}/SPM.mat: no SPM.{f}")
        xX, xVol, xY = spm.xX[0, 0], spm.xVol[0, 0], spm.xY[0, 0]
        for f in ("X", "name", "erdf", "iH", "iC", "iB", "iG", "I"):
            getattr(xX, f)
        for f in ("FWHM", "R", "S", "M", "DIM", "XYZ"):
            getattr(xVol, f)
        P = [text(p) for p in xY.P.ravel()]
        X = np.asarray(xX.X, dtype=float)
        erdf = float(np.asarray(xX.erdf).item())
        S = int(np.asarray(xVol.S).item())
        mask = np.asarray(nib.load(folder / "mask.nii").dataobj)
        if int((mask > 0).sum()) != S or S != inside:
            sys.exit(f"{folder}: mask.nii has {int((mask > 0).sum())} voxels, xVol.S = {S}, brain {inside}")
        sm = summary["designs"][d]
        cons = []
        for c in spm.xCon.ravel():
            name, stat = text(c.name), text(c.STAT)
            vspm = text(c.Vspm[0, 0].fname)
            img = nib.load(folder / vspm)
            if img.shape != grid[0] or not np.allclose(img.affine, grid[1]):
                sys.exit(f"{folder / vspm}: not on the first-level grid")
            y = np.asarray(img.dataobj, dtype=np.float64)[mask > 0]
            cons.append({"name": name, "STAT": stat, "Vspm": vspm, "max": float(y.max()),
                         "df": [float(np.asarray(c.eidf).item()), erdf]})
        for c, s in zip(cons, sm["contrasts"], strict=True):
            if abs(c["max"] - s["max"]) > 1e-5 * max(1.0, abs(s["max"])):
                sys.exit(f"{folder}: {c['Vspm']} max {c['max']} != SPM's {s['max']}")
        for nii in sorted(folder.glob("*.nii")):
            img = nib.load(nii)
            if img.shape != grid[0] or not np.allclose(img.affine, grid[1]):
                sys.exit(f"{nii}: not on the first-level grid")
        facts[d] = {
            "n_images": len(P),
            "columns": X.shape[1],
            "rank": int(np.linalg.matrix_rank(X)),
            "erdf": erdf,
            "FWHM": np.asarray(xVol.FWHM, dtype=float).ravel().tolist(),
            "R": np.asarray(xVol.R, dtype=float).ravel().tolist(),
            "S": S,
            "P0": P[0],
            "swd": text(spm.swd),
            "names": [text(n) for n in xX.name.ravel()],
            "contrasts": cons,
            "files": sorted(p.name for p in folder.iterdir() if p.is_file()),
            "tables": len(list((folder / "spm_tables").glob("*.json"))),
        }
        print(
            f"{d:14s} images {len(P):3d}  columns {X.shape[1]:2d} rank {facts[d]['rank']:2d}  "
            f"erdf {erdf:.6f}  FWHM {np.round(facts[d]['FWHM'], 3)}  S {S}  "
            + "  ".join(f"{c['STAT']}{i + 1} max {c['max']:.3f}" for i, c in enumerate(cons))
        )
    return facts


def fmt(v: float) -> str:
    return f"{v:.4f}"


def design_tables(summary: dict[str, Any], facts: dict[str, dict[str, Any]], designs: tuple[str, ...]) -> list[str]:
    """README lines: the designs, their contrasts and their column names."""
    lines = [
        "## Designs",
        "",
        "| design | what | images | columns (rank) | erdf | FWHM (voxels) | R (resels) | S |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in designs:
        f = facts[d]
        lines.append(
            f"| `{d}` | {DESCRIPTIONS[d]} | {f['n_images']} | {f['columns']} ({f['rank']}) | "
            f"{f['erdf']:.6g} | {', '.join(map(fmt, f['FWHM']))} | {', '.join(map(fmt, f['R']))} | {f['S']} |"
        )
    lines += ["", "Contrasts (index as in SPM.xCon; max = maximum of spmT/spmF over the search volume):", ""]
    lines += ["| design | # | STAT | name | df | weights | image | max |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d in designs:
        for i, (c, s) in enumerate(zip(facts[d]["contrasts"], summary["designs"][d]["contrasts"], strict=True), 1):
            w = s["weights"]
            ws = "; ".join(" ".join(f"{x:g}" for x in row) for row in w)
            df = f"[{c['df'][0]:g}, {c['df'][1]:g}]"
            lines.append(f"| `{d}` | {i} | {c['STAT']} | {c['name']} | {df} | `{ws}` | `{c['Vspm']}` | {c['max']:.4f} |")
    lines += [
        "",
        "Design column names (`SPM.xX.name`):",
        "",
    ]
    for d in designs:
        names = facts[d]["names"]
        shown = names if len(names) <= 8 else [*names[:6], "...", names[-1]]
        lines.append(f"- `{d}`: " + ", ".join(f"`{n}`" for n in shown))
    return lines


def readme(out: Path, summary: dict[str, Any], facts: dict[str, dict[str, Any]], commands: list[str],
           designs: tuple[str, ...] = DESIGNS, benchmark: bool = False) -> str:
    """The fixtures' README.md; with ``benchmark`` a short one for a folder made for a
    benchmark (not committed): what it is, versions, commands, grid and the tables."""
    fl = json.loads((out / "firstlevel" / "contrasts.json").read_text())
    shape = "x".join(map(str, fl["Shape"]))
    vox = fl["VoxelSizeMM"]
    aff = np.asarray(fl["Affine"])
    swd = facts[designs[0]]["swd"].rsplit("/", 1)[0]
    if benchmark:
        lines = [
            "# SPM12 second-level folder(s) for benchmarks (not test fixtures)",
            "",
            "**Real SPM12 outputs on the synthetic sample's images**, written by SPM12 itself under GNU",
            "Octave with the fixture scripts (`scripts/spm_fixtures/make_spm_folders.sh`, see",
            "`scripts/spm_fixtures/README.md`), on a larger grid than the committed fixtures, to time",
            "`cue-dashboard` on a folder of realistic size (`scripts/bench_open.py`). Not committed.",
            "`tests/data/spm_folders/README.md` describes what SPM.mat holds.",
            "",
            f"- SPM: `{summary['spm']}`; GNU Octave {summary['octave']}; Python {platform.python_version()} "
            f"with nibabel {nib.__version__}, numpy {np.__version__}, scipy {scipy.__version__}.",
            f"- SPM ran in `{swd}`" + (" (this folder: `SPM.xY.P` are valid paths here)." if Path(swd).resolve()
                                      == out.resolve() else "."),
            "",
            "```",
            *commands,
            "```",
            "",
            f"Grid: {shape} voxels of {vox:g} mm, NIfTI affine `{aff[:3].tolist()}`; {fl['InBrainVoxels']} voxels",
            "inside the brain, NaN outside, in every first-level image.",
            "",
        ]
        lines += design_tables(summary, facts, designs)
        return "\n".join([*lines, ""])
    lines = [
        "# SPM12 second-level folders (test fixtures)",
        "",
        "**Real SPM12 outputs on resampled synthetic images.** Every file in the design folders",
        "was written by SPM12 itself (`spm_jobman`: `spm.stats.factorial_design`, `spm.stats.fmri_est`,",
        "`spm.stats.con`; tables by `spm_getSPM` + `spm_list('Table')`) running under GNU Octave.",
        "The inputs are the bundled *synthetic* sample's participant effect maps",
        "(`sample_results/`, no participant data), box-averaged onto a coarse grid so that the",
        "folders are small enough to commit. Made by `scripts/spm_fixtures/make_spm_folders.sh`",
        "(see `scripts/spm_fixtures/README.md`); do not edit by hand, re-run the script.",
        "",
        "## Versions and command lines",
        "",
        f"- SPM: `{summary['spm']}` (`spm('Ver')`; SPM12 r7771 from the public spm/spm12 repository,",
        "  MEX files built with `make PLATFORM=octave`), defaults `spm('defaults','fmri')`,",
        "  `cmdline = true`, `mat.format = '-v6'` (SPM's default).",
        f"- GNU Octave {summary['octave']}; Python {platform.python_version()} with nibabel "
        f"{nib.__version__}, numpy {np.__version__}, scipy {scipy.__version__} (first-level step and checks).",
        "- Command lines (from the repository root; `SCRATCH` is where SPM ran):",
        "",
        "```",
        *commands,
        "```",
        "",
        "SPM ran in the scratch folder `" + swd + "`, whose absolute path",
        "differs from this folder's, so `SPM.swd` and `SPM.xY.P` hold paths of \"another machine\",",
        "as folders shared by other researchers do. The only edit made to SPM's files after the run:",
        "the date in each SPM.mat's 116-byte descriptive text (`MATLAB 5.0 MAT-file, written by",
        "Octave 7.3.0, <date> UTC`) is set to `1970-01-01 00:00:00 UTC` so that re-runs give the",
        "same bytes (MATLAB, Octave and scipy ignore that text).",
        "",
        "## Layout",
        "",
        "```text",
        "README.md                 this file",
        "spm_summary.json          per design, as SPM has it: erdf, trRV, xX.name, xVol FWHM/R/S/DIM/M,",
        "                          per contrast name, STAT, weights, image names, max/min of the",
        "                          statistic image over the search volume, table files",
        "firstlevel/               the inputs (see firstlevel/README.txt and contrasts.json)",
        "  participants.tsv        the sample's participants.tsv, unchanged",
        "  contrasts.json          which con is which condition, grid, participants",
        "  README.txt",
        "  sub-01 .. sub-22/con_0001.nii .. con_0006.nii",
        "<design>/                one folder per design, everything SPM wrote:",
        "  SPM.mat                 MATLAB v5 (-v6) file",
        "  beta_NNNN.nii           one per design column (float32, NaN outside the mask)",
        "  ResMS.nii  RPV.nii      residual mean square, resels per voxel",
        "  mask.nii                analysis mask (uint8)",
        "  con_NNNN.nii spmT_NNNN.nii   per T contrast (spmT: 0 outside the mask)",
        "  ess_NNNN.nii spmF_NNNN.nii   per F contrast",
        "  spm_tables/NNNN_p0.001_k0.json   SPM's table, p < 0.001 unc., k = 0",
        "  spm_tables/NNNN_fwe0.05_k0.json  SPM's table, p < 0.05 FWE, k = 0",
        "```",
        "",
        f"Grid: {shape} voxels of {vox:g} mm (LAS, as the sample and SPM's MNI templates), NIfTI affine",
        f"`{aff[:3].tolist()}` (SPM's 1-based `xVol.M` adds one voxel step to the",
        f"translation); {fl['InBrainVoxels']} voxels inside the brain, NaN outside, in every first-level image.",
        "",
        "firstlevel images: " + "; ".join(f"`{k}` {v['label']}" for k, v in fl["Images"].items()) + ".",
        "",
    ]
    lines += design_tables(summary, facts, designs)
    lines += [
        "",
        "## What a reader of these folders needs from SPM.mat",
        "",
        "Read with `scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)`; `m['SPM'][0, 0]`",
        "is a `mat_struct`; every field is an array (index `[0, 0]` for structs, `.item()` for scalars,",
        "strings are 1-element `<U` arrays). Under Octave the `private` fields of the volume handles",
        "(`xY.VY(i).private`, `xCon(i).Vspm.private`, ...) are `nifti` objects that scipy returns as",
        "`MatlabObject`s: do not rely on them.",
        "",
        "- `xCon` (1 x n struct): `name`, `STAT` (`'T'` or `'F'`), `c` (weights: p x 1 for T, p x k for F,",
        "  p = columns of X), `eidf` (numerator df: 1 for T, the rank of an F contrast as a float,",
        f"  e.g. `{summary['designs']['ff_cells']['contrasts'][3]['eidf']!r}`), `Vspm.fname` (`spmT_NNNN.nii` /",
        "  `spmF_NNNN.nii`, relative to the folder), `Vcon.fname` (`con_NNNN.nii` / `ess_NNNN.nii`).",
        "- `xX`: `X` (images x columns), `name` (column names), `erdf` (error df, a float that is",
        f"  not exactly an integer: `{facts['ff_cells']['erdf']!r}` in ff_cells,",
        f"  `{facts['onesample_cov']['erdf']!r}` in onesample_cov: never floor it), `iH` `iC` `iB`",
        "  `iG` (1-based column indices of the condition, covariate, block and nuisance",
        "  partitions: subject columns are `iB`), `I` (images x 4 factor levels, column 1 the",
        "  replication; the flexible factorials have [repl cue session 1] (ff_cells: no participant",
        "  column at all, participants only through `xY.P`) resp. [repl subject cue session]; paired",
        "  [1 subject condition 1]; one-/two-sample [repl group 1 1]), `W`/`V` sparse.",
        "- `xY.P`: the input images as SPM was given them, absolute paths of the machine that",
        f"  estimated the model with a volume suffix, e.g. `{facts['ff_cells']['P0']}`.",
        "  Resolve them by their tail (`firstlevel/sub-01/con_0001.nii`) under this folder, or",
        "  relative to the design folder (`../firstlevel/...`). Take the image order from `xY.P`,",
        "  never from the batch: with a subject factor (ff_subjects) SPM sorts each participant's",
        "  scans by cell, so sub-01 comes as con_0001, con_0003, con_0002, con_0004 (cue 1 session 1,",
        "  cue 1 session 2, ...), and the two-sample design lists group 1 (M) then group 2 (F).",
        "  `xY.VY(i).fname` is the same path without the suffix.",
        "- `xVol`: `FWHM` (voxels), `R` (resel counts, 4), `S` (search voxels), `M` (4x4, 1-based",
        "  voxel to mm), `iM`, `DIM`, `XYZ` (3 x S voxel coordinates, 1-based, column-major order),",
        "  `VRpv.fname` (`RPV.nii`).",
        "- `xC` (covariates, 0 x 0 when there are none; onesample_cov: `rc` raw values, `rcname`,",
        "  `c` centred as entered in X, `cname`, `iCC`, `iCFI`, `type`, `cols` = column in X,",
        "  `descrip`), `swd` (absolute folder path of the estimating machine), `xsDes` (`Design`",
        "  e.g. 'Flexible factorial', 'One sample t-test', 'Two-sample t-test', 'Paired t-test'; its",
        "  `Parameters` lines), `xVi.I` (= `xX.I`), `xM` (`I` = 1 implicit mask, `TH` = -Inf),",
        "  `nscan`, `SPMid`.",
        "- **No `SPM.factor`.** SPM12 stores `SPM.factor` (names and levels of the factors) only",
        "  for a full factorial with automatic contrasts (`des.fd`, `spm_run_factorial_design.m`",
        "  lines 1051-1054); for these designs the factor names are only in the column names",
        "  (`cue*session_{1,2}`, `subject_{3}`, `Group_{1}`, `Condition_{2}`) and the levels in `xX.I`.",
        "",
        "Image conventions seen here: `spmT_*`/`spmF_*` are float32 and 0 outside the mask; `con_*`,",
        "`ess_*`, `beta_*` (float32) and `ResMS`, `RPV` (float64) are NaN outside it; `RPV` is also",
        "NaN (and sometimes 0) at in-mask voxels on the mask's edge, where SPM cannot take",
        "derivatives; `mask.nii` is uint8. The first-level images are",
        "float32, so SPM's implicit mask only drops NaN (its 'exactly 0' rule applies to integer",
        "images): the few in-brain values that are exactly 0 stay in the mask, and every design's",
        f"search volume is the {fl['InBrainVoxels']} in-brain voxels.",
        "",
        "## Saved tables (`<design>/spm_tables/*.json`)",
        "",
        "One file per contrast and threshold: `NNNN_p0.001_k0.json` (`thresDesc = 'none'`, u = 0.001,",
        "k = 0) and `NNNN_fwe0.05_k0.json` (`'FWE'`, u = 0.05, k = 0), NNNN the contrast index. xSPM",
        "comes from `spm_getSPM` with a non-interactive input (`swd`, `title`, `Ic`, `n = 1`, `Im = []`,",
        "`pm = []`, `Ex = []`, `u`, `k`, `thresDesc`), then `TabDat = spm_list('Table', xSPM)` with the",
        "volume defaults (3 maxima per cluster, 8 mm apart). The keys follow",
        "`tests/data/spm/README.md` (same JSON writer: numbers `%.17g`, NaN/Inf as strings, vectors as",
        "flat lists, matrices as lists of rows, `[]` for empty): `name`, `design`, `spm`, `octave`,",
        "`contrast` (`index`, `name`, `STAT`, `weights` = list of rows over the design columns, `Vspm`,",
        "`Vcon`), `thresDesc`, `u_input`, `u`, `k`, `uc` + `uc_names` (`[FWEp FDRp FWEc FDRc]`),",
        "`inputs` (`STAT`, `df`, `n`, `FWHM`, `R`, `S`, `V2R`, `M`, `DIM`, `VOX`, `n_search_voxels`,",
        "`n_voxels_above_u`, `n_voxels_after_k`), `xSPM` (`swd`, `title`, `STATstr`, `Ic`), `Pp`, `Pc`",
        "(sorted), `TabDat` (`tit`, `str`, `hdr`, `fmt`, `dat` one list of 12 cells per row, `ftr`,",
        "`ftr_text`). A table with no surviving voxel has `dat = []` (SPM warns \"No voxels survive",
        "height threshold\").",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scratch", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--command", action="append", default=[], help="a command line for README.md")
    ap.add_argument("--designs", default=",".join(DESIGNS),
                    help="comma-separated designs SPM estimated (default: all six)")
    ap.add_argument("--benchmark", action="store_true",
                    help="a benchmark folder, not the fixtures: a short README.md")
    args = ap.parse_args(argv)
    designs = tuple(d for d in args.designs.replace(" ", ",").split(",") if d)
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or not designs:
        sys.exit(f"--designs: unknown design(s) {unknown}; choose from {', '.join(DESIGNS)}")
    if designs != DESIGNS and not args.benchmark:
        sys.exit("--designs with a subset needs --benchmark (the fixtures' README describes all six)")
    copy_out(args.scratch, args.out, designs)
    summary = json.loads((args.out / "spm_summary.json").read_text())
    facts = check(args.out, summary, designs)
    (args.out / "README.md").write_text(readme(args.out, summary, facts, args.command, designs, args.benchmark))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
