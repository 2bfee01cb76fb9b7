"""Lifecycle stages: pure rules over member features and model scores.

Rules run in a fixed priority order and the first that holds wins: registered, churned,
dormant, won back, new, declining, mature, growing (see docs/decisions.md). All day counts are
as of the features' cutoff. Each member gets its stage, the id of the rule that fired and a short
sentence with the numbers, e.g. "no order for 212 days (>= 180, < 365)".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memberscore.decision_settings import StageThresholds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STAGES = (
    "registered",
    "new",
    "growing",
    "mature",
    "declining",
    "dormant",
    "churned",
    "won_back",
)
ABSENT = "absent"


@dataclass(frozen=True)
class StageColumns:
    """Names of the inputs the rules read: features (days as of the cutoff) and one score."""

    has_ordered: str = "has_ordered"
    days_since_registration: str = "days_since_registration"
    days_since_first_order: str = "days_since_first_order"
    recency_days: str = "recency_days"
    orders: str = "frequency"
    days_overdue: str = "days_overdue"
    last_gap_days: str = "last_gap_days"
    churn: str = "churn"


def assign_stages(
    features: pd.DataFrame,
    scores: pd.DataFrame | None = None,
    thresholds: StageThresholds | None = None,
    columns: StageColumns | None = None,
    sentences: bool = True,
) -> pd.DataFrame:
    """Stage of every member: a frame on `features.index` with `stage`, `rule_id` and `rule`.

    `sentences=False` leaves `rule` empty, which saves most of the time on millions of members.

    `scores` (same index) holds the churn probability in `columns.churn`; without it, or where
    it is missing, declining rests on days_overdue alone. Missing day counts never fire a rule.
    """
    t, c = thresholds or StageThresholds(), columns or StageColumns()
    x = _inputs(features, scores, c)
    rules = _rules(x, t)
    out = {
        "stage": pd.Categorical.from_codes(_STAGE_CODE[rules], dtype=_STAGE_DTYPE),
        "rule_id": _RULE_IDS[rules],
        "rule": _sentences(x, rules, t) if sentences else "",
    }
    return pd.DataFrame(out, index=features.index)


def stage_of(
    features: Mapping[str, Any],
    scores: Mapping[str, float | None],
    thresholds: StageThresholds | None = None,
    columns: StageColumns | None = None,
) -> tuple[str, str]:
    """Stage and rule sentence of one member (for the score API): the rules of
    `assign_stages` on one-element arrays, without building frames."""
    t, c = thresholds or StageThresholds(), columns or StageColumns()
    missing = [getattr(c, f) for f in _FEATURE_FIELDS if getattr(c, f) not in features]
    if missing:
        raise ValueError(f"stage rules need feature(s) {', '.join(missing)}")
    x = {
        name: np.array([_float(features[getattr(c, name)])], dtype="float64")
        for name in _FEATURE_FIELDS
        if name != "has_ordered"
    }
    ordered = features[c.has_ordered]
    x["has_ordered"] = np.array([not _missing(ordered) and bool(ordered)])
    x["churn"] = np.array([_float(scores.get(c.churn))], dtype="float64")
    rules = _rules(x, t)
    return STAGE_OF_RULE[str(_RULE_IDS[rules[0]])], str(_sentences(x, rules, t)[0])


# Rule inputs by field of StageColumns: float arrays (NaN where missing), has_ordered bool.
Inputs = dict[str, np.ndarray]
_FEATURE_FIELDS = tuple(f for f in StageColumns.__dataclass_fields__ if f != "churn")


def _rules(x: Inputs, t: StageThresholds) -> np.ndarray:
    """The first rule that holds for each member, as its position in `STAGE_OF_RULE` (the
    priority order)."""
    ordered = x["has_ordered"]
    churn_high = x["churn"] >= t.declining_churn
    overdue = x["days_overdue"] >= t.declining_overdue_days
    returned = x["last_gap_days"] >= t.dormant_days
    enough = x["orders"] >= t.mature_min_orders
    masks = {
        "registered_no_order": ~ordered,
        "churned_recency": x["recency_days"] >= t.churned_days,
        "dormant_recency": x["recency_days"] >= t.dormant_days,
        "won_back_after_gap": returned & (x["recency_days"] <= t.won_back_days),
        "new_first_order": x["days_since_first_order"] <= t.new_days,
        "declining_churn_and_overdue": churn_high & overdue,
        "declining_churn": churn_high,
        "declining_overdue": overdue,
        "mature_orders_tenure": enough & (x["days_since_first_order"] >= t.mature_min_tenure_days),
        "growing_default": np.ones(len(ordered), dtype=bool),
    }
    stacked = np.stack([masks[rule] for rule in STAGE_OF_RULE])
    return np.argmax(stacked, axis=0)  # the first rule that holds (growing always does)


STAGE_OF_RULE = {
    "registered_no_order": "registered",
    "churned_recency": "churned",
    "dormant_recency": "dormant",
    "won_back_after_gap": "won_back",
    "new_first_order": "new",
    "declining_churn_and_overdue": "declining",
    "declining_churn": "declining",
    "declining_overdue": "declining",
    "mature_orders_tenure": "mature",
    "growing_default": "growing",
}
_RULE_IDS = np.array(list(STAGE_OF_RULE), dtype=object)
_STAGE_CODE = np.array([STAGES.index(stage) for stage in STAGE_OF_RULE.values()])
_STAGE_DTYPE = pd.CategoricalDtype(list(STAGES))


def _inputs(features: pd.DataFrame, scores: pd.DataFrame | None, c: StageColumns) -> Inputs:
    """The rule inputs as arrays: floats (NaN where missing), has_ordered as bool."""
    missing = [getattr(c, f) for f in _FEATURE_FIELDS if getattr(c, f) not in features.columns]
    if missing:
        raise ValueError(
            f"stage rules need feature column(s) {', '.join(missing)}; the frame has "
            f"{', '.join(map(str, features.columns))}"
        )
    x: Inputs = {}
    for name in _FEATURE_FIELDS:
        column = features[getattr(c, name)]
        if name == "has_ordered" and column.dtype == bool:  # the common case, no copy
            x[name] = column.to_numpy()
        elif name == "has_ordered":
            x[name] = column.astype("boolean").fillna(False).to_numpy(dtype=bool)
        else:
            x[name] = _floats(column)
    churn = scores[c.churn] if scores is not None and c.churn in scores.columns else None
    if churn is not None and not churn.index.equals(features.index):
        churn = churn.reindex(features.index)
    x["churn"] = np.full(len(features), np.nan) if churn is None else _floats(churn)
    return x


def _floats(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":  # already numbers
        return column.to_numpy(dtype="float64")
    return pd.to_numeric(column, errors="raise").to_numpy(dtype="float64", na_value=np.nan)


def _float(value: Any) -> float:
    """One input value as a float (NaN when missing); text raises, as `_floats` does."""
    return math.nan if _missing(value) else float(value)


def _missing(value: Any) -> bool:
    """None, pd.NA or NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _sentences(x: Inputs, rules: np.ndarray, t: StageThresholds) -> np.ndarray:
    """The rule sentence of every member (`rules` from `_rules`), formatted only for the rows
    each rule fired on."""
    out = np.empty(len(rules), dtype=object)
    for rule in np.unique(rules):
        hit = rules == rule
        out[hit] = _sentence(str(_RULE_IDS[rule]), {k: v[hit] for k, v in x.items()}, t)
    return out


