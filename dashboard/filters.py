"""Quick participant filters, from what a results folder says about its columns.

A categorical column (``participants.json`` ``Levels``, or text with a few distinct
values) becomes a levels filter (tick the levels to keep); a numeric column (``Units``)
a range filter.  Which columns, in which order: the folder's ``ViewDefaults.QuickFilters``
(``design.json``) when it names them, else the first :data:`MAX_AUTOMATIC` declared
columns.  Nothing here knows any study's columns.

A participant with no value in a filtered column is kept (a filter selects on what is
known; "n/a" is not a level to untick).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from dashboard.results import Study

MAX_AUTOMATIC = 5
MAX_LEVELS = 12


@dataclass(frozen=True)
class QuickFilter:
    """One filter: a column, how it is shown, and what "everyone" is."""

    column: str
    label: str
    kind: Literal["levels", "range"]
    levels: tuple[tuple[str, str], ...] = ()  # (value, label) in the column's order of appearance
    low: float = 0.0
    high: float = 1.0

    @property
    def everyone(self) -> list[str] | list[float]:
        """The filter value that keeps every participant."""
        return [v for v, _ in self.levels] if self.kind == "levels" else [self.low, self.high]


def _spec(study: Study, column: str) -> dict[str, Any]:
    spec = study.participant_columns.get(column) if isinstance(study.participant_columns, dict) else None
    return spec if isinstance(spec, dict) else {}


def column_filter(study: Study, column: str) -> QuickFilter | None:
    """The filter a column supports, or None (free text, a single value, no values)."""
    if column not in study.participants.columns:
        return None
    values = study.participants[column].dropna()
    if values.empty:
        return None
    spec = _spec(study, column)
    label = str(spec.get("LongName") or spec.get("Description") or column)
    numeric = pd.to_numeric(values, errors="coerce")
    levels_spec = spec.get("Levels") if isinstance(spec.get("Levels"), dict) else None
    if levels_spec is None and numeric.notna().all():
        low, high = float(numeric.min()), float(numeric.max())
        if low == high:
            return None
        units = spec.get("Units")
        return QuickFilter(column, f"{label} ({units})" if units else label, "range", low=math.floor(low), high=math.ceil(high))
    present = list(dict.fromkeys(str(v) for v in values))
    if not 2 <= len(present) <= MAX_LEVELS:
        return None
    names = levels_spec or {}
    ordered = [v for v in map(str, names) if v in present] + [v for v in present if v not in names]
    return QuickFilter(column, label, "levels", levels=tuple((v, str(names.get(v, v))) for v in ordered))


def quick_filters(study: Study) -> list[QuickFilter]:
    """The study's quick filters (see the module docstring)."""
    named = study.view_defaults.get("QuickFilters")
    if isinstance(named, list):
        columns = [c for c in named if isinstance(c, str)]
        return [f for f in (column_filter(study, c) for c in columns) if f is not None]
    declared = [c for c in study.participants.columns if _spec(study, c)]
    found = [f for f in (column_filter(study, c) for c in declared) if f is not None]
    return found[:MAX_AUTOMATIC]


def filter_participants(study: Study, filters: list[QuickFilter], values: Mapping[str, Any]) -> list[str]:
    """Participant ids passing every filter's value (``values``: column -> a list of kept
    levels, or ``[low, high]``); ValueError for a value the filter cannot take."""
    df = study.participants
    keep = pd.Series(True, index=df.index)
    for f in filters:
        value = values.get(f.column)
        if value is None:
            continue
        column = df[f.column]
        if f.kind == "levels":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{f.column}: not a list of levels")
            keep &= column.isna() | column.astype(str).isin(value)
        else:
            if (not isinstance(value, list) or len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
                    or not all(math.isfinite(v) for v in value)):
                raise ValueError(f"{f.column}: not a [low, high] range")
            numbers = pd.to_numeric(column, errors="coerce")
            keep &= numbers.isna() | numbers.between(float(value[0]) - 1e-9, float(value[1]) + 1e-9)
    return [p for p in study.participant_ids if bool(keep.get(p, False))]
