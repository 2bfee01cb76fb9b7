"""Lifecycle stages: pure rules over member features and model scores.

Rules run in a fixed priority order and the first that holds wins: registered, churned,
dormant, won back, new, declining, mature, growing (see docs/decisions.md). All day counts are
as of the features' cutoff. Each member gets its stage, the id of the rule that fired and a short
sentence with the numbers, e.g. "no order for 212 days (>= 180, < 365)".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from decisions.config import StageThresholds

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
    ordered = x["has_ordered"].fillna(False).to_numpy(dtype=bool)
    churn_high = (x["churn"] >= t.declining_churn).to_numpy()
    overdue = (x["days_overdue"] >= t.declining_overdue_days).to_numpy()
    rules: list[tuple[str, str, np.ndarray]] = [
        ("registered", "registered_no_order", ~ordered),
        ("churned", "churned_recency", (x["recency_days"] >= t.churned_days).to_numpy()),
        ("dormant", "dormant_recency", (x["recency_days"] >= t.dormant_days).to_numpy()),
        ("won_back", "won_back_after_gap", _won_back(x, t)),
        ("new", "new_first_order", (x["days_since_first_order"] <= t.new_days).to_numpy()),
        ("declining", "declining_churn_and_overdue", churn_high & overdue),
        ("declining", "declining_churn", churn_high),
        ("declining", "declining_overdue", overdue),
        ("mature", "mature_orders_tenure", _mature(x, t)),
        ("growing", "growing_default", np.ones(len(x), dtype=bool)),
    ]
    rule_ids = np.select([m for *_, m in rules], [r for _, r, _ in rules], default="")
    stage_of = {rule: stage for stage, rule, _ in rules}
    out = pd.DataFrame(index=features.index)
    out["stage"] = pd.Categorical(pd.Series(rule_ids).map(stage_of), categories=STAGES)
    out["rule_id"] = rule_ids
    out["rule"] = _sentences(x, rule_ids, t) if sentences else ""
    return out


def stage_of(
    features: Mapping[str, Any],
    scores: Mapping[str, float | None],
    thresholds: StageThresholds | None = None,
    columns: StageColumns | None = None,
) -> tuple[str, str]:
    """Stage and rule sentence of one member (for the score API)."""
    c = columns or StageColumns()
    # Only the rule inputs: a one-row frame of every feature costs more than the rules.
    needed = [getattr(c, f) for f in c.__dataclass_fields__ if f != "churn"]
    frame = pd.DataFrame({name: [features[name]] for name in needed if name in features})
    score_frame = pd.DataFrame([{c.churn: scores.get(c.churn)}], dtype="float64")
    row = assign_stages(frame, score_frame, thresholds, c).iloc[0]
    return str(row["stage"]), str(row["rule"])


def _inputs(features: pd.DataFrame, scores: pd.DataFrame | None, c: StageColumns) -> pd.DataFrame:
    """The rule inputs as float columns (has_ordered as boolean), NaN where missing."""
    needed = [f for f in c.__dataclass_fields__ if f != "churn"]
    missing = [getattr(c, f) for f in needed if getattr(c, f) not in features.columns]
    if missing:
        raise ValueError(
            f"stage rules need feature column(s) {', '.join(missing)}; the frame has "
            f"{', '.join(map(str, features.columns))}"
        )
    x = pd.DataFrame(index=features.index)
    for name in needed:
        column = features[getattr(c, name)]
        x[name] = column.astype("boolean") if name == "has_ordered" else _floats(column)
    churn = scores[c.churn] if scores is not None and c.churn in scores.columns else None
    x["churn"] = np.nan if churn is None else _floats(churn.reindex(features.index))
    return x


def _floats(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="raise").astype("float64")


def _won_back(x: pd.DataFrame, t: StageThresholds) -> np.ndarray:
    returned = x["last_gap_days"] >= t.dormant_days
    return (returned & (x["recency_days"] <= t.won_back_days)).to_numpy()


def _mature(x: pd.DataFrame, t: StageThresholds) -> np.ndarray:
    enough = x["orders"] >= t.mature_min_orders
    return (enough & (x["days_since_first_order"] >= t.mature_min_tenure_days)).to_numpy()


def _sentences(x: pd.DataFrame, rule_ids: np.ndarray, t: StageThresholds) -> np.ndarray:
    """The rule sentence of every member, formatted only for the rows each rule fired on."""
    out = np.empty(len(x), dtype=object)
    for rule in np.unique(rule_ids):
        hit = rule_ids == rule
        out[hit] = _sentence(rule, x.loc[hit], t).to_numpy()
    return out


def _sentence(rule: str, x: pd.DataFrame, t: StageThresholds) -> pd.Series:
    """The sentence of `rule` for the members in `x` (all of whom it fired on)."""
    d = _LazyText(x)
    od, cut = f"{t.declining_overdue_days:g}", f"{t.declining_churn:.2f}"
    if rule.startswith("declining"):
        p = pd.Series(np.char.mod("%.2f", x["churn"].to_numpy()), index=x.index, dtype=object)
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


class _LazyText(dict[str, pd.Series]):
    """Whole numbers of a column as text ('?' when missing), formatted on first use."""

    def __init__(self, x: pd.DataFrame) -> None:
        super().__init__()
        self.x = x

    def __missing__(self, name: str) -> pd.Series:
        values = self.x[name].to_numpy(dtype="float64")
        text = np.round(np.nan_to_num(values)).astype(np.int64).astype(str).astype(object)
        text[np.isnan(values)] = "?"
        self[name] = pd.Series(text, index=self.x.index, dtype=object)
        return self[name]


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
