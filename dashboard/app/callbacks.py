"""Callbacks: translate UI state into core calls and results into figures.

Graph: contrast dropdown -> glass brain + status line.
"""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output
from flask_caching import Cache

from dashboard import figures
from dashboard.app import ids
from dashboard.results import Study
from dashboard.stats.thresholds import t_threshold

DEFAULT_P_UNC = 0.001


def register(app: dash.Dash, study: Study, cache: Cache) -> None:
    outline = figures.to_ras(study.mask, study.affine)[0]

    @app.callback(Output(ids.GLASS_BRAIN, "figure"), Output(ids.STATUS, "children"), Input(ids.CONTRAST, "value"))
    def show_contrast(contrast: str):
        gm = study.group_maps[contrast]
        vol, grid = figures.to_ras(study.unmask(study.group_map(contrast)), study.affine)
        vmax = float(np.nanmax(np.abs(vol)))
        u = t_threshold(DEFAULT_P_UNC, gm.df)
        fig = figures.glass_brain_figure(vol, grid, threshold=u, vmax=vmax, outline=outline)
        return fig, f"T map, df {gm.df:g}; shown |T| > {u:.2f} (p < {DEFAULT_P_UNC:g} uncorrected)"
