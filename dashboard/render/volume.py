"""Statistical volumes as the browser receives them: NIfTI-1, int16 with a scale.

A map is drawn in the browser from the whole volume, so the volume travels once per
(contrast, model, participant subset) and is reused for every slice, crosshair and
threshold change.  The format is the field's own: a single-file NIfTI-1 image
(``.nii``, sent gzip-compressed) on the display grid (RAS, axis-aligned, as
:func:`dashboard.figures.to_ras` makes it), voxel values int16 with ``scl_slope`` so
that ``T = q * slope``.  Any NIfTI reader (nibabel, NiiVue, FSLeyes) opens it as is.

No value (outside the mask, no variance) is the int16 minimum, ``MISSING``; the slope
is chosen so that the largest |T| maps to 32767 and no finite value meets ``MISSING``.
The largest error is half a step (``slope / 2``, plus float32 rounding), stated in the header's ``descrip``
and returned by :func:`quantize` so the page can say how exact a read-out is.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np

from dashboard.figures import RasGrid

MISSING = -32768  # int16 value of a voxel with no T (NaN on the server)
TOP = 32767  # the largest |T| of a volume is stored as +-TOP


@dataclass(frozen=True)
class Quantized:
    """int16 voxel values (RAS array order), their slope, and the largest error."""

    values: np.ndarray
    slope: float
    max_error: float


def quantize(volume: np.ndarray) -> Quantized:
    """``round(T / slope)`` with ``slope = max|T| / TOP`` (as float32, the header's type);
    NaN and inf become ``MISSING``."""
    finite = np.isfinite(volume)
    peak = float(np.abs(volume[finite]).max()) if finite.any() else 0.0
    # the header stores the slope as float32: quantise with exactly that value
    slope = float(np.float32(peak / TOP)) if peak > 0 else 1.0
    q = np.full(volume.shape, MISSING, np.int16)
    q[finite] = np.clip(np.rint(volume[finite] / slope), -TOP, TOP).astype(np.int16)
    # half a step, plus float32 rounding of q * slope when decoded in single precision
    return Quantized(q, slope, slope / 2 + float(np.finfo(np.float32).eps) * peak)


def dequantize(values: np.ndarray, slope: float) -> np.ndarray:
    """float32 T from int16 values (NaN for ``MISSING``), as the browser decodes them."""
    out = values.astype(np.float32) * np.float32(slope)
    out[values == MISSING] = np.nan
    return out


def grid_affine(grid: RasGrid) -> np.ndarray:
    """The voxel-to-world (mm) affine of a RAS display grid (positive steps)."""
    affine = np.eye(4)
    for d, coords in enumerate((grid.x, grid.y, grid.z)):
        affine[d, d] = float(coords[1] - coords[0]) if coords.size > 1 else 1.0
        affine[d, 3] = float(coords[0])
    return affine


def _nifti(values: np.ndarray, grid: RasGrid, slope: float, descrip: str) -> bytes:
    """Single-file NIfTI-1 bytes of RAS voxel values on the display grid (MNI qform/sform)."""
    affine = grid_affine(grid)
    img = nib.Nifti1Image(values, affine)
    img.header.set_slope_inter(slope, 0.0)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = descrip.encode("ascii", "replace")[:79]  # 80 bytes with the NUL
    img.set_qform(affine, code=4)  # 4: MNI-152
    img.set_sform(affine, code=4)
    return img.to_bytes()


def nifti_bytes(volume: np.ndarray, grid: RasGrid, *, description: str = "T") -> bytes:
    """A RAS float volume as uncompressed single-file NIfTI-1 bytes (int16 + slope)."""
    q = quantize(volume)
    # descrip: what the values are, the missing code and the error bound
    return _nifti(q.values, grid, q.slope, f"{description[:24]}; {MISSING}=none; err<={q.max_error:.2g}")


def label_nifti_bytes(labels: np.ndarray, grid: RasGrid, *, description: str = "clusters") -> bytes:
    """A RAS integer volume (cluster labels, a mask, a template in 0-255) as NIfTI-1 bytes
    stored exactly: uint8 when every value fits, else int16; slope 1.  Values outside
    int16 are refused rather than wrapped."""
    values = np.asarray(labels)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{description}: integer voxel values expected, got {values.dtype}")
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low >= 0 and high <= 255:
        stored = values.astype(np.uint8)
    elif low > MISSING and high <= TOP:
        stored = values.astype(np.int16)
    else:
        raise ValueError(f"{description}: values {low}..{high} do not fit int16")
    return _nifti(stored, grid, 1.0, description[:70])


def gzipped(data: bytes) -> bytes:
    """gzip at a level that keeps encoding a few ms for a 2 mm brain (level 6: within
    a few per cent of level 9's size, several times faster)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def read_nifti_bytes(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(float32 T with NaN for missing, affine) from bytes :func:`nifti_bytes` wrote
    (gzipped or not), read with nibabel: the independent reader the tests use."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    img = nib.Nifti1Image.from_bytes(data)
    proxy: Any = img.dataobj  # an ArrayProxy: the stored ints and their slope
    raw = np.asarray(proxy.get_unscaled())
    slope = float(proxy.slope)  # nibabel moves scl_slope from the header to the proxy
    return dequantize(raw, slope), img.affine


def read_label_bytes(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(integer voxel values, affine) from bytes :func:`label_nifti_bytes` wrote (gzipped
    or not), read with nibabel."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    img = nib.Nifti1Image.from_bytes(data)
    proxy: Any = img.dataobj
    return np.asarray(proxy.get_unscaled()), img.affine
