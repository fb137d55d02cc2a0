"""Plotly figures built from numpy arrays (no matplotlib on the hot path).

Volumes are shown in RAS world orientation: :func:`to_ras` flips stored axes whose
affine direction is negative (e.g. SPM's LAS 2 mm grid), so left is on the left of
every axial and coronal view ("neurological" convention, as nilearn's plots).
Colours follow nilearn's ``cold_hot`` map, symmetric around 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

VIEWS = ("sagittal", "coronal", "axial")  # projection along x, y, z


@lru_cache(maxsize=1)
def cold_hot_colorscale(n: int = 21) -> tuple[tuple[float, str], ...]:
    """nilearn's ``cold_hot`` colormap sampled as a plotly colorscale."""
    from nilearn.plotting import cm  # matplotlib import: once, at first use

    out = []
    for x in np.linspace(0, 1, n):
        r, g, b, _ = cm.cold_hot(float(x))
        out.append((float(x), f"rgb({round(r * 255)},{round(g * 255)},{round(b * 255)})"))
    return tuple(out)


@dataclass(frozen=True)
class RasGrid:
    """World coordinates (mm) of each axis of a volume reoriented to RAS."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    def index_of(self, xyz: tuple[float, float, float]) -> tuple[int, int, int]:
        """Nearest voxel of a world coordinate (clipped to the grid)."""
        return tuple(int(np.clip(np.abs(axis - v).argmin(), 0, axis.size - 1)) for axis, v in zip((self.x, self.y, self.z), xyz))  # type: ignore[return-value]


def to_ras(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, RasGrid]:
    """Flip axes of a volume on an axis-aligned grid so that indices increase to
    Right, Anterior, Superior; also return each axis' world coordinates."""
    rot = affine[:3, :3]
    if not np.allclose(rot, np.diag(np.diag(rot))):
        raise ValueError("oblique or permuted affines are not supported for display; resample to an axis-aligned grid")
    vol = volume
    axes = []
    for d in range(3):
        step, origin = rot[d, d], affine[d, 3]
        coords = origin + step * np.arange(volume.shape[d])
        if step < 0:
            vol = np.flip(vol, axis=d)
            coords = coords[::-1]
        axes.append(coords)
    return np.ascontiguousarray(vol), RasGrid(*axes)


def signed_mip(volume: np.ndarray, axis: int) -> np.ndarray:
    """Maximum-intensity projection of |value| keeping the sign (as nilearn's glass
    brain with ``plot_abs=False``); NaN where the ray holds no finite voxel."""
    filled = np.where(np.isfinite(volume), volume, 0.0)
    idx = np.abs(filled).argmax(axis=axis)
    mip = np.take_along_axis(filled, np.expand_dims(idx, axis), axis=axis).squeeze(axis)
    any_finite = np.isfinite(volume).any(axis=axis)
    return np.where(any_finite, mip, np.nan)


def glass_brain_figure(
    volume: np.ndarray,
    grid: RasGrid,
    *,
    threshold: float,
    vmax: float,
    outline: np.ndarray | None = None,
    title: str | None = None,
    height: int = 320,
) -> go.Figure:
    """Three signed maximum-intensity projections (sagittal, coronal, axial) of a RAS
    volume, values with |T| below ``threshold`` hidden, over a brain outline."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.02, subplot_titles=None)
    spans = {0: (grid.y, grid.z), 1: (grid.x, grid.z), 2: (grid.x, grid.y)}  # projection axis -> (horizontal, vertical)
    for col, axis in enumerate((0, 1, 2), start=1):
        h, v = spans[axis]
        if outline is not None:
            sil = outline.any(axis=axis).astype(float).T
            fig.add_trace(
                go.Contour(x=h, y=v, z=sil, contours=dict(start=0.5, end=0.5, size=1, coloring="none"), line=dict(color="#888", width=1.2), showscale=False, hoverinfo="skip"),
                row=1,
                col=col,
            )
        mip = signed_mip(volume, axis)
        shown = np.where(np.abs(mip) > threshold, mip, np.nan).T  # rows = vertical axis
        fig.add_trace(
            go.Heatmap(
                x=h, y=v, z=shown, zmin=-vmax, zmax=vmax, colorscale=cold_hot_colorscale(),
                showscale=(col == 3), colorbar=dict(title="T", thickness=12, len=0.9),
                hovertemplate="%{x:.0f}, %{y:.0f}: T=%{z:.2f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    fig.update_layout(height=height, margin=dict(l=4, r=4, t=28 if title else 4, b=4), title=title, plot_bgcolor="white", paper_bgcolor="white")
    return fig
