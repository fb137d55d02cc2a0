"""Plotly figures built from numpy arrays (no matplotlib on the hot path).

Volumes are shown in RAS world orientation: :func:`to_ras` flips stored axes whose
affine direction is negative (e.g. SPM's LAS 2 mm grid), so left is on the left of
every axial and coronal view ("neurological" convention, as nilearn's plots).
Colours follow nilearn's ``cold_hot`` map, symmetric around 0.

Figures are built as plain dicts (no ``go.Figure`` validation, ~ms per figure) and
arrays are sent as plotly.js typed arrays (base64 ``bdata``), so a slice costs a few
tens of kB.  Trace order is fixed (see ``GLASS_TRACES`` and ``SLICE_TRACES``) so the
callbacks can ``Patch`` single traces.

What is coloured (thresholded T, template, brain outline) is drawn as layout images
(PNG data URIs encoded here with numpy + zlib, :func:`png_uri`).  The only traces of the
map views are transparent heatmaps of zeros that catch clicks and pointer positions;
they never change, so a new contrast, participant subset, threshold or slice is a
Patch of layout images and shapes, which plotly.js redraws without replotting (with no
GPU, replotting four figures took most of an update).  The T values under the pointer
come from :func:`hover_values` arrays (int16, T x 100) that the page keeps next to the
figures and reads in the browser (``assets/hover.js``).

Plotly renders a subset of HTML in every text it draws (titles, annotations, axis
titles, legend entries, hover labels: ``<b>``, ``<br>``, ``<a href>``...), so text that
comes from a results folder (contrast and condition labels, column names and units,
participant ids) goes through :func:`plotly_text` first; in hover templates it is
passed as data (``meta``, ``text``), never as template text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from dashboard.stats.lts import RegressionResult

VIEWS = ("sagittal", "coronal", "axial")  # projection along x, y, z


# nilearn's ``cold_hot`` colormap sampled at 21 stops (``nilearn.plotting.cm.cold_hot``,
# symmetric around 0); a constant so that no request imports matplotlib
_COLD_HOT = ((255, 255, 255), (160, 255, 255), (58, 255, 255), (0, 225, 255), (0, 157, 255), (0, 89, 255), (0, 26, 255),
             (0, 0, 213), (0, 0, 144), (0, 0, 76), (13, 0, 0), (76, 0, 0), (144, 0, 0), (213, 0, 0), (255, 26, 0), (255, 94, 0),
             (255, 157, 0), (255, 225, 0), (255, 255, 58), (255, 255, 160), (255, 255, 255))


def plotly_text(text: str) -> str:
    """Plain text as plotly shows it literally: ``&``, ``<`` and ``>`` as entities (which
    plotly decodes for display), so no tag, link or line break in it takes effect, and
    the brace of ``%{`` too (plotly fills ``%{...}`` in titles and annotations from the
    layout's ``meta``: ``%{x}`` would vanish)."""
    return html.escape(str(text), quote=False).replace("%{", "%&#123;")


@lru_cache(maxsize=1)
def cold_hot_colorscale() -> tuple[tuple[float, str], ...]:
    """nilearn's ``cold_hot`` colormap as a plotly colorscale (21 stops)."""
    stops = np.linspace(0, 1, len(_COLD_HOT))
    return tuple((float(x), f"rgb({r},{g},{b})") for x, (r, g, b) in zip(stops, _COLD_HOT, strict=True))


@lru_cache(maxsize=1)
def _cold_hot_lut() -> np.ndarray:
    """256 x 3 uint8: the colorscale linearly interpolated as plotly does."""
    stops = np.linspace(0, 1, len(_COLD_HOT))
    rgb = np.asarray(_COLD_HOT, float)
    x = np.linspace(0, 1, 256)
    return np.stack([np.interp(x, stops, rgb[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def colorize(values: np.ndarray, vmax: float) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 [..., 3], finite mask) of values on the cold_hot scale [-vmax, vmax]."""
    finite = np.isfinite(values)
    frac = (np.where(finite, values, 0.0) + vmax) / (2 * vmax)
    idx = np.clip(np.rint(frac * 255), 0, 255).astype(np.intp)
    return _cold_hot_lut()[idx], finite


def png_uri(pixels: np.ndarray) -> str:
    """A PNG data URI of an (H, W, 3|4) uint8 array, row 0 at the *bottom* (our 2D
    views have the vertical axis increasing with the row index).  zlib only, no
    matplotlib or PIL."""
    import struct
    import zlib

    arr = np.ascontiguousarray(np.asarray(pixels, np.uint8)[::-1])
    h, w, c = arr.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), arr.reshape(h, w * c)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6 if c == 4 else 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def layout_image(uri: str, h: np.ndarray, v: np.ndarray, xref: str = "x", yref: str = "y") -> dict[str, Any]:
    """A layout image covering the voxels of a 2D view (data coordinates)."""
    hr, vr = _axis_range(h), _axis_range(v)
    return {"source": uri, "xref": xref, "yref": yref, "x": hr[0], "y": vr[1], "sizex": hr[1] - hr[0], "sizey": vr[1] - vr[0],
            "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "below"}


def colorbar_trace(vmax: float, xaxis: str = "x", yaxis: str = "y") -> dict[str, Any]:
    """An invisible trace that only draws the T colour bar (the coloured maps are images)."""
    return {"type": "scatter", "x": [None], "y": [None], "mode": "markers", "xaxis": xaxis, "yaxis": yaxis, "hoverinfo": "skip",
            "showlegend": False, "marker": {"color": [0.0], "cmin": -vmax, "cmax": vmax, "colorscale": [list(c) for c in cold_hot_colorscale()],
                                            "showscale": True, "colorbar": _colorbar(), "size": 0.1, "opacity": 0}}


@dataclass(frozen=True)
class RasGrid:
    """World coordinates (mm) of each axis of a volume reoriented to RAS."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    def index_of(self, xyz: Sequence[float]) -> tuple[int, int, int]:
        """Nearest voxel of a world coordinate (x, y, z; clipped to the grid)."""
        i, j, k = (int(np.clip(np.abs(axis - v).argmin(), 0, axis.size - 1)) for axis, v in zip((self.x, self.y, self.z), xyz, strict=True))
        return i, j, k


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
    with np.errstate(invalid="ignore"):
        hi: np.ndarray = np.fmax.reduce(volume, axis=axis)  # NaN-ignoring; NaN only when the whole ray is
        lo: np.ndarray = np.fmin.reduce(volume, axis=axis)
        return np.where(np.abs(lo) > np.abs(hi), lo, hi)



# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------
HOVER_SCALE = 100  # hover values are sent as int16(round(T * 100)): T to 0.01, |T| < 327
HOVER_MISSING = -32768  # outside the mask / no finite voxel on the ray


def hover_values(values2d: np.ndarray, h: np.ndarray, v: np.ndarray) -> dict[str, Any]:
    """A 2D array of T (rows = the view's vertical axis, at coordinates ``v``; columns at
    ``h``, mm, evenly spaced) as the browser's hover lookup: ``{"b": base64 little-endian
    int16 of round(T * 100), "w": columns, "h": rows, "x0", "dx", "y0", "dy"}`` (the
    pointer's mm give the cell: plotly's hover events reach Dash without point indices).
    NaN becomes ``HOVER_MISSING``.  Half the bytes of float32, exact to the 0.01 shown."""
    a = np.asarray(values2d, dtype=np.float64)
    finite = np.isfinite(a)
    q = np.full(a.shape, HOVER_MISSING, dtype="<i2")
    q[finite] = np.clip(np.round(a[finite] * HOVER_SCALE), -32767, 32767)
    step = [float(c[1] - c[0]) if len(c) > 1 else 1.0 for c in (h, v)]
    return {"b": base64.b64encode(np.ascontiguousarray(q).tobytes()).decode("ascii"), "w": int(a.shape[1]), "h": int(a.shape[0]),
            "x0": float(h[0]), "dx": step[0], "y0": float(v[0]), "dy": step[1]}


def decode_hover_values(spec: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`hover_values` (NaN for missing), as the browser decodes it."""
    q = np.frombuffer(base64.b64decode(spec["b"]), dtype="<i2").reshape(spec["h"], spec["w"])
    return np.where(q == HOVER_MISSING, np.nan, q / HOVER_SCALE)


def _capture(h: np.ndarray, v: np.ndarray) -> dict[str, Any]:
    """z of a click/pointer capture heatmap: zeros, one per voxel of the view."""
    return typed(np.zeros((len(v), len(h)), np.uint8), "u1")


def typed(a: np.ndarray, dtype: str = "f4") -> dict[str, Any]:
    """A numpy array as a plotly.js typed-array spec (NaN stays NaN = gap)."""
    arr = np.ascontiguousarray(a, dtype={"f4": np.float32, "u1": np.uint8, "i1": np.int8}[dtype])
    spec: dict[str, Any] = {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}
    if arr.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in arr.shape)
    return spec


def outline_path(mask2d: np.ndarray, h: np.ndarray, v: np.ndarray) -> str:
    """SVG path (data coordinates) along the voxel boundaries of a 2D mask (rows = v,
    columns = h): drawn as one layout shape, which costs plotly almost nothing to
    redraw (a contour trace is recomputed on every update)."""
    m = np.pad(np.asarray(mask2d, bool), 1)
    dh = float(h[1] - h[0]) if h.size > 1 else 1.0
    dv = float(v[1] - v[0]) if v.size > 1 else 1.0
    hh = np.concatenate([[h[0] - dh], h, [h[-1] + dh]])
    vv = np.concatenate([[v[0] - dv], v, [v[-1] + dv]])
    parts = []
    rows, cols = np.nonzero(m[:-1, :] != m[1:, :])  # boundary between row r and r+1
    for r, c in zip(rows, cols, strict=True):
        y = (vv[r] + vv[r + 1]) / 2
        parts.append(f"M{hh[c] - dh / 2:g},{y:g}H{hh[c] + dh / 2:g}")
    rows, cols = np.nonzero(m[:, :-1] != m[:, 1:])  # boundary between column c and c+1
    for r, c in zip(rows, cols, strict=True):
        x = (hh[c] + hh[c + 1]) / 2
        parts.append(f"M{x:g},{vv[r] - dv / 2:g}V{vv[r] + dv / 2:g}")
    return "".join(parts)


def thresholded(volume: np.ndarray, threshold: float, direction: str = "both") -> np.ndarray:
    """Values beyond the threshold in the asked direction(s); NaN elsewhere."""
    with np.errstate(invalid="ignore"):
        if direction == "pos":
            keep = volume > threshold
        elif direction == "neg":
            keep = volume < -threshold
        else:
            keep = np.abs(volume) > threshold
    return np.where(keep, volume, np.nan).astype(np.float32)


# projection / slicing axis -> (horizontal axis, vertical axis) of the 2D view
VIEW_AXES = {0: (1, 2), 1: (0, 2), 2: (0, 1)}
VIEW_NAMES = {0: "Sagittal", 1: "Coronal", 2: "Axial"}
COORD_NAMES = "xyz"
CROSSHAIR = "#39ff14"
CLUSTER_LINE = "#ff2bd6"  # magenta: distinct from cold_hot and the green crosshair


def _coords(grid: RasGrid, axis: int) -> np.ndarray:
    return (grid.x, grid.y, grid.z)[axis]


def _axis_range(c: np.ndarray) -> list[float]:
    step = abs(float(c[1] - c[0])) if c.size > 1 else 1.0
    return [float(c.min()) - step / 2, float(c.max()) + step / 2]


def _colorbar(title: str = "T") -> dict[str, Any]:
    return {"title": {"text": title, "side": "top"}, "thickness": 14, "len": 0.9, "x": 1.0, "xpad": 4, "tickfont": {"size": 13}}


# ---------------------------------------------------------------------------------
# glass brain: signed maximum-intensity projections
# ---------------------------------------------------------------------------------
GLASS_TRACES = 1  # per panel: the click/hover capture heatmap; then one colour-bar trace.  The shown MIP is
# layout image 3 * row + col (then the brain outlines, static images); the point marker is a layout shape:
# a new threshold only redraws images


def glass_brain_figure(
    volumes: Sequence[tuple[np.ndarray, str | None]] | np.ndarray,
    grid: RasGrid,
    *,
    threshold: float,
    vmax: float,
    direction: str = "both",
    outline: np.ndarray | None = None,
    point: tuple[float, float, float] | None = None,
    title: str | None = None,
    height: int | None = None,
    custom_hover: bool = False,
) -> dict[str, Any]:
    """Signed MIPs (sagittal, coronal, axial) of one or more RAS volumes (one row each),
    values below ``threshold`` hidden, over the brain outline, with the cursor point.

    Trace ``3 * row + col`` is a transparent heatmap (click + pointer), the last trace draws
    the colour bar; layout image ``3 * row + col`` is the shown MIP (a PNG,
    :func:`glass_shown`), then come the brain outlines (static images).  Layout shapes: the point
    markers of the first row (shapes 0..2, see :func:`glass_marker`): moving the point is a
    cheap relayout, not a replot.  With ``custom_hover`` the heatmaps are static zeros without a
    plotly hover label (the page shows T from :func:`hover_values` of the unthresholded map);
    otherwise they hold the shown MIP and plotly labels it (the compare view)."""
    if isinstance(volumes, np.ndarray):
        volumes = [(volumes, title)]
    rows = len(volumes)
    widths = [len(_coords(grid, VIEW_AXES[a][0])) for a in (0, 1, 2)]
    gap = 0.015
    total = sum(widths)
    usable = 0.94 - 2 * gap  # room on the right for the colour bar
    x_domains, left = [], 0.0
    for w in widths:
        x_domains.append([left, left + usable * w / total])
        left += usable * w / total + gap
    row_gap = 0.06 if rows > 1 else 0.0
    row_h = (1.0 - row_gap * (rows - 1) - (0.05 * rows if rows > 1 else 0)) / rows
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "height": height or (300 if rows == 1 else 250 * rows),
        "margin": {"l": 4, "r": 4, "t": 8, "b": 4},
        "plot_bgcolor": "white",
        "paper_bgcolor": "white",
        "showlegend": False,
        "hovermode": "closest",
        "uirevision": "glass",
        **({"datarevision": "static"} if custom_hover else {}),
        "annotations": [],
        "font": {"size": 14},
    }
    transparent = [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]]
    outlines: list[dict[str, Any]] = []  # brain outline images: after the map images
    for r, (volume, row_title) in enumerate(volumes):
        top = 1.0 - r * (row_h + row_gap + (0.05 if rows > 1 else 0)) - (0.05 if rows > 1 else 0)
        y_domain = [max(top - row_h, 0.0), top]
        if rows > 1 and row_title:
            layout["annotations"].append({"text": f"<b>{plotly_text(row_title)}</b>", "xref": "paper", "yref": "paper", "x": 0, "y": top + 0.005,
                                          "xanchor": "left", "yanchor": "bottom", "showarrow": False, "font": {"size": 15}})
        for c, axis in enumerate((0, 1, 2)):
            n = 3 * r + c + 1
            xa, ya = f"x{n if n > 1 else ''}", f"y{n if n > 1 else ''}"
            ha, va = VIEW_AXES[axis]
            h, v = _coords(grid, ha), _coords(grid, va)
            trace = {"type": "heatmap", "x": h.tolist(), "y": v.tolist(), "colorscale": transparent, "showscale": False, "xaxis": xa,
                     "yaxis": ya}
            if custom_hover:
                trace.update(z=_capture(h, v), hoverinfo="none")
            else:
                trace.update(z=typed(np.round(signed_mip(volume, axis).T, 2)), hoverongaps=False,  # nothing above threshold: no "NaN"
                             hovertemplate=f"{COORD_NAMES[ha]}=%{{x:.0f}} {COORD_NAMES[va]}=%{{y:.0f}}<br>max |T| along "
                                           f"{COORD_NAMES[axis]}: %{{z:.2f}}<extra></extra>")
            data.append(trace)
            if outline is not None:  # a static image above the map (a path shape costs plotly ~10 ms per redraw)
                outlines.append(dict(layout_image(_outline_cache(outline, axis, h, v), h, v, xa, ya), layer="above"))
            layout.setdefault("images", []).append(layout_image(glass_shown(volume, axis, threshold, direction, vmax), h, v, xa, ya))
            if r == 0:
                layout.setdefault("shapes", []).insert(c, glass_marker(point, axis, n))
            layout[f"xaxis{n if n > 1 else ''}"] = {"domain": x_domains[c], "range": _axis_range(h), "visible": False, "constrain": "domain"}
            layout[f"yaxis{n if n > 1 else ''}"] = {"domain": y_domain, "range": _axis_range(v), "visible": False, "scaleanchor": xa,
                                                    "constrain": "domain"}
    layout.setdefault("images", []).extend(outlines)
    data.append(colorbar_trace(vmax, "x3", "y3"))
    return {"data": data, "layout": layout}


def mip_outlines(mask: np.ndarray, grid: RasGrid, rows: int, colour: str) -> list[dict[str, Any]]:
    """Path shapes outlining a RAS boolean volume's projections on every panel of a
    glass-brain figure of ``rows`` rows (a cluster shown on each contrast's glass brain)."""
    shapes = []
    for axis in (0, 1, 2):
        ha, va = VIEW_AXES[axis]
        projected: np.ndarray = np.asarray(np.asarray(mask, bool).any(axis=axis)).T
        path = outline_path(projected, _coords(grid, ha), _coords(grid, va))
        if not path:
            continue
        for r in range(rows):
            n = 3 * r + axis + 1
            suffix = str(n) if n > 1 else ""
            shapes.append({"type": "path", "path": path, "xref": f"x{suffix}", "yref": f"y{suffix}", "line": {"color": colour, "width": 2},
                           "layer": "above"})
    return shapes


_OUTLINES: dict[tuple[int, tuple[int, ...], int], tuple[np.ndarray, str]] = {}
OUTLINE_SCALE = 3  # image pixels per voxel: ~ screen pixels per voxel of a glass-brain panel (1 px lines)


def outline_image(mask2d: np.ndarray, scale: int = OUTLINE_SCALE) -> str:
    """PNG (transparent, grey 1-pixel boundary lines) of a 2D mask's outline, rows = the
    vertical axis, at ``scale`` pixels per voxel."""
    m = np.kron(np.asarray(mask2d, bool), np.ones((scale, scale), bool))
    p = np.pad(m, 1)
    edge = m & ~(p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])
    rgba = np.zeros((*m.shape, 4), np.uint8)
    rgba[edge] = (138, 138, 138, 255)
    return png_uri(rgba)


def _outline_cache(outline: np.ndarray, axis: int, h: np.ndarray, v: np.ndarray) -> str:
    key = (id(outline), outline.shape, axis)
    hit = _OUTLINES.get(key)
    if hit is None or hit[0] is not outline:
        hit = _OUTLINES[key] = (outline, outline_image(np.asarray(outline.any(axis=axis)).T))
    return hit[1]


def glass_hover(volume: np.ndarray, axis: int, grid: RasGrid) -> dict[str, Any]:
    """Hover values of a glass-brain panel: the signed MIP of ``volume`` (the
    unthresholded T map, so that the pointer reads T anywhere in the brain)."""
    ha, va = VIEW_AXES[axis]
    return hover_values(signed_mip(volume, axis).T, _coords(grid, ha), _coords(grid, va))


def glass_shown(volume: np.ndarray, axis: int, threshold: float, direction: str = "both", vmax: float = 1.0) -> str:
    """Coloured layer of a glass-brain panel: the signed MIP of suprathreshold values as
    a PNG data URI (cold_hot on [-vmax, vmax], transparent elsewhere)."""
    mip = signed_mip(thresholded(volume, threshold, direction), axis).T
    rgb, finite = colorize(mip, vmax)
    return png_uri(np.concatenate([rgb, (finite * 255).astype(np.uint8)[..., None]], axis=-1))


def glass_marker(point: Sequence[float] | None, axis: int, n: int | None = None, radius: float = 5.0) -> dict[str, Any]:
    """Circle shape around the point in the glass-brain panel of ``axis`` (axes n)."""
    n = axis + 1 if n is None else n
    suffix = str(n) if n > 1 else ""
    ha, va = VIEW_AXES[axis]
    visible = point is not None
    x, y = (point[ha], point[va]) if point is not None else (0.0, 0.0)
    return {"type": "circle", "xref": f"x{suffix}", "yref": f"y{suffix}", "x0": x - radius, "x1": x + radius, "y0": y - radius,
            "y1": y + radius, "line": {"color": "#1b9e3e", "width": 2.5}, "visible": visible, "layer": "above"}


def glass_click_to_point(click: dict[str, Any], current: tuple[float, float, float], volume: np.ndarray | None, grid: RasGrid) -> tuple[float, float, float]:
    """The point a click on a glass-brain panel means: the clicked two coordinates and,
    along the projection ray, the voxel of max |T| of ``volume`` (shown values) when it
    holds one, else the current coordinate."""
    pt = click["points"][0]
    axis = (int(pt["curveNumber"]) // GLASS_TRACES) % 3
    ha, va = VIEW_AXES[axis]
    new = list(current)
    new[ha], new[va] = float(pt["x"]), float(pt["y"])
    if volume is not None:
        idx = grid.index_of(new)
        sl: list[Any] = [idx[0], idx[1], idx[2]]
        sl[axis] = slice(None)
        ray = volume[tuple(sl)]
        if np.isfinite(ray).any():
            new[axis] = float(_coords(grid, axis)[int(np.nanargmax(np.abs(ray)))])
    return new[0], new[1], new[2]


# ---------------------------------------------------------------------------------
# orthogonal slices
# ---------------------------------------------------------------------------------
SLICE_TRACES = ("capture",)  # + a colour-bar trace on the axial slice; template + thresholded T = layout image 0 (PNG),
# the selected cluster's outline and the crosshair are path shapes


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """2D slice through ``index`` along ``axis``; rows = the view's vertical axis."""
    return np.asarray(np.take(volume, index, axis=axis)).T


def slice_image(axis: int, index: int, *, template: np.ndarray, shown: np.ndarray, vmax: float) -> str:
    """PNG data URI of a slice: the template in grey (0-300 -> black-white, as the former
    heatmap) under the thresholded T (cold_hot on [-vmax, vmax])."""
    grey = np.clip(take_slice(template, axis, index).astype(np.float32) * (255.0 / 300.0), 0, 255).round().astype(np.uint8)
    rgb, finite = colorize(take_slice(shown, axis, index), vmax)
    out = np.where(finite[..., None], rgb, grey[..., None])
    return png_uri(out)


def slice_hover(axis: int, index: int, volume: np.ndarray, grid: RasGrid) -> dict[str, Any]:
    """Hover values of a slice (T) and the slice's own MNI coordinate ``c``."""
    ha, va = VIEW_AXES[axis]
    return {**hover_values(take_slice(volume, axis, index), _coords(grid, ha), _coords(grid, va)), "c": float(_coords(grid, axis)[index])}


def slice_shapes(axis: int, point: tuple[float, float, float], grid: RasGrid, cluster: np.ndarray | None) -> list[dict[str, Any]]:
    """Crosshair lines, plus the outline of the selected cluster in this slice."""
    shapes = crosshair(axis, point, grid)
    if cluster is not None:
        ha, va = VIEW_AXES[axis]
        path = outline_path(take_slice(cluster, axis, grid.index_of(point)[axis]), _coords(grid, ha), _coords(grid, va))
        if path:
            shapes.append({"type": "path", "path": path, "xref": "x", "yref": "y", "line": {"color": CLUSTER_LINE, "width": 2.5},
                           "name": "selected cluster"})
    return shapes


def crosshair(axis: int, point: tuple[float, float, float], grid: RasGrid) -> list[dict[str, Any]]:
    ha, va = VIEW_AXES[axis]
    hr, vr = _axis_range(_coords(grid, ha)), _axis_range(_coords(grid, va))
    line = {"color": CROSSHAIR, "width": 1, "dash": "dot"}
    return [
        {"type": "line", "xref": "x", "yref": "y", "x0": point[ha], "x1": point[ha], "y0": vr[0], "y1": vr[1], "line": line},
        {"type": "line", "xref": "x", "yref": "y", "x0": hr[0], "x1": hr[1], "y0": point[va], "y1": point[va], "line": line},
    ]


def slice_title(axis: int, coord: float) -> str:
    return f"{VIEW_NAMES[axis]}  {COORD_NAMES[axis]} = {coord:g}"


def slice_figure(axis: int, image: str, grid: RasGrid, point: tuple[float, float, float], *, vmax: float,
                 showscale: bool = False, height: int = 360, cluster: np.ndarray | None = None) -> dict[str, Any]:
    """One orthogonal slice: layout image 0 = ``image`` (:func:`slice_image`: template in
    grey under the thresholded T), shapes = crosshair and selected cluster outline, trace 0
    = a static transparent heatmap that catches clicks and the pointer (no plotly hover
    label: the page shows T from :func:`slice_hover`), + a colour-bar trace when
    ``showscale``.  Moving through slices changes only layout parts: no replot."""
    ha, va = VIEW_AXES[axis]
    h, v = _coords(grid, ha), _coords(grid, va)
    data = [
        {"type": "heatmap", "x": h.tolist(), "y": v.tolist(), "z": _capture(h, v), "colorscale": [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
         "showscale": False, "hoverinfo": "none"},
    ]
    if showscale:
        data.append(colorbar_trace(vmax))
    layout = {
        "height": height,
        "margin": {"l": 2, "r": 2, "t": 30, "b": 2},
        "plot_bgcolor": "black",
        "paper_bgcolor": "white",
        "hovermode": "closest",
        "uirevision": f"slice-{axis}",
        "datarevision": "static",
        "xaxis": {"range": _axis_range(h), "visible": False, "constrain": "domain"},
        "yaxis": {"range": _axis_range(v), "visible": False, "scaleanchor": "x", "constrain": "domain"},
        "shapes": slice_shapes(axis, point, grid, cluster),
        "images": [layout_image(image, h, v)],
        "annotations": slice_annotations(axis, point[axis]),
        "font": {"size": 14},
    }
    return {"data": data, "layout": layout}


def slice_annotations(axis: int, coord: float) -> list[dict[str, Any]]:
    """A slice's fixed annotations: its title (annotation 0, patched as the slice moves)
    and the orientation letters; peak markers come after them (:func:`peak_markers`)."""
    letters = {0: ("P", "A"), 1: ("L", "R"), 2: ("L", "R")}[axis]
    font = {"color": "white", "size": 14}
    return [
        {"text": slice_title(axis, coord), "xref": "paper", "yref": "paper", "x": 0, "y": 1.0, "xanchor": "left",
         "yanchor": "bottom", "showarrow": False, "font": {"size": 15}},
        {"text": letters[0], "xref": "x domain", "yref": "y domain", "x": 0.02, "y": 0.5, "showarrow": False, "font": font},
        {"text": letters[1], "xref": "x domain", "yref": "y domain", "x": 0.98, "y": 0.5, "showarrow": False, "font": font},
    ]


@dataclass(frozen=True)
class PeakMarker:
    """A peak of a table (e.g. of other studies) to mark on the maps: MNI mm and the
    lines its hover label shows (plain text)."""

    xyz: tuple[float, float, float]
    lines: tuple[str, ...]


MARKER_COLOUR = "#e7298a"  # magenta: apart from the cold-hot map, the green cursor and the cyan cluster outline
MARKER_SLAB_MM = 5.0  # a slice shows the peaks within this distance of its plane, fainter with distance


def peak_markers(markers: Sequence[PeakMarker], axis: int, *, plane: float | None = None, axes: int | None = None) -> list[dict[str, Any]]:
    """Annotations marking peaks in the view of ``axis``: every peak, projected (glass
    brain panel, axes number ``axes``), or those within :data:`MARKER_SLAB_MM` of a slice's
    ``plane``.  An annotation with ``hovertext`` carries its own hover label (the map's
    traces stay untouched, so nothing is replotted)."""
    ha, va = VIEW_AXES[axis]
    suffix = "" if not axes or axes == 1 else str(axes)
    out = []
    for m in markers:
        opacity = 1.0
        if plane is not None:
            d = abs(m.xyz[axis] - plane)
            if d > MARKER_SLAB_MM:
                continue
            opacity = 1.0 - 0.6 * d / MARKER_SLAB_MM
        out.append({"x": m.xyz[ha], "y": m.xyz[va], "xref": f"x{suffix}", "yref": f"y{suffix}", "text": "◆", "showarrow": False,
                    "font": {"color": MARKER_COLOUR, "size": 14}, "opacity": round(opacity, 2),
                    "hovertext": "<br>".join(plotly_text(line) for line in m.lines),
                    "hoverlabel": {"bgcolor": "white", "bordercolor": MARKER_COLOUR, "font": {"color": "#222", "size": 13}}})
    return out


def slice_click_to_point(axis: int, click: dict[str, Any], current: tuple[float, float, float]) -> tuple[float, float, float]:
    pt = click["points"][0]
    ha, va = VIEW_AXES[axis]
    new = list(current)
    new[ha], new[va] = float(pt["x"]), float(pt["y"])
    return new[0], new[1], new[2]


# ---------------------------------------------------------------------------------
# regression scatter
# ---------------------------------------------------------------------------------
def regression_figure(frame: pd.DataFrame, lts: RegressionResult, ols: RegressionResult, *, x_label: str, y_label: str, highlight: str | None = None, height: int = 440) -> dict[str, Any]:
    """Per-participant values against a covariate: LTS-kept points filled, LTS
    down-weighted points as red x; LTS and OLS lines."""
    kept = frame[frame["weight"] > 0.5]
    dropped = frame[~(frame["weight"] > 0.5)]
    # the labels and ids are the study's: data of the hover template, never template text
    hover = "%{text}<br>%{meta[0]} = %{x:.3g}<br>%{meta[1]} = %{y:.3g}<extra></extra>"
    meta = [plotly_text(x_label), plotly_text(y_label)]

    def ids(part: pd.DataFrame) -> list[str]:
        return [plotly_text(p) for p in part["participant_id"]]

    xs = frame["covariate"].to_numpy(float)
    finite = xs[np.isfinite(xs)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.04 * (hi - lo or 1.0)
    line_x = [lo - pad, hi + pad]
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "markers", "name": "kept by LTS", "x": kept["covariate"].tolist(), "y": kept["value"].tolist(),
         "customdata": kept["participant_id"].tolist(), "text": ids(kept), "meta": meta, "hovertemplate": hover,
         "marker": {"size": 11, "color": "#1f77b4", "line": {"color": "white", "width": 1}}},
        {"type": "scatter", "mode": "markers", "name": "down-weighted by LTS", "x": dropped["covariate"].tolist(), "y": dropped["value"].tolist(),
         "customdata": dropped["participant_id"].tolist(), "text": ids(dropped), "meta": meta, "hovertemplate": hover,
         "marker": {"size": 13, "color": "#d62728", "symbol": "x-open", "line": {"width": 2}}},
        {"type": "scatter", "mode": "lines", "name": f"LTS: y = {lts.intercept:.2f} + {lts.slope:.2f}x", "x": line_x,
         "y": [lts.intercept + lts.slope * v for v in line_x], "line": {"color": "#1f77b4", "width": 3}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "lines", "name": f"OLS: y = {ols.intercept:.2f} + {ols.slope:.2f}x", "x": line_x,
         "y": [ols.intercept + ols.slope * v for v in line_x], "line": {"color": "#888", "width": 2, "dash": "dash"}, "hoverinfo": "skip"},
    ]
    if highlight is not None and highlight in set(frame["participant_id"]):
        row = frame[frame["participant_id"] == highlight].iloc[0]
        data.append({"type": "scatter", "mode": "markers", "name": plotly_text(highlight), "x": [row["covariate"]], "y": [row["value"]],
                     "hoverinfo": "skip", "showlegend": False,
                     "marker": {"size": 22, "color": "rgba(0,0,0,0)", "line": {"color": "#ff9900", "width": 3}}})
    layout = {
        "height": height,
        "margin": {"l": 64, "r": 10, "t": 10, "b": 100},
        "xaxis": {"title": {"text": plotly_text(x_label)}, "zeroline": False, "gridcolor": "#eee"},
        "yaxis": {"title": {"text": plotly_text(y_label)}, "zeroline": True, "zerolinecolor": "#ccc", "gridcolor": "#eee"},
        "legend": {"orientation": "h", "x": 0, "y": -0.2, "yanchor": "top", "font": {"size": 13}},
        "plot_bgcolor": "white",
        "paper_bgcolor": "white",
        "hovermode": "closest",
        "font": {"size": 14},
    }
    return {"data": data, "layout": layout}


def empty_figure(message: str, height: int = 300) -> dict[str, Any]:
    """A blank figure saying ``message`` (plain text: it may quote the study's names)."""
    return {"data": [], "layout": {"height": height, "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                   "plot_bgcolor": "white", "paper_bgcolor": "white", "margin": {"l": 4, "r": 4, "t": 4, "b": 4},
                                   "annotations": [{"text": plotly_text(message), "showarrow": False, "xref": "paper", "yref": "paper",
                                                    "x": 0.5, "y": 0.5, "font": {"size": 15, "color": "#666"}}]}}


# ---------------------------------------------------------------------------------
# influence of single participants on the regression
# ---------------------------------------------------------------------------------
def influence_figure(participants: Sequence[str], delta_ols: np.ndarray, delta_lts: np.ndarray, dfbetas: np.ndarray, cooks: np.ndarray,
                     *, highlight: str | None = None, height: int | None = None) -> dict[str, Any]:
    """How the slope changes when each participant is left out (jackknife): bars for OLS
    (red where |DFBETAS| > 2/sqrt(n), the usual cut-off), diamonds for LTS refitted
    without them; one row per participant, in the given order (top to bottom)."""
    n = len(participants)
    cutoff = 2 / np.sqrt(max(n, 1))
    names = [plotly_text(p) for p in participants]
    big = np.abs(np.nan_to_num(dfbetas)) > cutoff
    colours = ["#d62728" if b else "#7f9fbf" for b in big]
    line = [("#ff9900" if p == highlight else "rgba(0,0,0,0)") for p in participants]
    hover = "%{y}<br>slope without: %{x:+.3g} (OLS)<br>DFBETAS %{customdata[0]:.2f} · Cook's D %{customdata[1]:.3f}<extra></extra>"
    custom = np.c_[np.round(np.nan_to_num(dfbetas), 4), np.round(np.nan_to_num(cooks), 4)].tolist()
    data: list[dict[str, Any]] = [
        {"type": "bar", "orientation": "h", "name": "OLS", "y": names, "x": np.round(delta_ols, 6).tolist(), "customdata": custom,
         "marker": {"color": colours, "line": {"color": line, "width": 2}}, "hovertemplate": hover},
        {"type": "scatter", "mode": "markers", "name": "LTS refit", "y": names, "x": np.round(delta_lts, 6).tolist(),
         "marker": {"symbol": "diamond", "size": 8, "color": "#1f77b4"},
         "hovertemplate": "%{y}<br>slope without: %{x:+.3g} (LTS refit)<extra></extra>"},
    ]
    layout = {
        "height": height or max(220, 18 * n + 90),
        "margin": {"l": 70, "r": 8, "t": 6, "b": 70},
        "xaxis": {"title": {"text": "change of slope when left out"}, "zeroline": True, "zerolinecolor": "#888", "gridcolor": "#eee"},
        "yaxis": {"autorange": "reversed", "tickfont": {"size": 11}, "type": "category"},
        "legend": {"orientation": "h", "x": 0, "y": -0.16, "yanchor": "top", "font": {"size": 12}},
        "plot_bgcolor": "white", "paper_bgcolor": "white", "bargap": 0.25, "font": {"size": 12}, "hovermode": "closest",
    }
    return {"data": data, "layout": layout}


def survival_figure(rows: Sequence[dict[str, Any]], full: dict[str, Any], *, stat: str = "T", height: int = 300) -> dict[str, Any]:
    """Strip plots of leave-one-out refits of a cluster: the refit's peak statistic and
    its cluster size k per left-out participant (blue: the cluster survives; red x: lost,
    drawn at the highest value left inside the original cluster, k 0), with the full
    subset's values and the height threshold as lines."""
    ids = [plotly_text(str(r["participant_id"])) for r in rows]
    jitter = [((i * 0.618) % 1.0 - 0.5) * 0.6 for i in range(len(rows))]  # deterministic spread along the strip

    def strip(values: list[float | None], xaxis: str, yaxis: str, what: str) -> list[dict[str, Any]]:
        out = []
        for survives, name, colour, symbol in ((True, "survives", "#1f77b4", "circle"), (False, "lost", "#d62728", "x")):
            pick = [i for i, r in enumerate(rows) if bool(r["survives"]) == survives]
            out.append({"type": "scatter", "mode": "markers", "name": name, "x": [values[i] for i in pick], "y": [jitter[i] for i in pick],
                        "text": [ids[i] for i in pick], "xaxis": xaxis, "yaxis": yaxis, "showlegend": xaxis == "x",
                        "marker": {"size": 10, "color": colour, "symbol": symbol, "line": {"color": "white", "width": 1}},
                        "hovertemplate": f"without %{{text}}<br>{what} %{{x}}<extra></extra>"})
        return out

    peak = [r["peak_t"] if r["survives"] else r.get("max_t_in_original") for r in rows]
    data = strip([None if v is None else round(float(v), 3) for v in peak], "x", "y", f"peak {stat}") + \
        strip([int(r["k"]) for r in rows], "x2", "y2", "k")
    shapes = []
    for xref, value, colour, dash in (("x", full.get("peak_t"), "#444", "solid"), ("x", full.get("height"), "#d62728", "dot"),
                                      ("x2", full.get("k"), "#444", "solid")):
        if value is not None and np.isfinite(value):
            shapes.append({"type": "line", "xref": xref, "yref": "paper", "x0": value, "x1": value, "y0": 0, "y1": 1,
                           "line": {"color": colour, "width": 1.5, "dash": dash}})
    layout = {
        "height": height, "margin": {"l": 10, "r": 10, "t": 28, "b": 48}, "plot_bgcolor": "white", "paper_bgcolor": "white",
        "xaxis": {"domain": [0, 0.47], "title": {"text": f"peak {stat} without the participant (solid: everyone; dotted: height)"},
                  "gridcolor": "#eee"},
        "xaxis2": {"domain": [0.53, 1], "title": {"text": "cluster size k (voxels)"}, "gridcolor": "#eee", "rangemode": "tozero",
                   "zeroline": False},
        "yaxis": {"visible": False, "range": [-0.6, 0.6]}, "yaxis2": {"visible": False, "range": [-0.6, 0.6], "anchor": "x2"},
        "shapes": shapes, "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, "font": {"size": 13},
        "hovermode": "closest",
    }
    return {"data": data, "layout": layout}


def permutation_null_figure(panels: Sequence[tuple[str, np.ndarray, Sequence[tuple[float, str]]]], *, height: int = 260) -> dict[str, Any]:
    """Histograms of permutation nulls side by side, one per ``(title, null, observed)``
    (observed: ``(value, label)`` pairs drawn as vertical lines, e.g. each listed cluster),
    with the 95th percentile (the p-FWE 0.05 critical value) dotted."""
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"height": height, "margin": {"l": 40, "r": 10, "t": 30, "b": 40}, "plot_bgcolor": "white",
                              "paper_bgcolor": "white", "showlegend": False, "font": {"size": 12}, "bargap": 0.02,
                              "hovermode": "closest", "annotations": []}
    n = max(len(panels), 1)
    gap = 0.06
    width = (1 - gap * (n - 1)) / n
    for i, (title, null, observed) in enumerate(panels):
        suffix = "" if i == 0 else str(i + 1)
        xa, ya = f"x{suffix}", f"y{suffix}"
        left = i * (width + gap)
        values = np.asarray(null, np.float64)
        data.append({"type": "histogram", "x": values.round(4).tolist(), "xaxis": xa, "yaxis": ya, "nbinsx": 40,
                     "marker": {"color": "#9ab"}, "hovertemplate": "%{x}: %{y} flips<extra></extra>"})
        crit = float(np.quantile(values, 0.95)) if values.size else None
        lines = [(crit, "#444", "dot", "95th percentile (p-FWE 0.05)")] if crit is not None else []
        lines += [(float(v), "#d62728", "solid", str(label)) for v, label in observed if np.isfinite(v)]
        for value, colour, dash, label in lines:
            shapes.append({"type": "line", "xref": xa, "yref": f"{ya} domain", "x0": value, "x1": value, "y0": 0, "y1": 1,
                           "line": {"color": colour, "width": 1.5, "dash": dash}})
            data.append({"type": "scatter", "mode": "markers", "x": [value], "y": [0], "xaxis": xa, "yaxis": ya, "text": [plotly_text(label)],
                         "marker": {"size": 8, "color": colour, "symbol": "triangle-up"}, "hovertemplate": "%{text}: %{x:.4g}<extra></extra>"})
        layout[f"xaxis{suffix}"] = {"domain": [left, left + width], "title": {"text": plotly_text(title)}, "gridcolor": "#eee", "anchor": ya}
        layout[f"yaxis{suffix}"] = {"gridcolor": "#eee", "anchor": xa, "rangemode": "tozero"}
    layout["shapes"] = shapes
    return {"data": data, "layout": layout}
