"""Random-field-theory (RFT) inference for T maps, following SPM12.

Every function mirrors a named SPM12 routine (``spm/spm12`` sources); the SPM code
is the authority and deviations are called out explicitly.

Conventions (as in SPM12)
-------------------------
* ``fwhm_vox`` -- smoothness of the component fields, FWHM in *voxels*, one value per
  array axis (axis 0 = SPM's x / first image dimension).
* ``resels`` -- resel counts ``R = [R0, R1, R2, R3]`` of the search volume
  (``spm_resels_vol``), in resel units (``R3`` = volume in resels).
* ``search_volume_vox`` -- ``S``, the number of voxels in the search volume
  (``SPM.xVol.S``), used for SPM's Bonferroni cap on peak p-values (``spm_P``).
* ``df`` -- error degrees of freedom of the T field (``df(2)`` in SPM).
* Cluster extents are given in voxels and converted to resels with
  ``V2R = 1/prod(FWHM)`` as ``spm_list`` does for stationary fields (SPM12 default
  ``defaults.stats.rft.nonstat = 0``).
* Only single (non-conjunction, ``n = 1``) T maps are supported.

What SPM does at each step
--------------------------
EC densities -- ``spm_ECdensity('T', t, df)``::

    a  = 4 ln 2,  c = (1 + t^2/v)^((1-v)/2),  b = Gamma((v+1)/2) / Gamma(v/2)
    rho0 = 1 - F_t(t; v)
    rho1 = a^(1/2) / (2 pi)        c
    rho2 = a / (2 pi)^(3/2)        c t / sqrt(v/2) b
    rho3 = a^(3/2) / (2 pi)^2      c ((v-1) t^2 / v - 1)

Expectations -- ``spm_P_RF`` (``n = 1``), with ``D`` = index of the last non-zero
resel count (4 for a 3D volume) and densities floored at MATLAB ``eps``::

    EC = max(rho[0:D], eps)
    Ec = sum_d R_d EC_d                       # expected Euler characteristic
    Ek = EC_0 R_{D-1} / (R_{D-1} EC_{D-1})    # expected resels per cluster
    p(n >= k) = exp(-beta k^(2/D'))  with D' = D-1, beta = (Gamma(D'/2+1)/Ek)^(2/D')
    P(c >= 1 cluster with n >= k) = 1 - exp(-(Ec + eps) p(n >= k))     # Poisson clumping

Peak FWE -- ``spm_P(1,0,t,df,'T',R,1,S)`` = ``min(spm_P_RF, spm_P_Bonf)`` where
``spm_P_Bonf = min(S (1 - F_t(t)), 1)``.

FDR -- SPM12's default topological FDR (``defaults.stats.topoFDR = 1``):
``spm_P_peakFDR``/``spm_uc_peakFDR`` (peak p-values ``Ec(t)/Ec(u)`` over all local
maxima at or above ``u``) and ``spm_P_clusterFDR``/``spm_uc_clusterFDR``
(uncorrected cluster p-values over all clusters at ``u``), each turned into
Benjamini-Hochberg q-values by ``spm_P_FDR``.

Smoothness -- ``spm_est_smoothness`` on the standardised residuals written by
``spm_spm`` (``ResI = e / sqrt(ResSS / erdf)``, NaN outside the mask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats

__all__ = [
    "Smoothness",
    "Field",
    "ec_densities",
    "ec_densities_t",
    "expected_ec",
    "resel_counts",
    "estimate_smoothness",
    "peak_p_unc",
    "spm_p_unc",
    "peak_p_fwe",
    "cluster_p_unc",
    "cluster_p_fwe",
    "cluster_p_fdr",
    "peak_p_fdr",
    "set_level_p",
    "expected_ec_and_cluster_resels",
    "t_threshold_fwe",
    "svc_smoothness",
    "smoothness_from_sidecar",
    "smoothness_to_sidecar",
]

#: MATLAB's ``eps`` (2^-52), used by SPM as a floor and offset in ``spm_P_RF``.
_EPS = float(np.finfo(float).eps)
#: ``4 ln 2``: converts FWHM to the roughness of a Gaussian kernel.
_FOUR_LN2 = 4.0 * math.log(2.0)


# --------------------------------------------------------------------------------------
# Smoothness container
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Smoothness:
    """Smoothness and search-volume summary of an SPM (``SPM.xVol`` equivalent).

    Attributes
    ----------
    fwhm_vox
        FWHM of the component fields in voxels, per array axis (``SPM.xVol.FWHM``).
    resels
        Resel counts ``(R0, R1, R2, R3)`` of the search volume (``SPM.xVol.R``).
    search_volume_vox
        Number of voxels in the search volume (``SPM.xVol.S``).
    df
        Error degrees of freedom of the T field (``xX.erdf``).
    voxel_size_mm
        Voxel dimensions in mm (``xSPM.VOX``).
    rpv
        Optional resels-per-voxel values (the ``RPV`` image of ``spm_est_smoothness``)
        at the in-mask voxels, in ``mask[mask]`` order; NaN where SPM cannot estimate
        them (edge voxels). Not part of equality or ``repr``.
    """

    fwhm_vox: tuple[float, float, float]
    resels: tuple[float, float, float, float]
    search_volume_vox: int
    df: float
    voxel_size_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    rpv: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)
    stat: str = "T"  # the field's statistic, SPM's STAT: "T", "F" or "Z" (Gaussian)
    df_effect: float = 1.0  # numerator df of an F field (SPM's df(1); 1 for T and Z)

    def __post_init__(self) -> None:
        fw = tuple(float(f) for f in self.fwhm_vox)
        rs = tuple(float(r) for r in self.resels)
        vs = tuple(float(v) for v in self.voxel_size_mm)
        if len(fw) != 3:
            raise ValueError(f"fwhm_vox must have 3 values, got {len(fw)}")
        if len(rs) != 4:
            raise ValueError(f"resels must have 4 values (R0..R3), got {len(rs)}")
        if len(vs) != 3:
            raise ValueError(f"voxel_size_mm must have 3 values, got {len(vs)}")
        if any(not f > 0 for f in fw):
            raise ValueError(f"fwhm_vox must be positive, got {fw}")
        if not float(self.df) > 0:
            raise ValueError(f"df must be positive, got {self.df}")
        if self.stat not in STATISTICS:
            raise ValueError(f"stat must be one of {', '.join(STATISTICS)}, got {self.stat!r}")
        if not float(self.df_effect) > 0:
            raise ValueError(f"df_effect must be positive, got {self.df_effect}")
        if int(self.search_volume_vox) < 1:
            raise ValueError("search_volume_vox must be >= 1")
        if not any(r != 0 for r in rs):
            raise ValueError("all resel counts are zero")
        object.__setattr__(self, "fwhm_vox", fw)
        object.__setattr__(self, "resels", rs)
        object.__setattr__(self, "voxel_size_mm", vs)
        object.__setattr__(self, "df", float(self.df))
        object.__setattr__(self, "df_effect", float(self.df_effect))
        object.__setattr__(self, "search_volume_vox", int(self.search_volume_vox))

    @property
    def field(self) -> Field:
        """The statistic of the field with its df, as :func:`ec_densities` takes it."""
        return Field(self.stat, self.df_effect, self.df)

    @property
    def fwhm_mm(self) -> tuple[float, float, float]:
        """FWHM in mm (``FWHM .* VOX``, as printed in ``spm_list``'s footer)."""
        return tuple(f * v for f, v in zip(self.fwhm_vox, self.voxel_size_mm, strict=False))  # type: ignore[return-value]

    @property
    def resel_size_vox(self) -> float:
        """Voxels per resel, ``prod(FWHM)`` (``1/V2R`` in ``spm_list``)."""
        return float(np.prod(self.fwhm_vox))


# --------------------------------------------------------------------------------------
# EC densities and expectations
# --------------------------------------------------------------------------------------
def ec_densities_t(t: float | ArrayLike, df: float) -> NDArray[np.float64]:
    """Euler-characteristic densities ``rho_0..rho_3`` of a T field.

    Follows ``spm_ECdensity('T', t, [1 df])`` (Worsley et al. 1996, HBM 4:58-73,
    Table 2). For ``df = inf`` the Gaussian-field densities (``spm_ECdensity('Z')``)
    are returned.

    Parameters
    ----------
    t
        Threshold(s); any shape.
    df
        Error degrees of freedom ``v`` of the T field.

    Returns
    -------
    numpy.ndarray
        Shape ``(4,) + shape(t)``: ``rho_d(t)`` per unit resel^d. Not floored (SPM
        floors them at ``eps`` only inside ``spm_P_RF``; see :func:`expected_ec`).
    """
    t_arr = np.asarray(t, dtype=float)
    v = float(df)
    if not v > 0:
        raise ValueError(f"df must be positive, got {df}")
    a = _FOUR_LN2
    out = np.empty((4, *t_arr.shape), dtype=float)
    if math.isinf(v):
        b = np.exp(-(t_arr**2) / 2.0)
        out[0] = stats.norm.sf(t_arr)
        out[1] = math.sqrt(a) / (2 * math.pi) * b
        out[2] = a / (2 * math.pi) ** 1.5 * b * t_arr
        out[3] = a**1.5 / (2 * math.pi) ** 2 * b * (t_arr**2 - 1.0)
        return out
    b_t = math.exp(special.gammaln((v + 1) / 2) - special.gammaln(v / 2))
    c = (1.0 + t_arr**2 / v) ** ((1.0 - v) / 2.0)
    out[0] = stats.t.sf(t_arr, v)  # 1 - spm_Tcdf(t, v), without cancellation
    out[1] = math.sqrt(a) / (2 * math.pi) * c
    out[2] = a / (2 * math.pi) ** 1.5 * c * t_arr / math.sqrt(v / 2.0) * b_t
    out[3] = a**1.5 / (2 * math.pi) ** 2 * c * ((v - 1.0) * t_arr**2 / v - 1.0)
    return out


STATISTICS = ("T", "F", "Z")


@dataclass(frozen=True)
class Field:
    """A statistic field as SPM's ``STAT`` and ``df = [df(1) df(2)]``: ``T`` (df(1) = 1),
    ``F`` (numerator and denominator df) or ``Z`` (Gaussian; the df are not used)."""

    stat: str
    df_effect: float
    df: float

    def sf(self, x: float | ArrayLike) -> NDArray[np.float64]:
        """Exact upper tail ``P(X > x)`` (``1 - spm_Tcdf``/``spm_Fcdf``/``spm_Ncdf``)."""
        xa = np.asarray(x, dtype=float)
        if self.stat == "Z" or (self.stat == "T" and math.isinf(self.df)):
            return np.asarray(stats.norm.sf(xa), dtype=float)
        if self.stat == "T":
            return np.asarray(stats.t.sf(xa, self.df), dtype=float)
        return np.asarray(stats.f.sf(xa, self.df_effect, self.df), dtype=float)

    def isf(self, p: float) -> float:
        """The value with upper tail ``p`` (``spm_u``)."""
        if self.stat == "Z" or (self.stat == "T" and math.isinf(self.df)):
            return float(stats.norm.isf(p))
        if self.stat == "T":
            return float(stats.t.isf(p, self.df))
        return float(stats.f.isf(p, self.df_effect, self.df))


def ec_densities(x: float | ArrayLike, f: Field) -> NDArray[np.float64]:
    """EC densities ``rho_0..rho_3`` of a T, F or Gaussian field: ``spm_ECdensity(STAT,
    x, df)`` (Worsley et al. 1996, Table 2; the F field as in SPM's code)."""
    if f.stat == "Z":
        return ec_densities_t(x, math.inf)
    if f.stat == "T":
        return ec_densities_t(x, f.df)
    xa = np.asarray(x, dtype=float)
    k, v = float(f.df_effect), float(f.df)
    a = _FOUR_LN2 / (2 * math.pi)
    b = special.gammaln(v / 2) + special.gammaln(k / 2)
    out = np.empty((4, *xa.shape), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = k * xa / v
        base = (1 + r) ** (-0.5 * (v + k - 2))
        out[0] = stats.f.sf(xa, k, v)
        out[1] = math.sqrt(a) * math.exp(special.gammaln((v + k - 1) / 2) - b) * math.sqrt(2) * r ** (0.5 * (k - 1)) * base
        out[2] = a * math.exp(special.gammaln((v + k - 2) / 2) - b) * r ** (0.5 * (k - 2)) * base * ((v - 1) * r - (k - 1))
        out[3] = (a**1.5 * math.exp(special.gammaln((v + k - 3) / 2) - b) * 2**-0.5 * r ** (0.5 * (k - 3)) * base
                  * ((v - 1) * (v - 2) * r**2 - (2 * v * k - v - k - 1) * r + (k - 1) * (k - 2)))
    return out


def _resel_vector(resels: Sequence[float]) -> tuple[NDArray[np.float64], int]:
    """``R(1:D)`` and ``D = find(R, 1, 'last')`` as in ``spm_P_RF``."""
    r = np.asarray(resels, dtype=float).ravel()
    nz = np.flatnonzero(r)
    if nz.size == 0:
        raise ValueError("all resel counts are zero")
    d = int(nz[-1]) + 1
    return r[:d], d


def _rf_expectations(
    z: ArrayLike, f: Field, resels: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """``Ec`` and ``Ek`` of ``spm_P_RF`` (``n = 1``), vectorised over ``z``.

    Returns ``(Ec, Ek, D)`` where ``D`` is the number of used resel counts.
    """
    r, d = _resel_vector(resels)
    ec = ec_densities(z, f)[:d]
    ec = np.maximum(ec, _EPS)  # EC = max(EC(1:D), eps)
    g = math.sqrt(math.pi) / special.gamma(np.arange(1, d + 1) / 2.0)  # G
    shape = (d,) + (1,) * (ec.ndim - 1)
    p = ec * g.reshape(shape)  # P = triu(toeplitz(EC'.*G))^1, first row
    em = (r / g).reshape(shape) * p  # <maxima> over D dimensions
    ec_total = em.sum(axis=0)  # Ec
    en = p[0] * r[d - 1]  # <resels> EN = P(1)*R(D)
    ek = en / em[d - 1]  # Ek = EN/EM(D)
    return ec_total, ek, d


def expected_ec(t: float | ArrayLike, smoothness: Smoothness) -> float | NDArray[np.float64]:
    """Expected Euler characteristic ``Ec(t) = sum_d R_d rho_d(t)`` of the excursion set.

    Exactly SPM's ``Ec`` output of ``spm_P_RF(1,0,t,df,'T',R,1)``: only resel counts up
    to the last non-zero one are used and each density is floored at ``eps``
    (``EC = max(EC(1:D), eps)``), which matters only where a density is negative
    (e.g. ``rho3`` for ``|t| < sqrt(v/(v-1))``).

    Parameters
    ----------
    t
        Threshold(s).
    smoothness
        Resel counts and df of the search volume.

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``t``.
    """
    ec, _, _ = _rf_expectations(t, smoothness.field, smoothness.resels)
    return _scalar_or_array(ec, t)


def _scalar_or_array(x: NDArray[np.float64], like: Any) -> float | NDArray[np.float64]:
    if np.ndim(like) == 0:
        return float(np.asarray(x).reshape(()))
    return np.asarray(x, dtype=float)


# --------------------------------------------------------------------------------------
# Resel counts of a search volume
# --------------------------------------------------------------------------------------
def _as_3d_mask(mask: ArrayLike) -> NDArray[np.bool_]:
    m = np.asarray(mask)
    if m.dtype == bool:
        b = m
    else:
        with np.errstate(invalid="ignore"):
            b = np.isfinite(m) & (m != 0)  # "finite and non-zero" (spm_resels_vol)
    if b.ndim > 3:
        raise ValueError(f"mask must have at most 3 dimensions, got {b.ndim}")
    while b.ndim < 3:
        b = b[..., np.newaxis]
    return b


def resel_counts(mask: ArrayLike, fwhm_vox: Sequence[float]) -> tuple[float, float, float, float]:
    """Resel counts ``(R0, R1, R2, R3)`` of a voxelised search volume.

    A vectorised transcription of ``spm_resels_vol.c`` (Worsley et al. 1996): count
    in-mask voxels ``P``, edges ``E_x, E_y, E_z`` (pairs of in-mask neighbours along an
    axis), faces ``F_xy, F_xz, F_yz`` (in-mask 2x2 squares) and cubes ``C`` (in-mask
    2x2x2 blocks), then with ``r_i = 1/FWHM_i``::

        R0 = P - (Ex+Ey+Ez) + (Fxy+Fxz+Fyz) - C
        R1 = (Ex-Fxy-Fxz+C) r_x + (Ey-Fxy-Fyz+C) r_y + (Ez-Fxz-Fyz+C) r_z
        R2 = (Fxy-C) r_x r_y + (Fxz-C) r_x r_z + (Fyz-C) r_y r_z
        R3 = C r_x r_y r_z

    For an ``a x b x c`` box this gives ``R0 = 1``,
    ``R1 = (a-1)/fx + (b-1)/fy + (c-1)/fz``, ``R2 = (a-1)(b-1)/(fx fy) + ...``,
    ``R3 = (a-1)(b-1)(c-1)/(fx fy fz)``.

    Parameters
    ----------
    mask
        Boolean array, or numeric array whose finite non-zero voxels are in the volume.
        1D/2D arrays are treated as 3D with trailing singleton axes.
    fwhm_vox
        FWHM in voxels along each array axis (3 values).

    Returns
    -------
    tuple of float
        ``(R0, R1, R2, R3)``.
    """
    fw = np.asarray(fwhm_vox, dtype=float).ravel()
    if fw.size != 3 or np.any(~(fw > 0)):
        raise ValueError(f"fwhm_vox must be 3 positive values, got {fwhm_vox}")
    r = 1.0 / fw
    m = _as_3d_mask(mask)
    mp = np.pad(m, ((1, 0), (1, 0), (1, 0)), constant_values=False)
    cur = mp[1:, 1:, 1:]
    xm = mp[:-1, 1:, 1:]  # curr[o-1]
    ym = mp[1:, :-1, 1:]  # curr[o-m]
    xym = mp[:-1, :-1, 1:]  # curr[o-m-1]
    zm = mp[1:, 1:, :-1]  # prev[o]
    xzm = mp[:-1, 1:, :-1]  # prev[o-1]
    yzm = mp[1:, :-1, :-1]  # prev[o-m]
    xyzm = mp[:-1, :-1, :-1]  # prev[o-m-1]

    def n(a: NDArray[np.bool_]) -> int:
        return int(np.count_nonzero(a))

    p = n(cur)
    ex, ey, ez = n(cur & xm), n(cur & ym), n(cur & zm)
    fxy_b = cur & xm & ym & xym
    fxy = n(fxy_b)
    fxz = n(cur & xm & zm & xzm)
    fyz = n(cur & ym & zm & yzm)
    c = n(fxy_b & zm & xzm & yzm & xyzm)

    r0 = float(p - (ex + ey + ez) + (fxy + fxz + fyz) - c)
    r1 = float((ex - fxy - fxz + c) * r[0] + (ey - fxy - fyz + c) * r[1] + (ez - fxz - fyz + c) * r[2])
    r2 = float((fxy - c) * r[0] * r[1] + (fxz - c) * r[0] * r[2] + (fyz - c) * r[1] * r[2])
    r3 = float(c * r[0] * r[1] * r[2])
    return (r0, r1, r2, r3)


# --------------------------------------------------------------------------------------
# Smoothness estimation
# --------------------------------------------------------------------------------------
def estimate_smoothness(
    residuals: ArrayLike,
    mask: ArrayLike,
    df: float,
    voxel_size_mm: Sequence[float] = (2.0, 2.0, 2.0),
    *,
    n_full: int | None = None,
    standardize: bool = True,
) -> Smoothness:
    """Estimate FWHM, resels per voxel and resel counts from GLM residuals.

    Mirrors ``spm_spm`` (standardised residuals ``ResI = e / sqrt(ResSS/erdf)``, NaN
    outside the mask) followed by ``spm_est_smoothness(VResI, VM, [n erdf])``:

    1. Spatial derivatives are those of ``spm_sample_vol(V,x,y,z,1)`` at the voxel
       centres, i.e. forward differences ``e(x+1) - e(x)`` (zero at the last image
       plane). Because trilinear interpolation multiplies NaN by zero weights, a voxel
       whose forward 2x2x2 block touches a voxel outside the mask (or a non-finite
       residual) gets NaN value and derivatives and is excluded from the global
       estimate (``isnan(ssq)``), as are voxels with ``ssq < sqrt(eps)``.
    2. ``Lambda = (1/m) sum_i grad(e_i) grad(e_i)'`` over the ``m`` supplied images,
       scaled by ``n_full/df`` (``L = L/numel(V); L = L*(n_full/edf)``).
    3. Per voxel: ``RPV = sqrt(det(Lambda)/(4 ln2)^D)`` (negative determinants set to
       0) and ``resel_xyz = sqrt(diag(Lambda)/(4 ln2))``.
    4. Global: ``RESEL = mean(RPV)^(1/D) * mean(resel_xyz)/prod(mean(resel_xyz))^(1/D)``,
       ``FWHM = 1/RESEL`` (missing dimensions get FWHM 1), then
       ``R = spm_resels_vol(mask, FWHM)``.

    SPM12's default ``defaults.stats.rft.nonstat = 0`` means the RPV image is not
    smoothed; that is what is implemented.

    Parameters
    ----------
    residuals
        ``(n_images, n_mask_voxels)``: residuals at the in-mask voxels in
        ``mask[mask]`` (C-order) order.
    mask
        Boolean (or finite non-zero) array defining the analysis mask; dimensions of
        size 1 must be trailing (SPM: lines in the 1st, slices in the first two dims).
    df
        Error degrees of freedom ``erdf`` of the model.
    voxel_size_mm
        Voxel dimensions (stored on the result).
    n_full
        Number of scans ``n`` of the model (``ndf(1)``). Defaults to ``n_images``;
        set it when passing only a subset of *already standardised* residuals
        (SPM's ``defaults.stats.maxres``).
    standardize
        Divide each voxel's residuals by ``sqrt(sum(e^2)/df)`` as ``spm_spm`` does
        before writing ``ResI``. Requires all residuals of the model (idempotent for
        residuals that are already standardised over the full set).

    Returns
    -------
    Smoothness
        With ``rpv`` set to the per-voxel resels (NaN where not estimable) and ``df``
        equal to the ``df`` argument.
    """
    m = _as_3d_mask(mask)
    e = np.asarray(residuals, dtype=float)
    if e.ndim != 2:
        raise ValueError("residuals must be 2D (n_images, n_mask_voxels)")
    n_vox = int(np.count_nonzero(m))
    if e.shape[1] != n_vox:
        raise ValueError(f"residuals have {e.shape[1]} columns but the mask has {n_vox} voxels")
    n_img = e.shape[0]
    if n_img < 1:
        raise ValueError("need at least one residual image")
    v = float(df)
    if not v > 0:
        raise ValueError(f"df must be positive, got {df}")
    n_tot = n_img if n_full is None else int(n_full)

    if standardize:
        ress = np.sum(e**2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = e / np.sqrt(ress / v)  # 0/0 -> NaN, as MATLAB would write to ResI

    dims = m.shape
    d_eff = 3 - sum(1 for s in dims if s == 1)
    if d_eff == 0:
        raise ValueError("mask has no non-singleton dimension")
    if any(dims[i] == 1 for i in range(d_eff)):
        raise ValueError("singleton dimensions of the mask must be trailing (SPM convention)")

    # Voxel indices of the mask and of the forward neighbours (clamped at the last plane,
    # which is what spm_vol_utils.c does with offx/offy/offz = 0 at the border).
    ijk = np.nonzero(m)
    flat = np.ravel_multi_index(ijk, dims)
    nb: list[NDArray[np.intp]] = []
    for ax in range(3):
        sh = list(ijk)
        sh[ax] = np.minimum(ijk[ax] + 1, dims[ax] - 1)
        nb.append(np.ravel_multi_index(tuple(sh), dims))
    corners = []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                cc = (
                    np.minimum(ijk[0] + dx, dims[0] - 1),
                    np.minimum(ijk[1] + dy, dims[1] - 1),
                    np.minimum(ijk[2] + dz, dims[2] - 1),
                )
                corners.append(np.ravel_multi_index(cc, dims))

    # Finite voxels of the residual images (NaN outside the mask / non-finite values).
    finite_vox = np.all(np.isfinite(e), axis=0)
    finite_vol = np.zeros(int(np.prod(dims)), dtype=bool)
    finite_vol[flat] = finite_vox
    valid = np.ones(n_vox, dtype=bool)
    for cidx in corners:
        valid &= finite_vol[cidx]

    # Accumulate ssq and the covariance of the finite differences over images.
    ssq = np.zeros(n_vox)
    lam = np.zeros((n_vox, d_eff, d_eff))
    vol = np.zeros(int(np.prod(dims)))
    e_clean = np.where(np.isfinite(e), e, 0.0)
    for i in range(n_img):
        vol[flat] = e_clean[i]
        val = vol[flat]
        grads = [vol[nb[ax]] - val for ax in range(d_eff)]
        ssq += val**2
        for a_ in range(d_eff):
            for b_ in range(a_, d_eff):
                lam[:, a_, b_] += grads[a_] * grads[b_]
    lam = lam / n_img * (n_tot / v)

    if d_eff == 1:
        det = lam[:, 0, 0].copy()
    elif d_eff == 2:
        det = lam[:, 0, 0] * lam[:, 1, 1] - lam[:, 0, 1] * lam[:, 0, 1]
    else:
        det = (
            lam[:, 0, 0] * lam[:, 1, 1] * lam[:, 2, 2]
            + lam[:, 0, 1] * lam[:, 1, 2] * lam[:, 0, 2] * 2
            - lam[:, 0, 0] * lam[:, 1, 2] * lam[:, 1, 2]
            - lam[:, 0, 1] * lam[:, 0, 1] * lam[:, 2, 2]
            - lam[:, 0, 2] * lam[:, 1, 1] * lam[:, 0, 2]
        )
    diag = np.stack([lam[:, k, k] for k in range(d_eff)], axis=1)
    det[det < 0] = 0.0
    resel_img = np.sqrt(det / _FOUR_LN2**d_eff)
    resel_xyz = np.sqrt(diag / _FOUR_LN2)
    resel_img[~valid] = np.nan
    resel_xyz[~valid] = np.nan

    use = valid & ~(ssq < math.sqrt(_EPS))
    if not np.any(use):
        raise ValueError("no voxel with a complete set of finite differences inside the mask")
    ri = float(np.mean(resel_img[use]))
    rx = np.mean(resel_xyz[use], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        resel = ri ** (1.0 / d_eff) * (rx / np.prod(rx) ** (1.0 / d_eff))
        fwhm_d = 1.0 / resel
    fwhm = np.zeros(3)
    fwhm[:d_eff] = fwhm_d
    fwhm[np.isnan(fwhm)] = 0.0
    fwhm[fwhm == 0] = 1.0
    if not np.all(np.isfinite(fwhm)):
        raise ValueError(f"smoothness could not be estimated (FWHM = {fwhm})")

    fw = (float(fwhm[0]), float(fwhm[1]), float(fwhm[2]))
    return Smoothness(
        fwhm_vox=fw,
        resels=resel_counts(m, fw),
        search_volume_vox=n_vox,
        df=v,
        voxel_size_mm=tuple(float(x) for x in voxel_size_mm),  # type: ignore[arg-type]
        rpv=resel_img,
    )


# --------------------------------------------------------------------------------------
# p-values
# --------------------------------------------------------------------------------------
def peak_p_unc(t: float | ArrayLike, smoothness: Smoothness) -> float | NDArray[np.float64]:
    """Uncorrected peak p-value as listed by ``spm_list`` (``p(unc)`` column).

    ``spm_P(1,0,t,df,'T',1,1,S)``: with ``R = 1`` this is ``1 - exp(-(rho0 + eps))``
    (Poisson clumping on a 0-D field), i.e. ``~ 1 - F_t(t)`` to first order.
    """
    return _scalar_or_array(spm_p_unc(t, smoothness.df, smoothness.field), t)


def spm_p_unc(t: float | ArrayLike, df: float, f: Field | None = None) -> NDArray[np.float64]:
    """SPM's uncorrected peak p at error df ``df``: ``spm_P(1,0,t,df,'T',1,1)`` =
    ``1 - exp(-(max(rho0, eps) + eps))`` with ``rho0`` the exact upper t tail.

    SPM puts the tail through its Poisson clumping formula with R = 1, so this differs
    from the tail by about ``rho0^2/2`` (2.5e-3 relative at p = 0.005).  The exact tail is
    :func:`dashboard.stats.thresholds.p_uncorrected`.
    """
    tail = (f or Field("T", 1.0, float(df))).sf(t)
    rho0 = np.maximum(tail, _EPS)
    return np.asarray(-np.expm1(-(rho0 + _EPS)), dtype=float)


def peak_p_fwe(t: float | ArrayLike, smoothness: Smoothness) -> float | NDArray[np.float64]:
    """FWE-corrected peak (voxel-level) p-value of height ``t``.

    ``spm_P(1,0,t,df,'T',R,1,S)``: the RFT value ``1 - exp(-(Ec(t) + eps))`` from
    ``spm_P_RF`` capped by Bonferroni ``min(S (1 - F_t(t)), 1)`` (``spm_P_Bonf``).
    For small-volume correction pass the ROI's :func:`svc_smoothness`.
    """
    ec, _, _ = _rf_expectations(t, smoothness.field, smoothness.resels)
    p_rf = -np.expm1(-(ec + _EPS))
    rho0 = smoothness.field.sf(t)
    p_bonf = np.minimum(smoothness.search_volume_vox * rho0, 1.0)
    return _scalar_or_array(np.minimum(p_rf, p_bonf), t)


def _cluster_p(k_vox: ArrayLike, u: float, smoothness: Smoothness) -> tuple[NDArray[np.float64], float]:
    """Uncorrected ``p(n >= k)`` and ``Ec(u)`` from ``spm_P_RF(1,k,u,...)``."""
    k_vox_arr = np.asarray(k_vox, dtype=float)
    if np.any(k_vox_arr < 0):
        raise ValueError("cluster sizes must be non-negative")
    k = k_vox_arr / smoothness.resel_size_vox  # K = N*V2R (spm_list)
    ec, ek, d = _rf_expectations(float(u), smoothness.field, smoothness.resels)
    ec_f, ek_f = float(ec), float(ek)
    dd = d - 1
    if dd == 0:
        return np.ones_like(k), ec_f
    beta = (math.gamma(dd / 2.0 + 1.0) / ek_f) ** (2.0 / dd)
    p = np.exp(-beta * k ** (2.0 / dd))
    p = np.where(k == 0, 1.0, p)  # `if ~k, p = 1`
    return p, ec_f


def cluster_p_unc(k_vox: float | ArrayLike, u: float, smoothness: Smoothness) -> float | NDArray[np.float64]:
    """Uncorrected cluster-extent p-value ``P(n >= k)`` for one cluster at threshold ``u``.

    ``spm_P_RF(1,k,u,df,'T',R,1)`` second output: ``exp(-beta k^(2/D))`` with
    ``beta = (Gamma(D/2+1)/E[n])^(2/D)``, ``E[n] = rho0(u)/rho3(u)`` resels (3D) and
    ``k = k_vox/prod(FWHM)`` resels (``spm_list``: ``K = N*V2R``).
    """
    p, _ = _cluster_p(k_vox, u, smoothness)
    return _scalar_or_array(p, k_vox)


def cluster_p_fwe(k_vox: float | ArrayLike, u: float, smoothness: Smoothness) -> float | NDArray[np.float64]:
    """FWE-corrected cluster-extent p-value of a ``k_vox``-voxel cluster at ``u``.

    ``spm_P(1,k,u,df,'T',R,1,S)``: ``1 - exp(-(Ec(u) + eps) P(n >= k))`` (Poisson
    clumping heuristic, ``1 - spm_Pcdf(0, ...)``), ``Ec(u)`` being the expected Euler
    characteristic of the whole excursion set. For ``k = 0`` SPM's Bonferroni cap
    applies and the result equals :func:`peak_p_fwe` at ``u``.
    """
    p, ec = _cluster_p(k_vox, u, smoothness)
    pf = -np.expm1(-(ec + _EPS) * p)
    k_arr = np.asarray(k_vox, dtype=float)
    if np.any(k_arr == 0):
        pf = np.where(k_arr == 0, np.minimum(pf, float(peak_p_fwe(float(u), smoothness))), pf)
    return _scalar_or_array(pf, k_vox)


def _bh_adjust(p_query: NDArray[np.float64], p_ref: NDArray[np.float64]) -> NDArray[np.float64]:
    """``spm_P_FDR(Z, df, 'P', 1, Ps)`` with ``Ps`` the (unsorted) reference p-values.

    ``Qs = Ps*S./(1:S)`` on the sorted ``Ps``; for each query ``P = min(Qs(I:S))``
    with ``I`` the first index where ``Ps >= PZ``, and ``P = 1`` when there is none.
    """
    ps = np.sort(np.asarray(p_ref, dtype=float).ravel())
    s = ps.size
    out = np.ones(p_query.shape, dtype=float)
    if s == 0:
        return out
    qs = ps * s / np.arange(1, s + 1)
    tail_min = np.minimum.accumulate(qs[::-1])[::-1]  # min(Qs(I:S))
    idx = np.searchsorted(ps, p_query, side="left")  # first Ps >= PZ
    ok = idx < s
    out[ok] = tail_min[idx[ok]]
    return out


def cluster_p_fdr(
    k_vox_all_clusters: ArrayLike, u: float, smoothness: Smoothness, *, reference: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Topological cluster FDR q-values (SPM12 default ``topoFDR``).

    ``spm_uc_clusterFDR`` collects the uncorrected extent p-values
    (:func:`cluster_p_unc`) of *all* clusters of the map at the cluster-forming
    threshold ``u`` (voxels ``>= u``, 18-connectivity via ``spm_clusters``) and
    ``spm_P_clusterFDR`` converts each cluster's p-value into a Benjamini-Hochberg
    q-value against that set (``spm_P_FDR``; no capping at 1).

    Parameters
    ----------
    k_vox_all_clusters
        Sizes (voxels) of every cluster in the search volume at ``u``, or of the
        clusters to be given q-values when ``reference`` is given.
    reference
        Sizes of every cluster of the search volume at ``u`` (SPM's ``xSPM.Pc`` set,
        taken *before* the extent threshold); default: ``k_vox_all_clusters`` itself.
    u, smoothness
        Cluster-forming threshold and search-volume smoothness.

    Returns
    -------
    numpy.ndarray
        q-value of each cluster, in input order.
    """
    k = np.atleast_1d(np.asarray(k_vox_all_clusters, dtype=float))
    p, _ = _cluster_p(k, u, smoothness)
    if reference is None:
        return _bh_adjust(p, p)
    p_ref, _ = _cluster_p(np.atleast_1d(np.asarray(reference, dtype=float)), u, smoothness)
    return _bh_adjust(p, p_ref)


def peak_p_fdr(
    peak_t_all_maxima: ArrayLike, u: float, smoothness: Smoothness, *, reference: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Topological peak FDR q-values (SPM12 default ``topoFDR``).

    ``spm_uc_peakFDR``: the uncorrected peak p-value of a local maximum of height
    ``Z`` is ``Ec(Z)/Ec(u)`` (expected EC at the peak over expected EC at the
    feature-inducing threshold ``u``); the reference set is every local maximum
    ``>= u`` in the search volume. ``spm_P_peakFDR``/``spm_P_FDR`` then return the
    Benjamini-Hochberg q-value of each peak against that set (no capping at 1).

    Parameters
    ----------
    peak_t_all_maxima
        Heights of all local maxima of the map (those ``< u`` are returned a q-value
        but are not part of the reference set, as in SPM), or of the peaks to be given
        q-values when ``reference`` is given.
    reference
        Heights of every local maximum ``>= u`` of the search volume (SPM's
        ``xSPM.Pp`` set, before the extent threshold); default: the first argument.
    u, smoothness
        Feature-inducing threshold and search-volume smoothness.

    Returns
    -------
    numpy.ndarray
        q-value of each maximum, in input order.
    """
    z = np.atleast_1d(np.asarray(peak_t_all_maxima, dtype=float))
    eu, _, _ = _rf_expectations(float(u), smoothness.field, smoothness.resels)
    ez, _, _ = _rf_expectations(z, smoothness.field, smoothness.resels)
    pz = ez / float(eu)
    if reference is None:
        return _bh_adjust(pz, pz[z >= u])
    zr = np.atleast_1d(np.asarray(reference, dtype=float))
    er, _, _ = _rf_expectations(zr[zr >= u], smoothness.field, smoothness.resels)
    return _bh_adjust(pz, np.asarray(er, float) / float(eu))


def set_level_p(c: int, k_vox: float, u: float, smoothness: Smoothness) -> float:
    """Set-level p-value of ``c`` clusters of at least ``k_vox`` voxels at height ``u``.

    ``spm_P(c,k,u,df,'T',R,1,S)`` (``spm_list``'s "set p"): ``1 - spm_Pcdf(c-1, (Ec+eps) p)``,
    the probability of ``c`` or more clusters under a Poisson number of clusters with
    mean ``(Ec(u) + eps) P(n >= k)``; ``P(n >= k) = 1`` for ``k = 0``.  For one cluster
    and ``k = 0`` SPM caps it with Bonferroni, ``min(S (1 - F_t(u)), 1)``, as a peak p.
    """
    if c < 1:
        return 1.0
    p, ec = _cluster_p(np.asarray([float(k_vox)]), u, smoothness)
    lam = (ec + _EPS) * float(p[0])
    out = float(stats.poisson.sf(c - 1, lam))
    if c == 1 and k_vox == 0:  # spm_P: "if c == 1 && k == 0", the Bonferroni cap as for a peak
        out = min(out, min(float(smoothness.search_volume_vox * smoothness.field.sf(u)), 1.0))
    return out


def expected_ec_and_cluster_resels(u: float, smoothness: Smoothness) -> tuple[float, float]:
    """``(Ec, Ek)`` of ``spm_P_RF(1,0,u,...)``: the expected number of clusters (Euler
    characteristic) and the expected cluster size in resels at height ``u``."""
    ec, ek, _ = _rf_expectations(float(u), smoothness.field, smoothness.resels)
    return float(ec), float(ek)


# --------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------
def _p_rf_height(u: float, f: Field, resels: Sequence[float]) -> tuple[float, float]:
    """``(P, Ec)`` of ``spm_P_RF(1,0,u,df,STAT,R,1)``."""
    ec, _, _ = _rf_expectations(u, f, resels)
    e = float(ec)
    return float(-np.expm1(-(e + _EPS))), e


def t_threshold_fwe(alpha: float, smoothness: Smoothness) -> float:
    """FWE-corrected height threshold at level ``alpha``.

    ``spm_uc(a,df,'T',R,1,S) = min(spm_uc_RF, spm_uc_Bonf)``. ``spm_uc_RF`` starts at
    ``spm_u(a/max(R))`` and runs Newton steps (``du = 1e-6``, stop when the step is
    below ``1e-6``) first on ``Ec(u) = a`` and then on ``1 - exp(-Ec(u)) = a``; the
    same iteration is used here (with a bracketing fallback should Newton fail), so
    the result agrees with SPM to ~1e-6. ``spm_uc_Bonf = t^{-1}(1 - a/S)``.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    df, r = smoothness.field, smoothness.resels
    du = 1e-6

    def newton(u0: float, which: int) -> float:
        u = u0
        for _ in range(200):
            p = _p_rf_height(u, df, r)[which]
            q = _p_rf_height(u + du, df, r)[which]
            slope = (q - p) / du
            if slope == 0 or not np.isfinite(slope):
                return math.nan
            d = (alpha - p) / slope
            u = u + d
            if not np.isfinite(u):
                return math.nan
            if abs(d) <= 1e-6:
                return u
        return math.nan

    u0 = df.isf(alpha / max(r))
    u_rf = newton(u0, 1)
    if np.isfinite(u_rf):
        u_rf = newton(u_rf, 0)
    if not np.isfinite(u_rf):
        def f(x: float) -> float:
            return _p_rf_height(x, df, r)[0] - alpha

        hi = max(u0, 1.0)
        while f(hi) > 0:
            hi *= 2
        u_rf = float(optimize.brentq(f, 0.0, hi, xtol=1e-12))
    u_bonf = df.isf(alpha / smoothness.search_volume_vox)
    return float(min(u_rf, u_bonf))


# --------------------------------------------------------------------------------------
# Small-volume correction
# --------------------------------------------------------------------------------------
def svc_smoothness(
    smoothness: Smoothness,
    roi_mask: ArrayLike,
    analysis_mask: ArrayLike | None = None,
) -> Smoothness:
    """Search-volume summary for a small-volume correction with an ROI image.

    Follows ``spm_VOI`` for an image-defined VOI (``SPACE = 'I'``): the resel counts
    are ``spm_resels(FWHM, roi, 'I') = spm_resels_vol(roi, FWHM)`` of the ROI image
    itself, and ``S`` is the number of analysis-mask voxels inside the ROI. Feed the
    result to the p-value functions (``peak_p_fwe`` etc.) to get SVC p-values.

    Parameters
    ----------
    smoothness
        Whole-brain smoothness (FWHM and df are reused).
    roi_mask
        ROI on the same grid as the analysis.
    analysis_mask
        Analysis mask; defaults to the ROI itself.
    """
    roi = _as_3d_mask(roi_mask)
    if analysis_mask is None:
        s = int(np.count_nonzero(roi))
    else:
        am = _as_3d_mask(analysis_mask)
        if am.shape != roi.shape:
            raise ValueError("roi_mask and analysis_mask must have the same shape")
        s = int(np.count_nonzero(roi & am))
    if s == 0:
        raise ValueError("the ROI contains no analysed voxel")
    return Smoothness(
        fwhm_vox=smoothness.fwhm_vox,
        resels=resel_counts(roi, smoothness.fwhm_vox),
        search_volume_vox=s,
        df=smoothness.df,
        voxel_size_mm=smoothness.voxel_size_mm,
        stat=smoothness.stat,
        df_effect=smoothness.df_effect,
    )


# --------------------------------------------------------------------------------------
# Sidecar (JSON) round trip
# --------------------------------------------------------------------------------------
def smoothness_from_sidecar(
    d: dict[str, Any], df: float, voxel_size: Sequence[float], *, stat: str = "T", df_effect: float = 1.0
) -> Smoothness:
    """Build a :class:`Smoothness` from a JSON sidecar.

    Required keys: ``"FWHMVoxels"`` (3 values), ``"Resels"`` (4 values, R0..R3) and
    ``"SearchVolumeVoxels"``. Other keys are ignored.
    """
    missing = [k for k in ("FWHMVoxels", "Resels", "SearchVolumeVoxels") if k not in d]
    if missing:
        raise KeyError(f"sidecar is missing {missing}")
    return Smoothness(
        fwhm_vox=tuple(float(x) for x in d["FWHMVoxels"]),  # type: ignore[arg-type]
        resels=tuple(float(x) for x in d["Resels"]),  # type: ignore[arg-type]
        search_volume_vox=int(d["SearchVolumeVoxels"]),
        df=float(df),
        voxel_size_mm=tuple(float(x) for x in voxel_size),  # type: ignore[arg-type]
        stat=stat,
        df_effect=float(df_effect),
    )


def smoothness_to_sidecar(s: Smoothness) -> dict[str, Any]:
    """JSON-serialisable description of ``s`` (inverse of :func:`smoothness_from_sidecar`).

    Besides the three keys read back, it records ``FWHMmm``, ``ReselSizeVoxels``,
    ``DegreesOfFreedom`` and ``VoxelSizeMM`` for provenance.
    """
    return {
        "FWHMVoxels": [float(x) for x in s.fwhm_vox],
        "FWHMmm": [float(x) for x in s.fwhm_mm],
        "Resels": [float(x) for x in s.resels],
        "SearchVolumeVoxels": int(s.search_volume_vox),
        "ReselSizeVoxels": float(s.resel_size_vox),
        "DegreesOfFreedom": float(s.df),
        "VoxelSizeMM": [float(x) for x in s.voxel_size_mm],
    }
