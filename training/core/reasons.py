"""Reason codes: the features that push a member's score up most, in plain words (pure).

Drivers come from the model's SHAP contributions on the raw log-odds scale (exact TreeSHAP, the
values of LightGBM's `Booster.predict(..., pred_contrib=True)`, read from per-leaf tables by
`training.models.tree_shap`). A driver is phrased from a small table keyed by feature name, filled
with the member's values (days, counts, currency); windowed names such as `logins_30d` follow
a pattern; any other feature falls back to its catalog description and value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # a type only: `serving.scoring.frames` imports this without LightGBM
    from training.models.persistence import Model

MAX_REASONS = 3

# Each entry is a list of parts; a part is shown only when every value it names is present.
PHRASES: dict[str, tuple[str, ...]] = {
    "recency_days": (
        "{recency_days:.0f} days since last order",
        "typical gap {mean_gap_days:.0f} days",
    ),
    "mean_gap_days": ("typical gap between orders {mean_gap_days:.0f} days",),
    "last_gap_days": ("{last_gap_days:.0f} days between the last two orders",),
    "days_since_last_login": ("no login in {days_since_last_login:.0f} days",),
    "days_since_last_activity": ("no activity in {days_since_last_activity:.0f} days",),
    "days_since_registration": ("member for {days_since_registration:.0f} days",),
    "tenure_days": ("member for {tenure_days:.0f} days",),
    "frequency": ("{frequency:.0f} orders so far",),
    "frequency_prev_90d": ("{frequency_prev_90d:.0f} orders 90 to 180 days ago",),
    "monetary": ("{monetary:,.0f} spent so far",),
    "points_balance": ("{points_balance:,.0f} points not redeemed",),
    "distance_to_next_tier": ("{distance_to_next_tier:,.0f} short of the next tier",),
    "return_rate": ("{return_rate:.0%} of orders returned",),
    "discount_share": ("{discount_share:.0%} of spend discounted",),
    "tier": ("tier {tier}",),
    "segment": ("segment {segment}",),
}

# (pattern, template): the template sees the value as {value} and the window as {days}.
PATTERNS: tuple[tuple[str, str], ...] = (
    (
        r"^(?P<what>[a-z_]+?)_rate_(?P<days>\d+)d$",
        "{what} rate {value:.0%} over the last {days} days",
    ),
    (r"^avg_order_value_(?P<days>\d+)d$", "average order {value:,.0f} in the last {days} days"),
    (r"^(?:frequency|orders)_(?P<days>\d+)d$", "{value:.0f} orders in the last {days} days"),
    (r"^(?:monetary|spend)_(?P<days>\d+)d$", "{value:,.0f} spent in the last {days} days"),
    (r"^returns_(?P<days>\d+)d$", "{value:.0f} returns in the last {days} days"),
    (r"^(?P<event>[a-z_]+?)s?_(?P<days>\d+)d$", "{value:.0f} {event}s in the last {days} days"),
)


@dataclass(frozen=True)
class Reason:
    """A driver of the score: feature name, plain-word text, contribution (log-odds)."""

    code: str
    text: str
    impact: float


def _present(value: Any) -> bool:
    """False for None, NaN and pandas NA."""
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float | np.floating) and math.isnan(value))


def _show(value: Any) -> str:
    """A value as short text: whole numbers without decimals, booleans as yes/no."""
    if not _present(value):
        return "none"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.number):
        number = float(value)
        return f"{number:,.0f}" if number.is_integer() or abs(number) >= 10 else f"{number:,.2f}"
    return str(value)


def phrase(name: str, values: Mapping[str, Any], descriptions: Mapping[str, str]) -> str:
    """Plain words for feature `name` with the member's `values`."""
    if name == "days_overdue" and _present(values.get(name)):
        days = float(values[name])
        return (
            f"{days:.0f} days past the usual next order"
            if days >= 0
            else (f"next order usually due in {-days:.0f} days")
        )
    parts = PHRASES.get(name, ())
    shown = [p.format_map(values) for p in parts if _fields_present(p, values)]
    if shown:
        return "; ".join(shown)
    value = values.get(name)
    for pattern, template in PATTERNS:
        match = re.match(pattern, name)
        if match and value is not None and _present(value) and not isinstance(value, str):
            words = {k: v.replace("_", " ") for k, v in match.groupdict().items()}
            return template.format(value=float(value), **words)
    return f"{_label(name, descriptions)}: {_show(value)}"


def _label(name: str, descriptions: Mapping[str, str]) -> str:
    """The first clause of the catalog description ("Days since X; null if none." → "Days
    since X"), or the name in words."""
    text = descriptions.get(name, "").split(";")[0].strip().rstrip(".")
    return text or name.replace("_", " ")


def _fields_present(template: str, values: Mapping[str, Any]) -> bool:
    """True when every `{field...}` of `template` has a value."""
    return all(_present(values.get(field)) for field in _fields(template))


@cache
def _fields(template: str) -> tuple[str, ...]:
    """The field names of a template, parsed once (phrases are formatted for every member)."""
    return tuple(re.findall(r"{(\w+)", template))


def top_positive(contributions: np.ndarray, k: int = MAX_REASONS) -> np.ndarray:
    """Per row of `contributions` (members × features), the column positions of the `k` largest
    positive values, largest first, ties in column order: an (n, k) int array, -1 where fewer
    than `k` are positive. One sort over every row; the reason codes of training, the score API
    and batch scoring all come from here."""
    values = np.asarray(contributions, dtype=float)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    positive = np.take_along_axis(values, order, axis=1) > 0
    chosen = np.where(positive, order, -1)
    if chosen.shape[1] < k:  # fewer features than reasons asked for
        chosen = np.hstack([chosen, np.full((len(chosen), k - chosen.shape[1]), -1)])
    return chosen


def top_reasons(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    values: Mapping[str, Any],
    descriptions: Mapping[str, str] | None = None,
    k: int = MAX_REASONS,
) -> list[Reason]:
    """The `k` features with the largest positive contributions (bias excluded), largest first."""
    contributions = np.asarray(contributions, dtype=float)[: len(feature_names)]
    chosen = top_positive(contributions[np.newaxis, :], k)[0]
    return _reasons(chosen, contributions, feature_names, values, descriptions or {})


def _reasons(
    chosen: np.ndarray,
    contributions: np.ndarray,
    feature_names: Sequence[str],
    values: Mapping[str, Any],
    words: Mapping[str, str],
) -> list[Reason]:
    """The features at positions `chosen` (a `top_positive` row, -1 for none) as reasons, with
    the member's `values` in the catalog `words`."""
    positions = [int(i) for i in chosen if i >= 0]
    return [
        Reason(feature_names[i], phrase(feature_names[i], values, words), float(contributions[i]))
        for i in positions
    ]


def explain(
    model: Model,
    features: pd.DataFrame,
    descriptions: Mapping[str, str] | None = None,
    k: int = MAX_REASONS,
) -> list[list[Reason]]:
    """Reasons for every row of `features` (raw feature columns) under `model`."""
    names = model.encoding_.feature_names
    contributions = model.contributions(model.encoding_.matrix(features))
    values = np.asarray(contributions, dtype=float)[:, :-1][:, : len(names)]  # bias excluded
    chosen = top_positive(values, k)
    records = [{str(k): v for k, v in row.items()} for row in features.to_dict("records")]
    return [
        _reasons(chosen[i], values[i], names, records[i], descriptions or {})
        for i in range(len(features))
    ]


def catalog_descriptions() -> dict[str, str]:
    """Feature name → description from `features.catalog`."""
    from features.catalog import all_features

    return {f.name: f.description for f in all_features()}
