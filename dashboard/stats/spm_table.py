"""The results table SPM12 prints (``spm_list('Table')``), from a T map and its smoothness.

This module puts the pieces together the way ``spm_getSPM`` and ``spm_list`` do (SPM12
r7771), for one direction of one T contrast (SPM treats the negative direction as the
contrast with negated weights, so the caller passes ``-T``):

1. **Height threshold** ``u``: voxels with ``T > u`` (``spm_getSPM``: ``Z > u``).
2. **FDR reference sets, before the extent threshold** (``spm_getSPM``, lines "Peak
   FDR" / "Cluster FDR"): every cluster (18-connectivity) and every local maximum of
   the voxels with ``T >= u`` in the search volume, whatever their size
   (``spm_uc_peakFDR``, ``spm_uc_clusterFDR``).  The extent threshold does not shrink
   these sets: filtering them first makes cluster q-values too small.
3. **Extent threshold** ``k``: clusters with ``>= k`` voxels are kept.
4. **Table rows** (``spm_list``): clusters by their highest maximum, at most ``Num``
   maxima per cluster more than ``Dis`` mm apart (3 and 8 mm; 16 and 4 mm for a
   small-volume correction, SPM's ``stats.results.svc`` defaults).
5. **Columns** (``TabDat.hdr``):

   - set level: ``p_set`` = ``spm_P(c,k,u,df,'T',R,1,S)`` = P(Poisson(<c>) >= c) and
     ``c_set`` = the number of listed clusters (first row of the table only);
   - cluster level: ``p_fwe_cluster`` = ``spm_P(1,K,u,...)``, ``p_fdr_cluster`` =
     ``spm_P_clusterFDR`` (topological FDR against every cluster at ``u``), ``k``
     (voxels), ``p_unc_cluster`` = P(n >= K) (``K`` = k in resels);
   - peak level: ``p_fwe_peak`` = ``spm_P(1,0,T,df,'T',R,1,S)`` (RFT, Bonferroni-capped),
     ``p_fdr_peak`` = ``spm_P_peakFDR`` (topological FDR against every maximum at
     ``u``), ``peak_t``, ``z_score`` and ``p_unc``: SPM's ``Pz = spm_P(1,0,T,df,'T',1,1,S)``
     = ``1 - exp(-(rho0(T) + eps))`` (R = 1, not the exact t tail) and
     ``Z = spm_invNcdf(1 - Pz)`` (``Inf`` when ``Pz < 10 eps``).

6. **Footer** (``TabDat.ftr``): see :class:`Footer`.

Ties at exactly ``u`` (a voxel equal to the threshold) are in the FDR reference sets but
not in the table, as in SPM (``>=`` there, ``>`` here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage, stats

from dashboard.stats import rft
from dashboard.stats.clusters import find_clusters

__all__ = ["SPM_COLUMNS", "Footer", "SpmTable", "excursion_set", "spm_table", "spm_z"]

#: Columns of :attr:`SpmTable.table` (SPM's column order; the mm coordinates last).
SPM_COLUMNS = [
    "cluster_id", "p_set", "c_set", "p_fwe_cluster", "p_fdr_cluster", "k", "p_unc_cluster",
    "p_fwe_peak", "p_fdr_peak", "peak_t", "z_score", "p_unc", "x", "y", "z", "is_main_peak",
]

#: SPM's defaults for the whole-volume table and for a small-volume correction
#: (``spm_defaults``: ``stats.results.volume`` and ``stats.results.svc``): (Num, Dis mm).
VOLUME_LISTING = (3, 8.0)
SVC_LISTING = (16, 4.0)
#: Level of SPM's critical thresholds in the footer (``spm_getSPM``: 0.05).
FOOTER_ALPHA = 0.05
_EPS = float(np.finfo(float).eps)
_TOL = 10 * _EPS  # spm_list: "tolerance for p-value underflow, when computing equivalent Z's"
_CONN18 = ndimage.generate_binary_structure(3, 2)


def spm_z(p: float | NDArray[np.float64]) -> NDArray[np.float64]:
    """SPM's equivalent Z of a p-value: ``spm_invNcdf(1 - p)``, ``Inf`` when ``p < 10 eps``.

    ``1 - p`` is formed first, as SPM does (its rounding moves Z by < 1e-7 at p = 1e-10).
    """
    p_arr = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore"):
        z = stats.norm.ppf(1.0 - p_arr)
    return np.asarray(np.where(p_arr < _TOL, np.inf, z), dtype=float)


@dataclass(frozen=True)
class ExcursionSet:
    """Every cluster and local maximum of ``T >= u`` in a search volume (FDR references)."""

    cluster_sizes: NDArray[np.int64]  # voxels, one per 18-connected cluster
    maxima: NDArray[np.float64]  # T of every local maximum (spm_max)


def excursion_set(stat: NDArray[np.float64], u: float) -> ExcursionSet:
    """Clusters and local maxima of ``stat >= u`` as ``spm_uc_clusterFDR`` / ``spm_uc_peakFDR``.

    Local maxima follow ``spm_max``/``spm_get_lm``: a voxel of the set that is ``>=``
    each of its 18 neighbours, where neighbours outside the set count as 0 and
    neighbours outside the image do not count.  NaN (outside the mask) is never in the set.
    """
    with np.errstate(invalid="ignore"):
        inset = stat >= u
    comp, n = ndimage.label(inset, structure=_CONN18)
    sizes = np.bincount(comp.ravel(), minlength=n + 1)[1:].astype(np.int64)
    vol = np.where(inset, stat, 0.0)
    padded = np.pad(vol, 1, constant_values=-np.inf)  # outside the image: no neighbour
    neigh = ndimage.maximum_filter(padded, footprint=_CONN18 & ~_centre(), mode="constant", cval=-np.inf)[1:-1, 1:-1, 1:-1]
    is_max = inset & (vol >= neigh)
    return ExcursionSet(sizes, np.asarray(stat[is_max], dtype=float))


def _centre() -> NDArray[np.bool_]:
    c = np.zeros((3, 3, 3), bool)
    c[1, 1, 1] = True
    return c


@dataclass(frozen=True)
class Footer:
    """What ``spm_list`` prints under the table (``TabDat.ftr``), as numbers.

    - ``height_t``, ``height_p_unc``, ``height_p_fwe``: "Height threshold: T = u, p = Pz
      (Pu)", with Pz the uncorrected p of ``u`` (R = 1) and Pu its FWE p.
    - ``extent_k``, ``extent_p_unc``, ``extent_p_fwe``: "Extent threshold: k voxels, p =
      Pn (P)"; the two p-values are None when k = 0 (SPM prints none).
    - ``expected_voxels_per_cluster``: <k> = Ek / V2R; ``expected_clusters``: <c> = Ec Pn.
    - ``fwe_p_height``: FWEp = ``spm_uc(0.05)``, the T of a 0.05 FWE peak threshold;
      ``fdr_p_height``: FDRp, the lowest peak T with peak q <= 0.05 (Inf if none);
      ``fwe_c_extent``: FWEc, the smallest cluster at ``u`` (voxels) with cluster
      p-FWE <= 0.05; ``fdr_c_extent``: FDRc, the same for cluster q <= 0.05 (Inf if none).
    - ``df``: (effect df, error df): 1 for T and Z; ``fwhm_mm`` and ``fwhm_vox``; ``volume_mm3``,
      ``volume_voxels``, ``volume_resels`` (the last non-zero resel count);
      ``voxel_size_mm``; ``resel_voxels`` = prod(FWHM).
    - ``listing``: "table shows Num local maxima more than Dis mm apart".
    """

    height_t: float
    height_p_unc: float
    height_p_fwe: float
    extent_k: int
    extent_p_unc: float | None
    extent_p_fwe: float | None
    expected_voxels_per_cluster: float
    expected_clusters: float
    fwe_p_height: float
    fdr_p_height: float
    fwe_c_extent: float
    fdr_c_extent: float
    df: tuple[float, float]
    fwhm_mm: tuple[float, float, float]
    fwhm_vox: tuple[float, float, float]
    volume_mm3: float
    volume_voxels: int
    volume_resels: float
    voxel_size_mm: tuple[float, float, float]
    resel_voxels: float
    max_peaks: int
    min_distance_mm: float
    stat: str = "T"  # SPM's STAT of the map: T, F or Z

    def lines(self) -> list[str]:
        """The footer as ``spm_list`` prints it (same formats)."""
        out = [f"Height threshold: {self.stat} = {self.height_t:.2f}, p = {self.height_p_unc:.3f} ({self.height_p_fwe:.3f})"]
        if self.extent_k == 0 or self.extent_p_unc is None or self.extent_p_fwe is None:
            out.append(f"Extent threshold: k = {self.extent_k:.0f} voxels")
        else:
            out.append(f"Extent threshold: k = {self.extent_k:.0f} voxels, p = {self.extent_p_unc:.3f} ({self.extent_p_fwe:.3f})")
        out.append(f"Expected voxels per cluster, <k> = {self.expected_voxels_per_cluster:.3f}")
        out.append(f"Expected number of clusters, <c> = {self.expected_clusters:.2f}")
        out.append(f"FWEp: {self.fwe_p_height:.3f}, FDRp: {_fmt(self.fdr_p_height, 3)}, "
                   f"FWEc: {_fmt(self.fwe_c_extent, 0)}, FDRc: {_fmt(self.fdr_c_extent, 0)}")
        out.append(f"Degrees of freedom = [{self.df[0]:.1f}, {self.df[1]:.1f}]")
        mm = " ".join(f"{v:.1f}" for v in self.fwhm_mm)
        vox = " ".join(f"{v:.1f}" for v in self.fwhm_vox)
        out.append(f"FWHM = {mm} mm mm mm; {vox} {{voxels}}")
        out.append(f"Volume: {self.volume_mm3:.0f} = {self.volume_voxels:.0f} voxels = {self.volume_resels:.1f} resels")
        vs = " ".join(f"{v:.1f}" for v in self.voxel_size_mm)
        out.append(f"Voxel size: {vs} mm mm mm; (resel = {self.resel_voxels:.2f} voxels)")
        out.append(f"table shows {self.max_peaks} local maxima more than {self.min_distance_mm:.1f}mm apart")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (infinite thresholds as None)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[name] = list(v) if isinstance(v, tuple) else v
        return out


def _fmt(v: float, decimals: int) -> str:
    return "Inf" if math.isinf(v) else f"{v:.{decimals}f}"


@dataclass(frozen=True)
class SpmTable:
    """One direction's SPM table: rows (:data:`SPM_COLUMNS`), listed-cluster labels, footer."""

    table: pd.DataFrame
    labels: NDArray[np.int32]
    footer: Footer | None  # None without smoothness (no RFT)


