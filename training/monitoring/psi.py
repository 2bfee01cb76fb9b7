"""Reference distributions and the population stability index (PSI).

A reference describes one variable over a reference population: the cut points of equal-mass
bins of its non-missing values (numeric; booleans count as 0/1) or its levels (text, plus one
bin for levels unseen in the reference), the share of values in each bin and the share
missing. PSI = Σ (a − e) ln(a / e) over the bins, e the reference shares and a the shares of
the population compared, each floored at `FLOOR` so an empty bin stays finite. Missing values
are left out of the PSI and reported as their own share (`missing`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

FLOOR = 1e-4
# Model-version tag holding the reference distribution of the version's score (`to_json`), written
# by `memberscore monitor` and read by the score API's drift gauges.
REFERENCE_TAG = "score_reference"


@dataclass(frozen=True)
class Reference:
    """One variable's reference distribution: `edges` (numeric: interior cut points, a value
    equal to a cut point goes to the bin above) or `levels` (text: one bin each, then one for
    unseen levels), the share of non-missing values per bin, the share missing and the rows."""

    shares: tuple[float, ...]
    missing: float
    rows: int
    edges: tuple[float, ...] | None = None
    levels: tuple[str, ...] | None = None

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.shares)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin index of each non-missing value of `values` (already without missing)."""
        if self.levels is not None:
            known = pd.Categorical(values.astype(str), categories=list(self.levels)).codes
            return np.where(known >= 0, known, len(self.levels)).astype(np.int64)
        return np.searchsorted(np.asarray(self.edges, dtype=float), values, side="right")

    def counts(self, values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
        """(count per bin of the non-missing values, count missing) of `values`."""
        present, missing = split_missing(values, text=self.levels is not None)
        found = np.bincount(self.bin_of(present), minlength=self.bins)
        return found.astype(np.int64), missing


def split_missing(values: pd.Series | np.ndarray, *, text: bool) -> tuple[np.ndarray, int]:
    """(the non-missing values as floats, or as objects when `text`; how many were missing)."""
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    missing = series.isna().to_numpy()
    kept = series[~missing]
    if text:
        return kept.to_numpy(dtype=object), int(missing.sum())
    return kept.to_numpy(dtype=float), int(missing.sum())


def is_text(values: pd.Series) -> bool:
    """True for a column binned by level: not numeric and not boolean."""
    dtype = values.dtype
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def reference(values: pd.Series, bins: int, *, text: bool | None = None) -> Reference:
    """The reference of `values`: equal-mass bins (at most `bins`; fewer when values repeat)
    of a numeric column, one bin per level of a text column (`text` None: from the dtype).
    ValueError when `bins` < 2."""
    if bins < 2:
        raise ValueError(f"a PSI needs at least 2 bins, got {bins}")
    text = is_text(values) if text is None else text
    present, missing = split_missing(values, text=text)
    rows = len(present) + missing
    if text:
        levels = tuple(sorted({str(v) for v in present}))
        ref = Reference((), missing / rows if rows else 0.0, rows, levels=levels)
    else:
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.unique(np.quantile(present, quantiles)) if len(present) else np.array([])
        ref = Reference((), missing / rows if rows else 0.0, rows, edges=tuple(map(float, edges)))
    found, _ = _shares_of(ref, present)
    return Reference(tuple(found), ref.missing, rows, ref.edges, ref.levels)


def _shares_of(ref: Reference, present: np.ndarray) -> tuple[list[float], int]:
    """Shares per bin of non-missing `present` values (bins from the edges or levels)."""
    size = (len(ref.levels) + 1) if ref.levels is not None else len(ref.edges or ()) + 1
    counts = np.bincount(ref.bin_of(present), minlength=size) if len(present) else np.zeros(size)
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts], int(total)


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts per bin as shares (all zero when there are none)."""
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Σ (a − e) ln(a / e) over bins of shares `expected` and `actual` (each floored at FLOOR);
    NaN when either side has no values."""
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if e.shape != a.shape:
        raise ValueError(f"PSI needs the same bins on both sides, got {e.size} and {a.size}")
    if e.sum() == 0 or a.sum() == 0:
        return float("nan")
    e, a = np.maximum(e, FLOOR), np.maximum(a, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(ref: Reference, values: pd.Series | np.ndarray) -> tuple[float, float]:
    """(PSI of `values` against `ref`, share of `values` missing)."""
    counts, missing = ref.counts(values)
    rows = int(counts.sum()) + missing
    return psi(ref.shares, shares(counts)), (missing / rows if rows else float("nan"))


def to_json(references: Mapping[str, Reference]) -> str:
    """References by name as compact JSON (stored as a model-version tag)."""
    return json.dumps({k: asdict(v) for k, v in references.items()}, separators=(",", ":"))


def from_json(text: str) -> dict[str, Reference]:
    """References written by `to_json`; ValueError naming what cannot be read."""
    try:
        raw: Any = json.loads(text)
        return {str(name): _reference(item) for name, item in raw.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"a score reference cannot be read: {error}") from None


def _reference(item: Mapping[str, Any]) -> Reference:
    edges, levels = item.get("edges"), item.get("levels")
    return Reference(
        shares=tuple(float(s) for s in item["shares"]),
        missing=float(item["missing"]),
        rows=int(item["rows"]),
        edges=None if edges is None else tuple(float(e) for e in edges),
        levels=None if levels is None else tuple(str(v) for v in levels),
    )
