"""Write the first-level inputs of the SPM12 fixture designs.

Step (a) of ``make_spm_folders.sh`` (see README.md in this folder): the bundled
synthetic sample's participant effect maps (``sample_results/sub-*/ses-*/func/
*_stat-effect_statmap.nii.gz``, int16 on the 2 mm MNI grid) are averaged onto a
coarse grid and written as uncompressed float32 NIfTI-1 images named like SPM
first-level contrast images::

    OUT/firstlevel/sub-XX/con_0001.nii .. con_0006.nii
    OUT/firstlevel/participants.tsv     (the sample's, copied byte for byte)
    OUT/firstlevel/contrasts.json       (which con is which condition)
    OUT/firstlevel/README.txt

con_0001..con_0004 are the four conditions in the order of the sample's
``design.json``; con_0005 and con_0006 are per-participant differences
(cocaine - neutral under placebo, resp. N-AC), computed here in float64 from the
float32 coarse images and stored as float32.

Resampling is a box (volume-weighted) average: a coarse voxel of edge V mm
centred on a multiple of V mm (so MNI (0, 0, 0) is a voxel centre) averages the
2 mm voxels of the sample's brain mask that overlap it, each weighted by its
overlap volume. A coarse voxel is inside the brain when at least half of its
volume is covered by the brain mask; every other voxel is NaN (as SPM's own
con images are outside the mask). The coarse grid is the bounding box of the
inside voxels (plus ``--margin`` voxels on every side, default 0), in the sample's LAS orientation
(negative x step, as SPM's MNI templates); ``--full-grid`` keeps the sample's whole field of
view instead (``--voxel 2 --full-grid``: the sample's own 79 x 95 x 79 grid, values unchanged
inside the brain mask, for a full-resolution benchmark folder). The output is deterministic: the
same input gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

CUE_LEVELS = ("cocaine", "neutral")
SESSION_LEVELS = ("placebo", "nac")


def axis_weights(fine_centres: FloatArray, fine_step: float, coarse_step: float) -> tuple[FloatArray, FloatArray]:
    """Overlap lengths (coarse x fine) of 1-D voxels, and the coarse centres.

    Fine voxel i covers [c_i - |s|/2, c_i + |s|/2]; coarse voxel j of edge
    ``coarse_step`` is centred on j * coarse_step (mm).
    """
    half_f = abs(fine_step) / 2.0
    lo, hi = fine_centres.min() - half_f, fine_centres.max() + half_f
    j_lo = int(np.floor(lo / coarse_step + 0.5))
    j_hi = int(np.ceil(hi / coarse_step - 0.5))
    centres = np.arange(j_lo, j_hi + 1, dtype=np.float64) * coarse_step
    a = np.maximum(centres[:, None] - coarse_step / 2.0, fine_centres[None, :] - half_f)
    b = np.minimum(centres[:, None] + coarse_step / 2.0, fine_centres[None, :] + half_f)
    return np.clip(b - a, 0.0, None), centres


class Grid:
    """The coarse grid and the separable averaging weights onto it."""

    def __init__(self, fine_affine: FloatArray, fine_shape: tuple[int, ...], mask: NDArray[np.bool_], voxel: float,
                 margin: int, full_grid: bool = False):
        if not np.allclose(fine_affine[:3, :3], np.diag(np.diag(fine_affine[:3, :3]))):
            sys.exit("the sample grid is not axis-aligned")
        steps = np.diag(fine_affine)[:3]
        weights = []
        centres = []
        for ax in range(3):
            fc = fine_affine[ax, 3] + steps[ax] * np.arange(fine_shape[ax])
            w, c = axis_weights(fc, float(steps[ax]), voxel)
            if steps[ax] < 0:  # keep the sample's orientation (LAS: x decreasing)
                w, c = w[::-1], c[::-1]
            weights.append(w)
            centres.append(c)
        cover = self._apply(weights, mask.astype(np.float64))
        full = self._apply(weights, np.ones(fine_shape))
        inside = cover >= 0.5 * full
        idx = np.argwhere(inside)
        if full_grid:  # the whole field of view of the fine grid
            lo, hi = np.zeros(3, dtype=int), np.asarray(inside.shape)
        else:
            lo = np.maximum(idx.min(0) - margin, 0)
            hi = np.minimum(idx.max(0) + 1 + margin, inside.shape)
        self.weights = [w[lo[a] : hi[a]] for a, w in enumerate(weights)]
        self.inside = inside[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        self.cover = cover[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        self.mask = mask.astype(np.float64)
        first = [centres[a][lo[a]] for a in range(3)]
        self.affine = np.eye(4)
        for a in range(3):
            self.affine[a, a] = voxel * np.sign(steps[a])
            self.affine[a, 3] = first[a]
        self.shape = self.inside.shape

    @staticmethod
    def _apply(weights: list[FloatArray], data: FloatArray) -> FloatArray:
        return np.einsum("ai,bj,ck,ijk->abc", weights[0], weights[1], weights[2], data, optimize=True)

    def average(self, fine: FloatArray) -> NDArray[np.float32]:
        """Volume-weighted mean of the in-mask fine voxels; NaN outside."""
        num = self._apply(self.weights, np.where(self.mask > 0, fine, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / self.cover
        out[~self.inside] = np.nan
        return out.astype(np.float32)


def save(data: NDArray[np.float32], affine: FloatArray, path: Path, descrip: str) -> None:
    """Write a single-file NIfTI-1 image as SPM writes one: float32, scl_slope 1 and
    scl_inter 0 (nibabel would write NaN, which SPM's nifti class does not accept),
    qform and sform "aligned", data at offset 352."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(data.shape)
    hdr.set_data_dtype(np.float32)
    hdr.set_xyzt_units("mm")
    hdr.set_sform(affine, code="aligned")
    hdr.set_qform(affine, code="aligned")
    hdr["descrip"] = descrip.encode()[:79]
    hdr["vox_offset"] = 352
    hdr["scl_slope"] = 1.0
    hdr["scl_inter"] = 0.0
    blob = hdr.binaryblock + b"\0\0\0\0" + np.asarray(data, dtype="<f4").tobytes(order="F")
    path.write_bytes(blob)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sample", type=Path, help="the sample results folder (sample_results)")
    ap.add_argument("out", type=Path, help="folder in which firstlevel/ is written")
    ap.add_argument("--voxel", type=float, default=7.0, help="coarse voxel edge in mm (default 7)")
    ap.add_argument("--margin", type=int, default=0,
                    help="voxels kept around the brain's bounding box (default 0)")
    ap.add_argument("--full-grid", action="store_true",
                    help="keep the sample's whole field of view, not the brain's bounding box "
                         "(with --voxel 2: the sample's own 79 x 95 x 79 grid)")
    args = ap.parse_args(argv)

    design = json.loads((args.sample / "design.json").read_text())
    conditions = design["Conditions"]
    order = [(c["cue"], c["session"]) for c in conditions]
    if order != [(q, s) for s in SESSION_LEVELS for q in CUE_LEVELS]:
        sys.exit(f"unexpected condition order in design.json: {order}")
    lines = (args.sample / "participants.tsv").read_text().splitlines()
    participants = [ln.split("\t")[0] for ln in lines[1:] if ln]

    mask_img = nib.load(args.sample / "group" / "task-cue_desc-brain_mask.nii.gz")
    mask = np.asarray(mask_img.dataobj) > 0
    grid = Grid(mask_img.affine, mask.shape, mask, args.voxel, args.margin, args.full_grid)

    fl = args.out / "firstlevel"
    if fl.exists():
        shutil.rmtree(fl)
    fl.mkdir(parents=True)
    shutil.copyfile(args.sample / "participants.tsv", fl / "participants.tsv")

    tag = f"cue-dashboard synthetic sample, {args.voxel:g}mm box average"
    cons: dict[str, dict[str, object]] = {}
    for i, c in enumerate(conditions, start=1):
        cons[f"con_{i:04d}.nii"] = {
            "condition": c["id"],
            "label": c["label"],
            "cue": c["cue"],
            "session": c["session"],
            "weights": {c["id"]: 1},
        }
    diffs = [("placebo", 1, 2), ("nac", 3, 4)]
    for j, (sess, a, b) in enumerate(diffs, start=len(conditions) + 1):
        ca, cb = conditions[a - 1], conditions[b - 1]
        cons[f"con_{j:04d}.nii"] = {
            "condition": None,
            "label": f"Cocaine > neutral cues, {'placebo' if sess == 'placebo' else 'N-AC'}",
            "contrast": sess,
            "session": sess,
            "difference": [f"con_{a:04d}.nii", f"con_{b:04d}.nii"],
            "weights": {ca["id"]: 1, cb["id"]: -1},
        }

    n_inside = int(grid.inside.sum())
    zeros = 0
    for pid in participants:
        d = fl / pid
        d.mkdir()
        vols = []
        for i, c in enumerate(conditions, start=1):
            f = (
                args.sample / pid / f"ses-{c['session']}" / "func"
                / f"{pid}_ses-{c['session']}_task-cue_contrast-{c['cue']}_stat-effect_statmap.nii.gz"
            )
            img = nib.load(f)
            if img.shape != mask.shape or not np.allclose(img.affine, mask_img.affine):
                sys.exit(f"{f}: not on the mask's grid")
            v = grid.average(np.asarray(img.get_fdata(dtype=np.float64)))
            vols.append(v)
            save(v, grid.affine, d / f"con_{i:04d}.nii", f"{tag}: {c['id']}")
        for j, (sess, a, b) in enumerate(diffs, start=len(conditions) + 1):
            v = (vols[a - 1].astype(np.float64) - vols[b - 1].astype(np.float64)).astype(np.float32)
            vols.append(v)
            save(v, grid.affine, d / f"con_{j:04d}.nii", f"{tag}: {sess} cocaine-neutral")
        for v in vols:
            if int(np.isfinite(v).sum()) != n_inside:
                sys.exit(f"{pid}: non-finite value inside the brain")
            zeros += int((v[grid.inside] == 0).sum())

    meta = {
        "Description": (
            "First-level inputs of the SPM12 fixture designs: the cue-dashboard synthetic "
            "sample's participant effect maps, box-averaged onto a coarse grid. Not participant data."
        ),
        "Synthetic": True,
        "VoxelSizeMM": args.voxel,
        "Shape": list(grid.shape),
        "Affine": grid.affine.tolist(),
        "InBrainVoxels": n_inside,
        "Participants": participants,
        "Images": cons,
    }
    (fl / "contrasts.json").write_text(json.dumps(meta, indent=2) + "\n")
    rows = "\n".join(
        f"  {k}  {v['label']}" + (f"  (= {v['difference'][0]} - {v['difference'][1]})" if v.get("difference") else "")
        for k, v in cons.items()
    )
    (fl / "README.txt").write_text(
        "First-level inputs of the SPM12 fixture designs (synthetic, not participant data).\n"
        "One folder per participant of participants.tsv (the sample's, copied); in each:\n"
        f"{rows}\n"
        f"float32 NIfTI-1, {args.voxel:g} mm grid {grid.shape[0]}x{grid.shape[1]}x{grid.shape[2]} (LAS), "
        f"{n_inside} voxels inside the brain, NaN outside.\n"
        "Box averages of sample_results/sub-*/ses-*/func/*_stat-effect_statmap.nii.gz; written by\n"
        "scripts/spm_fixtures/prepare_firstlevel.py (see scripts/spm_fixtures/README.md).\n"
    )
    print(
        f"firstlevel: {len(participants)} participants x {len(cons)} images, grid {grid.shape}, "
        f"voxel {args.voxel:g} mm, {n_inside} in-brain voxels, {zeros} in-brain values exactly 0"
    )
    print("affine:\n" + np.array2string(grid.affine, precision=3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