def _sentence(rule: str, x: Inputs, t: StageThresholds) -> np.ndarray:
    """The sentence of `rule` for the members in `x` (all of whom it fired on), as an object
    array (text concatenates element by element)."""
    d = _LazyText(x)
    od, cut = f"{t.declining_overdue_days:g}", f"{t.declining_churn:.2f}"
    if rule.startswith("declining"):
        p = np.char.mod("%.2f", x["churn"]).astype(object)
        churn = "churn probability " + p + f" >= {cut}"
        overdue = d["days_overdue"] + f" days overdue vs own rhythm (>= {od})"
        return {"declining_churn": churn, "declining_overdue": overdue}.get(
            rule, churn + " and " + overdue
        )
    if rule == "registered_no_order":
        return "no order yet; registered " + d["days_since_registration"] + " days ago"
    if rule == "churned_recency":
        return "no order for " + d["recency_days"] + f" days (>= {t.churned_days})"
    if rule == "dormant_recency":
        return (
            "no order for " + d["recency_days"] + f" days (>= {t.dormant_days}, < {t.churned_days})"
        )
    if rule == "won_back_after_gap":
        return (
            "ordered "
            + d["recency_days"]
            + " days ago after a "
            + d["last_gap_days"]
            + f" day gap (gap >= {t.dormant_days}, last order <= {t.won_back_days} days ago)"
        )
    if rule == "new_first_order":
        return "first order " + d["days_since_first_order"] + f" days ago (<= {t.new_days})"
    tenure = f"{t.mature_min_orders} orders, {t.mature_min_tenure_days} days"
    if rule == "mature_orders_tenure":
        since = " orders, first order " + d["days_since_first_order"] + " days ago"
        return d["orders"] + since + f" (at least {tenure})"
    since = " orders, first order " + d["days_since_first_order"] + " days ago"
    return d["orders"] + since + f": past new, not yet mature (needs {tenure})"


