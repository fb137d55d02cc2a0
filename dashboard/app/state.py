"""The view state: one JSON-serialisable dict that says everything the page shows.

Every control writes into it (callback ``update``) and every view is drawn from it,
so a view can be restored from the dict alone (e.g. from a URL later).  Keys:

``contrast``     contrast id (``placebo``, ``nac``, ``interaction``)
``direction``    ``pos`` (the contrast as its weights define it), ``neg`` (reversed) or ``both``
``p_unc``        voxel threshold as a p value (used when ``use_t`` is false), of the kind ``p_kind``
``p_kind``       ``unc`` (uncorrected, ``spm_u``) or ``fwe`` (FWE-corrected by RFT, ``spm_uc``)
``t``            voxel threshold as a T value (used when ``use_t`` is true)
``use_t``        which of the two thresholds applies
``k``            cluster extent threshold (voxels)
``svc``          small-volume correction: AAL region names whose union is the ROI ([] = whole volume)
``model``        ``cells`` (as published), ``subjects`` or ``paired``
``point``        [x, y, z] MNI mm of the cursor
``cluster``      selected cluster: {"direction": "pos"|"neg", "peak": [x, y, z]} or None
``covariate``    participants.tsv column for the regression
``value``        ``eigenvariate`` or ``mean``
``condition``    condition id whose cluster values are regressed
``participants`` included participant ids (study order)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dashboard.results import Study

DIRECTIONS = {"pos": ("pos",), "neg": ("neg",), "both": ("pos", "neg")}
MODELS = ("cells", "subjects", "paired")
VALUES = ("eigenvariate", "mean")
DEFAULT_P = 0.001
DEFAULT_T = 3.5
DEFAULT_K = 10
DEFAULT_COVARIATE = "cocaine_duration_years"
DEFAULT_CONDITION = "cocaine_placebo"
MIN_PARTICIPANTS = 4  # fewest participants a subset may have


def numeric_columns(study: Study) -> list[str]:
    """participants.tsv columns with at least two distinct numeric values."""
    out = []
    for col in study.participants.columns:
        values = pd.to_numeric(study.participants[col], errors="coerce")
        if values.notna().sum() >= 2 and values.nunique() >= 2:
            out.append(col)
    return out


def direction_labels(study: Study, contrast_id: str) -> dict[str, str]:
    """What each direction of a contrast means, from its weights over the study's
    conditions: pos "A > B" (conditions weighted + against those weighted -), neg the
    reverse, both "both"."""
    contrast = study.contrast(contrast_id)
    names = {c.id: c.label for c in study.conditions}
    order = [c.id for c in study.conditions]  # the design's order, not the weights' key order
    weights = sorted(contrast.weights.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    plus = " + ".join(names.get(c, c) for c, w in weights if w > 0)
    minus = " + ".join(names.get(c, c) for c, w in weights if w < 0)
    if not plus or not minus:  # e.g. a one-sample contrast: the effect and its negation
        effect = plus or minus
        sign = 1 if plus else -1
        return {"pos": f"{effect} {'>' if sign > 0 else '<'} 0", "neg": f"{effect} {'<' if sign > 0 else '>'} 0", "both": "both"}
    return {"pos": f"{plus} > {minus}", "neg": f"{minus} > {plus}", "both": "both"}


def direction_options(study: Study) -> dict[str, list[dict[str, str]]]:
    """contrast id -> the direction radio's options (sent once to the page, as data)."""
    out = {}
    for c in study.contrasts:
        labels = direction_labels(study, c.id)
        out[c.id] = [{"label": labels[d], "value": d} for d in ("pos", "neg", "both")]
    return out


def peak_point(study: Study, contrast_id: str) -> list[float]:
    """MNI mm of the global maximum of a contrast's stored group map (where the cursor
    starts), or the origin when there is no stored map."""
    if contrast_id not in study.group_maps:
        return [0.0, 0.0, 0.0]
    values = study.group_map(contrast_id)
    if not np.isfinite(values).any():
        return [0.0, 0.0, 0.0]
    ijk = np.argwhere(study.mask)[int(np.nanargmax(values))]
    return [float(v) for v in (study.affine @ [*ijk, 1.0])[:3]]


def default_state(study: Study) -> dict[str, Any]:
    covariates = numeric_columns(study)
    model = study.design.get("DefaultModel", "cells") if isinstance(study.design, dict) else "cells"
    return {
        "contrast": study.contrasts[0].id,
        "direction": "pos",
        "p_unc": DEFAULT_P,
        "t": DEFAULT_T,
        "use_t": False,
        "p_kind": "unc",
        "k": DEFAULT_K,
        "svc": [],
        "model": model if model in MODELS else "cells",
        "point": peak_point(study, study.contrasts[0].id),
        "cluster": None,
        "covariate": DEFAULT_COVARIATE if DEFAULT_COVARIATE in covariates else (covariates[0] if covariates else None),
        "value": "eigenvariate",
        "condition": DEFAULT_CONDITION if DEFAULT_CONDITION in study.condition_ids else study.condition_ids[0],
        "participants": list(study.participant_ids),
    }


def map_key(state: dict[str, Any]) -> list:
    """What the thresholded T map depends on (a JSON-comparable list)."""
    return [state["contrast"], state["model"], list(state["participants"]), state["direction"], threshold_key(state),
            list(state.get("svc") or [])]


def threshold_key(state: dict[str, Any]) -> list:
    return ["t", float(state["t"])] if state["use_t"] else [state.get("p_kind", "unc"), float(state["p_unc"])]


def table_key(state: dict[str, Any]) -> list:
    """What the cluster table depends on."""
    return [*map_key(state), int(state["k"])]


def regression_key(state: dict[str, Any]) -> list:
    return [*table_key(state), state["cluster"], state["covariate"], state["value"], state["condition"]]
