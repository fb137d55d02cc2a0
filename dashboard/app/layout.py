"""Page layout: header (study, synthetic-data banner), controls and views."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.app import ids
from dashboard.results import Study


def synthetic_banner(study: Study) -> html.Div | None:
    """The notice every page of a synthetic study carries."""
    if not study.synthetic:
        return None
    return dbc.Alert(
        [
            html.Strong("Synthetic sample data. "),
            "Generated to imitate the published summary statistics of the N-AC cue-reactivity "
            "study; it is not participant data.",
        ],
        id=ids.SYNTHETIC_BANNER,
        color="warning",
        className="py-1 px-3 mb-2",
    )


def build_layout(study: Study) -> html.Div:
    contrast_options = [{"label": c.label, "value": c.id} for c in study.contrasts]
    return dbc.Container(
        [
            html.H1(study.name, id=ids.STUDY_TITLE, className="h4 mt-2"),
            synthetic_banner(study),
            dbc.Row(
                dbc.Col(
                    [
                        dbc.Label("Contrast", html_for=ids.CONTRAST),
                        dcc.Dropdown(id=ids.CONTRAST, options=contrast_options, value=contrast_options[0]["value"], clearable=False),
                    ],
                    md=4,
                )
            ),
            html.Div(id=ids.STATUS, className="text-muted small mt-2"),
            dcc.Graph(id=ids.GLASS_BRAIN, config={"displaylogo": False}),
        ],
        fluid=True,
    )