class _LazyText(dict[str, np.ndarray]):
    """Whole numbers of an input as text ('?' when missing), formatted on first use."""

    def __init__(self, x: Inputs) -> None:
        super().__init__()
        self.x = x

    def __missing__(self, name: str) -> np.ndarray:
        values = self.x[name].astype("float64")
        text = np.round(np.nan_to_num(values)).astype(np.int64).astype(str).astype(object)
        text[np.isnan(values)] = "?"
        self[name] = text
        return text


def migration_matrix(stages_from: pd.Series, stages_to: pd.Series) -> pd.DataFrame:
    """Members per (stage at the first cutoff, stage at the second), indexed by member.

    Rows are stages before, columns stages after, in lifecycle order. A member present at only
    one cutoff counts under `absent` at the other (e.g. registered in between).
    """
    both = pd.concat(
        {"from": stages_from.astype("string"), "to": stages_to.astype("string")}, axis=1
    ).fillna(ABSENT)
    order = [*STAGES, ABSENT]
    matrix = pd.crosstab(both["from"], both["to"]).reindex(index=order, columns=order)
    matrix = matrix.fillna(0).astype("int64")
    keep_rows = [s for s in order if s != ABSENT or matrix.loc[ABSENT].sum() > 0]
    keep_cols = [s for s in order if s != ABSENT or matrix[ABSENT].sum() > 0]
    matrix = matrix.loc[keep_rows, keep_cols]
    matrix.index.name, matrix.columns.name = "from", "to"
    return matrix


def plot_migration(matrix: pd.DataFrame, title: str = "Stage migration") -> Figure:
    """Heatmap of the row shares of `matrix` annotated with the member counts."""
    from matplotlib.figure import Figure  # drawn without pyplot: no global state, no GUI

    counts = matrix.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = Figure(figsize=(1.0 + 0.9 * counts.shape[1], 1.0 + 0.7 * counts.shape[0]))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(counts.shape[1]), list(matrix.columns), rotation=45, ha="right")
    axes.set_yticks(range(counts.shape[0]), list(matrix.index))
    axes.set_xlabel(f"stage at {matrix.columns.name or 'to'}")
    axes.set_ylabel(f"stage at {matrix.index.name or 'from'}")
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if shares[i, j] > 0.6 else "black"
        axes.text(j, i, f"{count:,}", ha="center", va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=axes, label="share of the row's members")
    axes.set_title(title)
    figure.tight_layout()
    return figure
