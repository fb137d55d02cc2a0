"""Figure helpers: the colour map copied from nilearn stays nilearn's."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import figures


def test_fg001_cold_hot_constant_matches_nilearn():
    from nilearn.plotting import cm

    stops = np.linspace(0, 1, len(figures._COLD_HOT))
    expected = [tuple(round(c * 255) for c in cm.cold_hot(float(x))[:3]) for x in stops]
    assert [tuple(c) for c in figures._COLD_HOT] == expected


def test_fg002_signed_mip_keeps_sign_of_largest_magnitude():
    vol = np.zeros((3, 4, 5))
    vol[1, 2, 3] = -5.0
    vol[2, 2, 3] = 4.0
    vol[0, 0, 0] = np.nan
    mip = figures.signed_mip(vol, axis=0)
    assert mip[2, 3] == -5.0
    assert mip[0, 0] == 0.0


def test_fg003_hover_values_round_trip_to_the_shown_precision():
    """The browser's hover lookup: int16 of T x 100 (NaN = missing) with the mm grid
    that maps the pointer to a cell, as assets/hover.js reads it."""
    rng = np.random.default_rng(0)
    values = rng.normal(0, 4, size=(5, 7))
    values[1, 2] = np.nan
    values[0, 0] = 400.0  # beyond int16 x 100: clipped, not wrapped
    h, v = np.arange(-6, 8, 2.0), np.arange(-10, 0, 2.0)
    spec = figures.hover_values(values, h, v)
    back = figures.decode_hover_values(spec)
    assert np.isnan(back[1, 2]) and back[0, 0] == pytest.approx(327.67)
    ok = np.isfinite(values) & (np.abs(values) < 300)
    assert np.max(np.abs(back[ok] - values[ok])) <= 0.005 + 1e-12
    # the cell under a pointer at (x, y) mm, as the browser computes it
    col, row = round((h[3] - spec["x0"]) / spec["dx"]), round((v[4] - spec["y0"]) / spec["dy"])
    assert (row, col) == (4, 3) and (spec["w"], spec["h"]) == (7, 5)
