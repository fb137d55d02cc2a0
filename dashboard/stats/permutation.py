"""Sign-flip permutation inference for a one-sample t on per-participant contrast images
(SnPM's and FSL ``randomise -1``'s test for a within-participant contrast).

Under the null hypothesis each participant's contrast image is symmetric about zero, so
flipping its sign gives an equally likely data set.  For every sign-flip vector the
one-sample t is computed at every voxel, and the null distributions of the *maxima*
over the brain are kept:

- ``max_t``: the largest T (peak-level FWE),
- ``max_extent``: the largest cluster at the cluster-forming height ``u`` (voxels),
- ``max_mass``: the largest cluster mass, the sum of ``T - u`` over a cluster's voxels
  (nilearn's definition; FSL's ``-C`` mass likewise sums the statistic above ``u``),
- ``max_tfce``: the largest TFCE value (optional).

Each is kept per direction ("pos": T, "neg": -T): as SPM, each direction is its own
family.  FWE-corrected p of an observed value ``x`` is ``#{null >= x} / n_perm``; the
null includes the identity (the data as observed) as its first member, so ``p >=
1 / n_perm``, as SnPM and ``randomise`` report it.  With ``2**N <= n_perm`` every sign
flip is enumerated once (an exact test); otherwise the identity and ``n_perm - 1``
distinct random flips drawn from ``numpy.random.default_rng(seed)``.

Speed: the sum of squares of the data is invariant under sign flips, so only the mean
changes: one matrix product gives the means of a batch of flips, T follows from them
in place; clusters are labelled with ``cc3d`` (connected-components-3d: both
directions in one pass as two labels), TFCE with the ``tfce`` package (the exact
max-tree transform of the MATLAB TFCE toolbox's C core).

Connectivity: clusters use 18 neighbours, as SPM's ``spm_clusters`` (so the clusters
are the cluster table's); TFCE uses 26, as ``fslmaths -tfce`` and the TFCE toolbox.
TFCE values are the exact integral ``int e(h)^E h^H dh`` (E = 0.5, H = 2, FSL's
defaults); ``fslmaths`` and nilearn step ``h`` in 100 steps and do not multiply by the
step, so their values are about ``1/dh`` times these (p-values are not affected).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DIRECTIONS = ("pos", "neg")
DEFAULT_N_PERM = 5000
MAX_N_PERM = 100_000
TFCE_E = 0.5
TFCE_H = 2.0
CLUSTER_CONNECTIVITY = 18  # SPM's spm_clusters
TFCE_CONNECTIVITY = 26  # fslmaths -tfce, the TFCE toolbox
BATCH = 16  # sign flips per block: (16, n_voxels) float64 temporaries (~30 MB on the sample)
_EXACT_BITS = 62  # beyond this, flips are drawn with replacement (collisions negligible)

STATISTICS = ("max_t", "max_extent", "max_mass", "max_tfce")


class PermutationUnsupported(ValueError):
    """The design's statistic is not a one-sample t of per-participant images."""


def flip_signs(n_participants: int, n_perm: int, seed: int) -> tuple[np.ndarray, bool]:
    """The sign-flip vectors, ``(n_used, n_participants)`` int8 of +1/-1, identity first,
    and whether they are every flip (``2**N <= n_perm``: ``n_used = 2**N``)."""
    if n_participants < 2:
        raise ValueError("a sign-flip test needs at least 2 participants")
    if not 1 <= n_perm <= MAX_N_PERM:
        raise ValueError(f"the number of permutations must be between 1 and {MAX_N_PERM}, got {n_perm}")
    n = n_participants
    bits = 1 << np.arange(n, dtype=np.int64) if n <= _EXACT_BITS else None
    if n <= _EXACT_BITS and (1 << n) <= n_perm:
        codes = np.arange(1 << n, dtype=np.int64)
        exhaustive = True
    elif n <= _EXACT_BITS:
        rng = np.random.default_rng(seed)
        drawn = rng.choice((1 << n) - 1, size=n_perm - 1, replace=False) + 1 if n_perm > 1 else np.zeros(0, np.int64)
        codes = np.concatenate([[0], np.asarray(drawn, np.int64)])
        exhaustive = False
    else:
        rng = np.random.default_rng(seed)
        flips = rng.integers(0, 2, size=(n_perm, n), dtype=np.int8)
        flips[0] = 0
        return (1 - 2 * flips).astype(np.int8), False
    assert bits is not None
    negative = (codes[:, None] & bits[None, :]) != 0
    return np.where(negative, -1, 1).astype(np.int8), exhaustive