def spm_table(
    values: NDArray[np.float64],
    affine: NDArray[np.float64],
    u: float,
    k: int,
    smoothness: rft.Smoothness | None,
    *,
    df: float,
    svc_mask: NDArray[np.bool_] | None = None,
    analysis_mask: NDArray[np.bool_] | None = None,
    stat: str = "T",
    df_effect: float = 1.0,
) -> SpmTable:
    """SPM12's results table of one statistic map (one direction), see the module docstring.

    ``values``: 3D map of the statistic ``stat`` (SPM's STAT: ``"T"``, ``"F"`` with
    ``df_effect`` numerator df, or ``"Z"``), NaN outside the analysis mask; ``df`` the
    error df.  A given ``smoothness`` must be of the same field.  ``smoothness``: the whole-volume
    ``SPM.xVol`` equivalent (None: no RFT columns, no footer).  With ``svc_mask`` the
    table is SPM's small-volume correction (``spm_VOI`` with an image VOI): the
    whole-volume height and extent thresholds are applied first, the surviving voxels
    inside the ROI are listed (16 maxima, 4 mm), and every p-value uses the ROI's resel
    counts and voxel count; FDR reference sets are the ROI's.
    """
    field = rft.Field(stat, float(df_effect), float(df))
    if smoothness is not None and smoothness.field != field:
        raise ValueError(f"the smoothness is of a {smoothness.stat} field with df {smoothness.field}, the map of {field}")
    stat_map = np.asarray(values, dtype=np.float64)
    search = stat_map
    if svc_mask is None:
        num, dis = VOLUME_LISTING
        listed = find_clusters(stat_map, affine, u, extent=k, max_peaks_per_cluster=num, min_distance_mm=dis)
    else:
        num, dis = SVC_LISTING
        whole = find_clusters(stat_map, affine, u, extent=k, max_peaks_per_cluster=1)
        kept = (whole.labels > 0) & svc_mask
        listed = find_clusters(np.where(kept, stat_map, np.nan), affine, u, extent=0, max_peaks_per_cluster=num, min_distance_mm=dis)
        search = np.where(svc_mask, stat_map, np.nan)
        if smoothness is not None:
            smoothness = rft.svc_smoothness(smoothness, svc_mask, analysis_mask)
    tab = listed.table
    out = pd.DataFrame({
        "cluster_id": tab["cluster_id"].to_numpy(np.int64),
        "k": tab["k"].to_numpy(np.int64),
        "peak_t": tab["peak_t"].to_numpy(float),
        "x": tab["x"].to_numpy(float), "y": tab["y"].to_numpy(float), "z": tab["z"].to_numpy(float),
        "is_main_peak": tab["is_main_peak"].to_numpy(bool),
    })
    t = out["peak_t"].to_numpy(float)
    out["p_unc"] = rft.spm_p_unc(t, df, field)
    out["z_score"] = spm_z(out["p_unc"].to_numpy(float))
    n_clusters = listed.n_clusters
    out["c_set"] = np.nan
    out["p_set"] = np.nan
    for col in ("p_fwe_cluster", "p_fdr_cluster", "p_unc_cluster", "p_fwe_peak", "p_fdr_peak"):
        out[col] = np.nan
    if len(out):
        out.loc[0, "c_set"] = n_clusters
    footer = None
    if smoothness is not None:
        ref = excursion_set(search, u)
        kvox = out["k"].to_numpy(float)
        if len(out):
            out["p_fwe_peak"] = np.asarray(rft.peak_p_fwe(t, smoothness), float)
            out["p_fdr_peak"] = rft.peak_p_fdr(t, u, smoothness, reference=ref.maxima)
            out["p_fwe_cluster"] = np.asarray(rft.cluster_p_fwe(kvox, u, smoothness), float)
            out["p_unc_cluster"] = np.asarray(rft.cluster_p_unc(kvox, u, smoothness), float)
            out["p_fdr_cluster"] = rft.cluster_p_fdr(kvox, u, smoothness, reference=ref.cluster_sizes)
            out.loc[0, "p_set"] = rft.set_level_p(n_clusters, k, u, smoothness)
        footer = _footer(u, k, smoothness, ref, num, dis)
    return SpmTable(out[SPM_COLUMNS], listed.labels, footer)


