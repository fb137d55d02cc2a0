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

The page sends the state back with every request; :func:`checked_state` checks it
against the study (a crafted request can hold anything), and :func:`input_problem` /
:func:`finite_number` are the rules for single typed values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
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
MIN_PARTICIPANTS = 4  # fewest participants a subset may have
P_KINDS = ("unc", "fwe")
SIGNS = ("pos", "neg")  # the directions a selected cluster can have
MAX_K = 10_000_000  # cluster extent beyond any brain grid (a 1 mm MNI grid has 7.2 M voxels); also assets/validate.js


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
    gm = study.group_maps.get(contrast_id)
    if gm is not None and gm.statistic == "F":
        return {"pos": f"F: {contrast.label}", "neg": "(an F map has no negative direction)", "both": "F only"}
    if not study.conditions:  # weights over a package's design columns, or none: the contrast's own name says it
        return {"pos": contrast.label, "neg": f"{contrast.label}, negated", "both": "both"}
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


def condition_options(study: Study) -> list[tuple[str, str]]:
    """(id, label) of the conditions whose cluster values can be regressed: the study's
    conditions, or a package design's condition columns (SPM: cells, groups, the mean)."""
    if study.design_rows is not None:
        return [(c, c) for c in study.design_rows.conditions]
    return [(c.id, c.label) for c in study.conditions]


