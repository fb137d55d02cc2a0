"""Write a small FSL group-FEAT folder (tests/data/fsl/group.gfeat) for the FSL reader's tests.

FSL itself is not available on these machines, so this folder is *built from FSL's
documented layout* (FEAT user guide, "FEAT output": a ``.gfeat`` with one
``cope<N>.feat`` per lower-level contrast, each with ``design.mat/.con/.grp``,
``mask.nii.gz``, ``filtered_func_data.nii.gz`` (the lower-level copes, one volume per
input) and ``stats/{cope,varcope,tstat,zstat}<M>.nii.gz`` plus ``stats/smoothness``
(``DLH``, ``VOLUME``, ``RESELS`` as ``smoothest`` writes them)), not written by FSL.
The numbers are an ordinary-least-squares one-sample group mean (FEAT's "Mixed effects:
simple OLS") of real inputs: the 22 participants' placebo cocaine - neutral images of
the SPM12 fixtures (tests/data/spm_folders/firstlevel, 8 mm):

- cope = mean, varcope = variance / n, tstat = cope / sqrt(varcope), df = n - 1;
- zstat = the normal quantile of the t tail (FSL's ``ttoz``), computed with scipy;
- smoothness from the residuals (``dashboard.stats.rft.estimate_smoothness``, SPM's
  estimator; FSL's ``smoothest`` would differ slightly): ``RESELS`` = the product of
  the FWHMs in voxels, ``DLH`` = (4 ln 2)^(3/2) / RESELS, ``VOLUME`` = mask voxels.

Usage: .venv/bin/python scripts/fsl_fixture/make_gfeat.py [OUT_DIR]   (default tests/data/fsl)
"""

from __future__ import annotations

import gzip
import math
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[2]
FIRSTLEVEL = REPO / "tests" / "data" / "spm_folders" / "firstlevel"


def _save(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_sform(affine, code=4)
    img.header.set_qform(affine, code=4)
    raw = path.with_suffix("")  # .nii
    nib.save(img, str(raw))
    path.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=9, mtime=0))  # byte-stable output
    raw.unlink()


def _text(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(out: Path) -> int:
    from dashboard.stats import rft

    subjects = sorted(p.name for p in FIRSTLEVEL.glob("sub-*"))
    imgs = [nib.load(str(FIRSTLEVEL / s / "con_0005.nii")) for s in subjects]
    affine = imgs[0].affine
    y = np.stack([np.asarray(i.dataobj, dtype=np.float64) for i in imgs])  # (n, x, y, z)
    mask = np.isfinite(y).all(axis=0)
    n = len(subjects)
    flat = y[:, mask]
    mean = flat.mean(axis=0)
    resid = flat - mean
    var = (resid**2).sum(axis=0) / (n - 1)
    cope, varcope = mean, var / n
    t = cope / np.sqrt(varcope)
    z = stats.norm.isf(stats.t.sf(t, n - 1))
    smooth = rft.estimate_smoothness(resid.astype(np.float32), mask, float(n - 1), tuple(float(v) for v in np.abs(np.diag(affine))[:3]))
    resels = float(np.prod(smooth.fwhm_vox))

    gfeat = out / "group.gfeat"
    if gfeat.exists():
        shutil.rmtree(gfeat)
    feat = gfeat / "cope1.feat"
    (feat / "stats").mkdir(parents=True)

    def vol(v: np.ndarray) -> np.ndarray:
        full = np.zeros(mask.shape)
        full[mask] = v
        return full

    _save(mask.astype(np.float32), affine, gfeat / "mask.nii.gz")
    _save(mask.astype(np.float32), affine, feat / "mask.nii.gz")
    _save(np.moveaxis(np.where(np.isfinite(y), y, 0.0), 0, -1), affine, feat / "filtered_func_data.nii.gz")
    for name, values in (("cope1", cope), ("varcope1", varcope), ("tstat1", t), ("zstat1", z)):
        _save(vol(values), affine, feat / "stats" / f"{name}.nii.gz")
    _text(feat / "stats" / "smoothness", [f"DLH {(4 * math.log(2)) ** 1.5 / resels:.6f}", f"VOLUME {int(mask.sum())}", f"RESELS {resels:.6f}"])
    _text(feat / "stats" / "dof", [str(n - 1)])
    for where in (gfeat, feat):
        _text(where / "design.mat", ["/NumWaves\t1", f"/NumPoints\t{n}", "/PPheights\t\t1.000000e+00", "", "/Matrix", *["1.000000e+00"] * n])
        _text(where / "design.con", ["/ContrastName1\tgroup mean", "/NumWaves\t1", "/NumContrasts\t1", "/PPheights\t\t1.000000e+00",
                                     "/RequiredEffect\t\t1.000", "", "/Matrix", "1.000000e+00"])
        _text(where / "design.grp", ["/NumWaves\t1", f"/NumPoints\t{n}", "", "/Matrix", *["1"] * n])
    _text(gfeat / "README.txt", [
        "Built by scripts/fsl_fixture/make_gfeat.py from FSL's documented group-FEAT layout; FSL did not write it.",
        f"One-sample OLS group mean of {n} inputs (tests/data/spm_folders/firstlevel/sub-*/con_0005.nii), "
        f"df {n - 1}; smoothness estimated with SPM's estimator (FWHM {', '.join(f'{v:.3f}' for v in smooth.fwhm_vox)} voxels).",
        "Inputs, in filtered_func_data order: " + ", ".join(subjects),
    ])
    print(f"wrote {gfeat} (n = {n}, max z {float(np.max(z)):.2f}, FWHM {smooth.fwhm_vox})")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "fsl"))