def _footer(u: float, k: int, s: rft.Smoothness, ref: ExcursionSet, num: int, dis: float) -> Footer:
    """``TabDat.ftr`` and ``xSPM.uc`` (``spm_getSPM``'s 0.05 critical thresholds)."""
    ec, ek = rft.expected_ec_and_cluster_resels(u, s)
    p_n = float(rft.cluster_p_unc(k, u, s)) if k > 0 else 1.0
    sizes = ref.cluster_sizes.astype(float)
    fwe_c = math.inf
    fdr_c = math.inf
    if sizes.size:
        pk = np.asarray(rft.cluster_p_fwe(sizes, u, s), float)
        ok = pk <= FOOTER_ALPHA
        if ok.any():
            fwe_c = float(sizes[ok].min())
        fdr_c = _bh_critical(np.asarray(rft.cluster_p_unc(sizes, u, s), float), sizes)
    fdr_p = math.inf
    if ref.maxima.size:
        eu = float(rft.expected_ec(u, s))
        ez = np.asarray(rft.expected_ec(ref.maxima, s), float)
        fdr_p = _bh_critical(ez / eu, ref.maxima)
    r = [v for v in s.resels]
    last = max(i for i, v in enumerate(r) if v != 0)
    return Footer(
        height_t=float(u),
        height_p_unc=float(rft.spm_p_unc(u, s.df, s.field)),
        height_p_fwe=float(rft.peak_p_fwe(u, s)),
        extent_k=int(k),
        extent_p_unc=p_n if k > 0 else None,
        extent_p_fwe=float(rft.cluster_p_fwe(k, u, s)) if k > 0 else None,
        expected_voxels_per_cluster=float(ek * s.resel_size_vox),
        expected_clusters=float(ec * p_n),
        fwe_p_height=rft.t_threshold_fwe(FOOTER_ALPHA, s),
        fdr_p_height=fdr_p,
        fwe_c_extent=fwe_c,
        fdr_c_extent=fdr_c,
        df=(float(s.df_effect), float(s.df)),
        fwhm_mm=s.fwhm_mm,
        fwhm_vox=s.fwhm_vox,
        volume_mm3=float(s.search_volume_vox * np.prod(s.voxel_size_mm)),
        volume_voxels=int(s.search_volume_vox),
        volume_resels=float(r[last]),
        voxel_size_mm=s.voxel_size_mm,
        resel_voxels=s.resel_size_vox,
        max_peaks=num,
        min_distance_mm=dis,
        stat=s.stat,
    )


def _bh_critical(p: NDArray[np.float64], values: NDArray[np.float64]) -> float:
    """The value (peak T or cluster size) at SPM's Benjamini-Hochberg cut at 0.05.

    ``spm_uc_peakFDR``/``spm_uc_clusterFDR``: sort p ascending, ``I`` = last index with
    ``p(I) <= I/S q``; the answer is the value of that item (Inf when there is none).
    """
    order = np.argsort(p, kind="stable")
    ps = p[order]
    fi = np.arange(1, ps.size + 1) / ps.size * FOOTER_ALPHA
    hits = np.flatnonzero(ps <= fi)
    if hits.size == 0:
        return math.inf
    return float(values[order][hits[-1]])