def default_state(study: Study) -> dict[str, Any]:
    """The first view: the folder's ``ViewDefaults`` (design.json) where it gives them, else
    its first contrast, first condition and first numeric participant column."""
    covariates = numeric_columns(study)
    model = study.design.get("DefaultModel", "cells") if isinstance(study.design, dict) else "cells"
    defaults = study.view_defaults
    conditions = [c for c, _ in condition_options(study)]
    contrast = str(defaults["Contrast"]) if defaults.get("Contrast") in [c.id for c in study.contrasts] else study.contrasts[0].id
    return {
        "contrast": contrast,
        "direction": "pos",
        "p_unc": DEFAULT_P,
        "t": DEFAULT_T,
        "use_t": False,
        "p_kind": "unc",
        "k": DEFAULT_K,
        "svc": [],
        "model": model if model in MODELS else "cells",
        "point": peak_point(study, contrast),
        "cluster": None,
        "covariate": defaults.get("Covariate") if defaults.get("Covariate") in covariates else next(iter(covariates), None),
        "value": "eigenvariate",
        "condition": defaults.get("Condition") if defaults.get("Condition") in conditions else next(iter(conditions), None),
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


# -- checks of values sent by the page ---------------------------------------------------
@dataclass(frozen=True)
class Choices:
    """What a view state may hold for one study (built once per engine: every request is checked)."""

    contrasts: tuple[str, ...]
    conditions: tuple[str, ...]
    covariates: tuple[str, ...]
    participants: tuple[str, ...]
    subsets: bool  # participant (or design) images: subsets can be fitted

    @classmethod
    def of(cls, study: Study) -> Choices:
        return cls(tuple(c.id for c in study.contrasts), tuple(c for c, _ in condition_options(study)), tuple(numeric_columns(study)),
                   tuple(study.participant_ids), study.can_refit)


def finite_number(value: Any) -> float:
    """A finite float from a JSON number (or a numeric string, as typed); ValueError
    otherwise (booleans, NaN, infinities, integers too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number")
    try:
        v = float(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError("not a number") from exc
    if not math.isfinite(v):
        raise ValueError("not a finite number")
    return v


def input_problem(kind: str, value: Any) -> str:
    """Why a typed threshold (``p_unc``, ``t``, ``k``) cannot be used ("" when it can);
    the page shows the same rules in the browser (assets/validate.js)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return "enter a number"
    try:
        v = float(value)
    except (ValueError, OverflowError):
        return "enter a number" if isinstance(value, str) else "enter a finite number"
    if not math.isfinite(v):
        return "enter a finite number"
    if kind == "p_unc" and not 0 < v < 1:
        return "p must be between 0 and 1 (exclusive)"
    if kind == "t" and v <= 0:
        return "T must be greater than 0"
    if kind == "k" and (v < 0 or v != int(v)):
        return "k must be a whole number of voxels, 0 or more"
    if kind == "k" and v > MAX_K:
        return f"k must be at most {MAX_K:,} voxels"
    return ""


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{key}: not one of {', '.join(allowed)}")
    return value


def _point(key: str, value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"{key}: not three coordinates")
    return [finite_number(v) for v in value]


def svc_regions(value: Any) -> list[str]:
    """Small-volume correction regions (AAL names); ValueError for anything else."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ValueError("svc: not a list of region names")
    if value:
        unknown = sorted(set(value) - _aal_regions())
        if unknown:
            raise ValueError(f"unknown AAL regions: {', '.join(unknown)}")
    return list(value)


@functools.cache
def _aal_regions() -> frozenset[str]:
    from dashboard.atlas import region_names

    return frozenset(region_names("aal"))


def checked_field(choices: Choices, key: str, value: Any) -> Any:
    """One view-state value, checked (and normalised: numbers as float, k as int);
    ValueError saying why it cannot be used."""
    if key == "condition" and value is None and not choices.conditions:
        return None  # a folder of group maps only (SPM, FSL, plain maps): no conditions
    if key in ("contrast", "direction", "p_kind", "model", "value", "condition"):
        allowed = {"contrast": choices.contrasts, "direction": tuple(DIRECTIONS), "p_kind": P_KINDS, "model": MODELS, "value": VALUES,
                   "condition": choices.conditions}[key]
        return _one_of(key, value, allowed)
    if key == "covariate":
        if value is None and not choices.covariates:
            return None
        return _one_of(key, value, choices.covariates)
    if key == "use_t":
        if not isinstance(value, bool):
            raise ValueError("use_t: not true or false")
        return value
    if key in ("p_unc", "t", "k"):
        why = input_problem(key, value)
        if why:
            raise ValueError(f"{key}: {why}")
        return int(float(value)) if key == "k" else float(value)
    if key == "svc":
        return svc_regions(value)
    if key == "point":
        return _point(key, value)
    if key == "cluster":
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) != {"direction", "peak"}:
            raise ValueError("cluster: not {direction, peak}")
        return {"direction": _one_of("cluster direction", value["direction"], SIGNS), "peak": _point("cluster peak", value["peak"])}
    if key == "participants":
        return participant_subset(choices, value)
    raise ValueError(f"{key}: not a view-state key")


def participant_subset(choices: Choices, value: Any) -> list[str]:
    """Known participant ids, in study order, at least :data:`MIN_PARTICIPANTS` (or all
    of a smaller study); ValueError otherwise."""
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError("participants: not a list of ids")
    wanted = set(value)
    unknown = wanted - set(choices.participants)
    if unknown:
        raise ValueError(f"participants: {len(unknown)} unknown")
    chosen = [p for p in choices.participants if p in wanted]
    if len(chosen) < min(MIN_PARTICIPANTS, len(choices.participants)):
        raise ValueError(f"at least {MIN_PARTICIPANTS} participants are needed")
    if not choices.subsets and len(chosen) != len(choices.participants):
        raise ValueError("subsets need participant images")
    return chosen


STATE_KEYS = ("contrast", "direction", "p_unc", "t", "use_t", "p_kind", "k", "svc", "model", "point", "cluster", "covariate", "value",
              "condition", "participants")


def checked_state(choices: Choices, value: Any) -> dict[str, Any]:
    """A view state sent back by the page, every key checked: the same state
    normalised, or ValueError naming what is wrong (the page only holds states the
    server made, so a failing one is a crafted or corrupted request)."""
    if not isinstance(value, dict):
        raise ValueError("the view state is not an object")
    missing = [key for key in STATE_KEYS if key not in value]
    if missing:
        raise ValueError(f"the view state lacks {', '.join(missing)}")
    return {key: checked_field(choices, key, value[key]) for key in STATE_KEYS}
