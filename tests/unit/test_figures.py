"""Figure helpers: the colour map copied from nilearn stays nilearn's."""

from __future__ import annotations

import numpy as np

from dashboard import figures


def test_fg001_cold_hot_constant_matches_nilearn():
    from nilearn.plotting import cm

    stops = np.linspace(0, 1, len(figures._COLD_HOT))
    expected = [tuple(int(round(c * 255)) for c in cm.cold_hot(float(x))[:3]) for x in stops]
    assert [tuple(c) for c in figures._COLD_HOT] == expected


def test_fg002_signed_mip_keeps_sign_of_largest_magnitude():
    vol = np.zeros((3, 4, 5))
    vol[1, 2, 3] = -5.0
    vol[2, 2, 3] = 4.0
    vol[0, 0, 0] = np.nan
    mip = figures.signed_mip(vol, axis=0)
    assert mip[2, 3] == -5.0
    assert mip[0, 0] == 0.0
