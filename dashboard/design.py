"""The cue-reactivity design: four cells (cue x session) and three contrasts.

Written to ``design.json`` by the sample generator; any results folder may define its
own conditions and contrasts instead.
"""

from __future__ import annotations

from typing import Any

CONDITIONS: tuple[dict[str, str], ...] = (
    {"id": "cocaine_placebo", "cue": "cocaine", "session": "placebo", "label": "Cocaine cue, placebo"},
    {"id": "neutral_placebo", "cue": "neutral", "session": "placebo", "label": "Neutral cue, placebo"},
    {"id": "cocaine_nac", "cue": "cocaine", "session": "nac", "label": "Cocaine cue, N-AC"},
    {"id": "neutral_nac", "cue": "neutral", "session": "nac", "label": "Neutral cue, N-AC"},
)

CONTRASTS: tuple[dict[str, Any], ...] = (
    {
        "id": "placebo",
        "label": "Cocaine > neutral cues, placebo",
        "weights": {"cocaine_placebo": 1, "neutral_placebo": -1},
    },
    {
        "id": "nac",
        "label": "Cocaine > neutral cues, N-AC",
        "weights": {"cocaine_nac": 1, "neutral_nac": -1},
    },
    {
        "id": "interaction",
        "label": "Cue reactivity reduced by N-AC (placebo > N-AC)",
        "weights": {"cocaine_placebo": 1, "neutral_placebo": -1, "cocaine_nac": -1, "neutral_nac": 1},
    },
)


def cue_design(default_model: str = "cells") -> dict[str, Any]:
    """The design.json content of the cue-reactivity study."""
    return {
        "Task": "cue",
        "Conditions": [dict(c) for c in CONDITIONS],
        "Contrasts": [dict(c, weights=dict(c["weights"])) for c in CONTRASTS],
        "DefaultModel": default_model,
    }
