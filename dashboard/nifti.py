"""Reading NIfTI images safely: check what a header claims before anything is allocated.

A header is 348 bytes that anyone can write.  Before a byte of voxel data is read,
:func:`read_header` checks that what it claims is a real-valued 3D image of a size a
brain image can have and that the file can hold (an uncompressed file must be at
least as long as the data it announces; a gzip stream cannot expand more than
deflate's limit of about 1032:1).  :func:`read_volume` then reads exactly the claimed
bytes (nibabel reads a gzip stream incrementally up to that count, so a decompression
bomb is cut off at the claimed size, which is already capped).

Errors are :class:`ImageError` with a one-line message that does not name the file:
the caller knows the path relative to the results folder and prefixes it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

# 2**26 voxels: a whole-head 0.5 mm grid (e.g. 362 x 434 x 362 = 57 M) fits; a header
# claiming more is not a 3D brain image this app can show.
MAX_VOXELS = 2**26
# deflate cannot compress better than about 1032:1; a little slack for the header
GZIP_MAX_RATIO = 1032
GZIP_SLACK_BYTES = 64 * 1024


class ImageError(ValueError):
    """An image that cannot be used; the message is one line without the file name."""


@dataclass(frozen=True)
class ImageHeader:
    """What a header says about an image, after the checks of :func:`read_header`."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    dtype: np.dtype
    data_bytes: int  # voxel data the header announces
    unscaled_integers: bool  # integer data with scl_slope 0: stored raw, no scaling
    n_volumes: int = 1  # volumes of a 4D file read with read_header(volumes=True)


def load_nifti(path: Path | str, *, mmap: bool = True) -> nib.Nifti1Image:
    """``nib.load`` for the NIfTI files of a results folder (and the atlases).

    ``nib.load`` is typed as returning any image format; this says which one (a
    NIfTI-2 image is a :class:`nibabel.Nifti1Image` too) and refuses the others.
    """
    img = nib.load(str(path), mmap=mmap)
    if not isinstance(img, nib.Nifti1Image):
        raise TypeError(f"{path}: not a NIfTI image ({type(img).__name__})")
    return img


def _size(n_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_header(path: Path, *, volumes: bool = False) -> ImageHeader:
    """Open ``path``'s header and check it; reads no voxel data.

    Raises :class:`ImageError` when the file is not a regular file, not NIfTI, not
    3D (a 4D image with one volume counts as 3D), complex or otherwise not
    real-valued, larger than :data:`MAX_VOXELS`, larger than the file can hold, or
    on a grid that is not finite and invertible.
    """
    if not path.is_file():
        raise ImageError("not a regular file")
    try:
        img = load_nifti(path)
    except Exception as exc:  # noqa: BLE001 - any failure of nibabel's parser is this one problem
        # nibabel names the file by its absolute path: the caller names it already
        raise ImageError(f"not a readable NIfTI image ({_first_line(exc).replace(str(path), path.name)})") from None
    header = img.header
    dtype = np.dtype(header.get_data_dtype())
    if dtype.kind == "c":
        raise ImageError(f"complex-valued data ({dtype.name}): only real-valued images are supported")
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ImageError(f"data type {dtype} is not a real number type")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and (shape[3] == 1 or volumes):
        n_volumes = shape[3]
        shape = shape[:3]
    elif len(shape) != 3:
        raise ImageError(f"expected a 3D image, got shape {shape}")
    else:
        n_volumes = 1
    n_voxels = math.prod(shape) * n_volumes
    data_bytes = n_voxels * dtype.itemsize
    if n_voxels > MAX_VOXELS:
        raise ImageError(
            f"header claims {'x'.join(map(str, (*shape, n_volumes) if n_volumes > 1 else shape))} = {n_voxels} voxels ({_size(data_bytes)}), "
            f"more than a 3D brain image has (at most {MAX_VOXELS}); not read"
        )
    # a single-file NIfTI's data start after its header even when vox_offset says 0 (as
    # SPM12 under Octave writes it); nibabel reads from there
    offset = max(int(header.get_data_offset()), int(getattr(header, "single_vox_offset", 0)) if not path.name.endswith(".hdr") else 0)
    file_bytes = os.path.getsize(path)
    if path.name.endswith(".gz"):
        most = file_bytes * GZIP_MAX_RATIO + GZIP_SLACK_BYTES
        if offset + data_bytes > most:
            raise ImageError(
                f"header claims {_size(data_bytes)} of voxel data, more than a gzip file of "
                f"{_size(file_bytes)} can hold (corrupt header or a decompression bomb); not read"
            )
    elif offset + data_bytes > file_bytes:
        raise ImageError(
            f"truncated: the header claims {_size(data_bytes)} of voxel data from byte {offset}, "
            f"the file has {_size(file_bytes)}"
        )
    affine = np.asarray(img.affine, dtype=float)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ImageError("the voxel-to-world affine is not finite and invertible (zero or NaN voxel size?)")
    unscaled = dtype.kind in "iu" and _raw_slope(path, type(header)) == 0.0
    return ImageHeader(shape, affine, dtype, data_bytes, unscaled, n_volumes)


def _raw_slope(path: Path, header_class: type[nib.Nifti1Header]) -> float:
    """scl_slope as stored (the loaded image's header has it reset once the proxy
    has taken the scaling, and a slope of 0 is then indistinguishable from 1)."""
    with ImageOpener(str(path)) as f:
        raw = header_class.from_fileobj(f, check=False)
    return float(np.asarray(raw["scl_slope"]))


def read_volume(path: Path, header: ImageHeader | None = None) -> np.ndarray:
    """The voxel data as float32 (scl_slope/scl_inter applied), after :func:`read_header`.

    Reads at most the claimed number of bytes.  Raises :class:`ImageError` for
    truncated or corrupt data.
    """
    header = header or read_header(path)
    img = load_nifti(path)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - reported as this file's problem
        text = _first_line(exc)
        if isinstance(exc, EOFError) or "end-of-stream" in text or "truncated" in text.lower() or "Expected" in text:
            raise ImageError(f"truncated or corrupt image data ({text})") from None
        raise ImageError(f"cannot read image data ({type(exc).__name__}: {text})") from None
    return data.reshape(header.shape)


def read_volumes(path: Path) -> np.ndarray:
    """Every volume of a 4D image (``(x, y, z, n)`` float32), after the checks of
    :func:`read_header` on the whole file (e.g. FSL's ``filtered_func_data``)."""
    header = read_header(path, volumes=True)
    img = load_nifti(path)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - reported as this file's problem
        raise ImageError(f"truncated or corrupt image data ({_first_line(exc)})") from None
    return data.reshape((*header.shape, header.n_volumes))