def one_sample_t(images: np.ndarray, signs: np.ndarray, sum_squares: np.ndarray | None = None) -> np.ndarray:
    """One-sample T of the sign-flipped images: ``(B, n_voxels)`` for ``signs`` ``(B, n)``.

    ``T = mean / (sd / sqrt(n))`` with ``sd`` the n-1 standard deviation, computed from the
    flipped means and the (flip-invariant) sum of squares.  Voxels with no variance get 0.
    """
    y = np.asarray(images, np.float64)
    n = y.shape[0]
    ss = (y * y).sum(axis=0) if sum_squares is None else sum_squares
    t = np.asarray(signs, np.float64) @ y
    t /= n  # the means
    var = np.multiply(t, t)
    var *= -n
    var += ss
    var /= n - 1  # sample variance: (SS - n mean^2) / (n - 1)
    # no variance (a constant voxel): SS - n mean^2 cancels to rounding error, not 0;
    # below 1e-12 of the mean square it is taken as 0 (T = 0, not 1e8)
    var[var <= 1e-12 * ss / (n - 1)] = 0.0
    var /= n
    np.sqrt(var, out=var)
    with np.errstate(divide="ignore", invalid="ignore"):
        t /= var
    t[~np.isfinite(t)] = 0.0
    return t


@dataclass(frozen=True)
class Grid:
    """Where the in-mask voxels lie: the brain mask on the image grid."""

    mask: np.ndarray  # 3D bool

    @property
    def flat_index(self) -> np.ndarray:
        return np.flatnonzero(self.mask.ravel())


@dataclass(frozen=True)
class ClusterMaps:
    """Clusters of one T map at height ``u``, both directions: per-voxel labels (0: none),
    and the extent and mass of every label (index 0 unused)."""

    labels: dict[str, np.ndarray]  # direction -> (n_voxels,) int labels
    extent: dict[str, np.ndarray]
    mass: dict[str, np.ndarray]


def clusters_of(t: np.ndarray, grid: Grid, height: float, connectivity: int = CLUSTER_CONNECTIVITY,
                directions: tuple[str, ...] = DIRECTIONS) -> ClusterMaps:
    """Label the voxels of ``t`` (in-mask vector) above ``height`` (``pos``) and below
    ``-height`` (``neg``) into clusters, with their extents and masses."""
    import cc3d

    flat = grid.flat_index
    vol = np.zeros(grid.mask.size, np.uint8)
    signed = {"pos": t, "neg": -t}
    for code, direction in enumerate(DIRECTIONS, start=1):
        if direction in directions:
            vol[flat[signed[direction] > height]] = code
    lab = cc3d.connected_components(vol.reshape(grid.mask.shape), connectivity=connectivity, out_dtype=np.uint32)  # type: ignore[call-overload]
    lab_in = lab.ravel()[flat].astype(np.int64)
    labels, extent, mass = {}, {}, {}
    n_labels = int(lab_in.max()) + 1 if lab_in.size else 1
    for direction in directions:
        inside = signed[direction] > height
        mine = np.where(inside, lab_in, 0)
        extent[direction] = np.bincount(mine[inside], minlength=n_labels)
        mass[direction] = np.bincount(mine[inside], weights=signed[direction][inside] - height, minlength=n_labels)
        labels[direction] = mine
    return ClusterMaps(labels, extent, mass)


def tfce_maps(t: np.ndarray, grid: Grid, *, n_jobs: int = 1) -> np.ndarray:
    """TFCE of in-mask T vectors ``(B, n_voxels)`` (both signs: negative T gives negative
    TFCE), exact integral, E = 0.5, H = 2, 26 neighbours: ``(B, n_voxels)`` float32."""
    import tfce

    t2 = np.atleast_2d(t)
    vol = np.zeros((*grid.mask.shape, t2.shape[0]), np.float32)
    flat_vol = vol.reshape(-1, t2.shape[0])  # a view: the grid in C order, one column per map
    flat_vol[grid.flat_index] = t2.T
    out = tfce.tfce(vol, E=TFCE_E, H=TFCE_H, connectivity=TFCE_CONNECTIVITY, two_sided=True, n_jobs=n_jobs)
    return np.ascontiguousarray(np.asarray(out, np.float32).reshape(-1, t2.shape[0])[grid.flat_index].T)


