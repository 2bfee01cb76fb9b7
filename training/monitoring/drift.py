"""Drift of features and scores: each variable of a reference population against the same
variable in a current population (`psi.compare`), with the change of its missing share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from training.monitoring.psi import Reference, compare, reference

DRIFT_COLUMNS = [
    "variable",
    "kind",
    "psi",
    "missing_reference",
    "missing_current",
    "missing_change",
]


def references(
    frame: pd.DataFrame, columns: Iterable[str], bins: int, text: Iterable[str] = ()
) -> dict[str, Reference]:
    """The reference of each of `columns` in `frame` (`text` ones binned by level; a column
    absent from `frame` counts as all missing). ValueError when `frame` has no rows."""
    if frame.empty:
        raise ValueError("the reference population has no rows: nothing to compare with")
    levels = set(text)
    out = {}
    for name in columns:
        values = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
        out[name] = reference(values, bins, text=True if name in levels else None)
    return out


def drift_table(
    refs: Mapping[str, Reference], current: pd.DataFrame, kind: str = "feature"
) -> pd.DataFrame:
    """One row per variable of `refs`: its PSI in `current` against the reference, the missing
    share (0..1) in both and the change (current − reference); `kind` labels the rows
    ('feature' or 'score'). Sorted by PSI, largest first."""
    rows = []
    for name, ref in refs.items():
        values = current[name] if name in current.columns else pd.Series([None] * len(current))
        value, missing = compare(ref, values)
        rows.append((name, kind, value, ref.missing, missing, missing - ref.missing))
    table = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    return table.sort_values("psi", ascending=False, na_position="last", ignore_index=True)