@dataclass
class NullDistribution:
    """The permutation null of the maxima, per direction: ``stats[direction][name]`` is an
    ``(n_done,)`` array (``max_tfce`` only with TFCE).  Members are in flip order, the
    identity first, so chunks computed apart concatenate to the whole."""

    directions: tuple[str, ...]
    tfce: bool
    stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        first = self.stats[self.directions[0]]["max_t"] if self.directions else np.zeros(0)
        return int(first.size)

    @staticmethod
    def concatenate(parts: list[NullDistribution]) -> NullDistribution:
        if not parts:
            raise ValueError("no chunks to merge")
        head = parts[0]
        stats = {d: {k: np.concatenate([p.stats[d][k] for p in parts]) for k in head.stats[d]} for d in head.directions}
        return NullDistribution(head.directions, head.tfce, stats)

    def p_fwe(self, direction: str, statistic: str, observed: np.ndarray | float) -> np.ndarray:
        """FWE-corrected p of observed values: the share of the null at or above them."""
        null = np.sort(self.stats[direction][statistic])
        obs = np.atleast_1d(np.asarray(observed, np.float64))
        # exactly equal values count as exceedances (the identity always does);
        # a relative tolerance absorbs the last bits of float64 rounding
        tol = 1e-9 * np.maximum(1.0, np.abs(obs))
        return (null.size - np.searchsorted(null, obs - tol, side="left")) / null.size

    def to_dict(self) -> dict[str, Any]:
        return {"directions": list(self.directions), "tfce": self.tfce,
                "stats": {d: {k: v.tolist() for k, v in s.items()} for d, s in self.stats.items()}}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> NullDistribution:
        return NullDistribution(tuple(data["directions"]), bool(data["tfce"]),
                                {d: {k: np.asarray(v, np.float64) for k, v in s.items()} for d, s in data["stats"].items()})


def null_distribution(
    images: np.ndarray,
    grid: Grid,
    signs: np.ndarray,
    height: float,
    *,
    directions: tuple[str, ...] = DIRECTIONS,
    tfce: bool = False,
    connectivity: int = CLUSTER_CONNECTIVITY,
    on_batch: Callable[[int], bool] | None = None,
    n_jobs: int = 1,
) -> NullDistribution:
    """The maxima of every sign flip in ``signs`` (rows; see :func:`flip_signs`).

    ``on_batch(n_done)`` is called after each block of flips; returning False stops the
    work (cancel) and the flips done so far are returned.
    """
    y = np.asarray(images, np.float64)
    if y.ndim != 2 or y.shape[1] != int(grid.mask.sum()):
        raise ValueError(f"images must be (n_participants, {int(grid.mask.sum())} voxels), got {y.shape}")
    if signs.shape[1] != y.shape[0]:
        raise ValueError(f"{signs.shape[1]} signs per flip for {y.shape[0]} participants")
    ss = (y * y).sum(axis=0)
    names = ["max_t", "max_extent", "max_mass"] + (["max_tfce"] if tfce else [])
    out = {d: {k: np.zeros(signs.shape[0]) for k in names} for d in directions}
    done = 0
    for start in range(0, signs.shape[0], BATCH):
        block = signs[start:start + BATCH]
        t = one_sample_t(y, block, ss)
        for j in range(t.shape[0]):
            row = t[j]
            maps = clusters_of(row, grid, height, connectivity, directions)
            for d in directions:
                res = out[d]
                res["max_t"][start + j] = row.max() if d == "pos" else -row.min()
                res["max_extent"][start + j] = maps.extent[d].max(initial=0)
                res["max_mass"][start + j] = maps.mass[d].max(initial=0.0)
        if tfce:
            tf = tfce_maps(t, grid, n_jobs=n_jobs)
            for d in directions:
                out[d]["max_tfce"][start:start + t.shape[0]] = np.maximum(tf.max(axis=1) if d == "pos" else -tf.min(axis=1), 0.0)
        done = start + t.shape[0]
        if on_batch is not None and not on_batch(done):
            break
    stats = {d: {k: v[:done] for k, v in out[d].items()} for d in directions}
    return NullDistribution(tuple(directions), tfce, stats)


@dataclass(frozen=True)
class Observed:
    """The statistics of the data as observed (the identity flip), computed by the same
    code as the null so that p-values compare like with like."""

    t: np.ndarray  # (n_voxels,)
    clusters: ClusterMaps
    tfce: np.ndarray | None  # (n_voxels,) signed TFCE, or None


def observed(images: np.ndarray, grid: Grid, height: float, *, tfce: bool = False,
             connectivity: int = CLUSTER_CONNECTIVITY) -> Observed:
    """One-sample T, clusters and (optionally) TFCE of the unflipped images."""
    y = np.asarray(images, np.float64)
    t = one_sample_t(y, np.ones((1, y.shape[0]), np.int8))[0]
    tf = tfce_maps(t, grid)[0] if tfce else None
    return Observed(t, clusters_of(t, grid, height, connectivity), tf)
