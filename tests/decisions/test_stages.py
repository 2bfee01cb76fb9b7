"""Lifecycle stage rules on hand-made members, and the migration matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decisions.stages import STAGES, assign_stages, migration_matrix, plot_migration, stage_of
from memberscore.decision_settings import StageThresholds

NAN = np.nan
# member: has_ordered, days since registration, days since first order, recency, orders,
# days overdue, last gap (days), churn probability
MEMBERS = {
    "registered": (False, 12, NAN, NAN, 0, NAN, NAN, NAN),
    "new": (True, 60, 40, 40, 1, 0, NAN, 0.2),
    "growing": (True, 300, 250, 20, 3, 0, 60, 0.2),
    "mature": (True, 900, 800, 15, 12, 0, 40, 0.1),
    "declining_churn": (True, 900, 800, 50, 9, 5, 40, 0.72),
    "declining_overdue": (True, 900, 800, 95, 9, 45, 40, 0.3),
    "dormant": (True, 900, 700, 212, 4, 150, 60, 0.9),
    "churned": (True, 900, 700, 400, 4, 330, 60, 0.95),
    "won_back": (True, 900, 700, 30, 5, 0, 250, 0.4),
}
COLUMNS = [
    "has_ordered",
    "days_since_registration",
    "days_since_first_order",
    "recency_days",
    "frequency",
    "days_overdue",
    "last_gap_days",
    "churn",
]
EXPECTED = {
    "registered": ("registered", "no order yet; registered 12 days ago"),
    "new": ("new", "first order 40 days ago (<= 90)"),
    "growing": (
        "growing",
        "3 orders, first order 250 days ago: past new, not yet mature (needs 5 orders, 365 days)",
    ),
    "mature": ("mature", "12 orders, first order 800 days ago (at least 5 orders, 365 days)"),
    "declining_churn": ("declining", "churn probability 0.72 >= 0.50"),
    "declining_overdue": ("declining", "45 days overdue vs own rhythm (>= 30)"),
    "dormant": ("dormant", "no order for 212 days (>= 180, < 365)"),
    "churned": ("churned", "no order for 400 days (>= 365)"),
    "won_back": (
        "won_back",
        "ordered 30 days ago after a 250 day gap (gap >= 180, last order <= 90 days ago)",
    ),
}


@pytest.fixture
def members() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame.from_dict(MEMBERS, orient="index", columns=COLUMNS)
    return frame.drop(columns="churn"), frame[["churn"]]


def test_one_member_per_stage_with_the_rule_in_words(
    members: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    features, scores = members

    result = assign_stages(features, scores)

    for member, (stage, rule) in EXPECTED.items():
        assert result.loc[member, "stage"] == stage, f"{member}: {result.loc[member, 'rule']}"
        assert result.loc[member, "rule"] == rule
    assert set(result["stage"]) == set(STAGES), "the fixture covers every stage"


def test_thresholds_move_members(members: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    features, scores = members

    result = assign_stages(features, scores, StageThresholds(declining_churn=0.8))

    assert result.loc["declining_churn", "stage"] == "mature", "0.72 is below the raised cut"


def test_without_scores_declining_rests_on_overdue(
    members: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    features, _ = members

    result = assign_stages(features)

    assert result.loc["declining_overdue", "stage"] == "declining"
    assert result.loc["declining_churn", "stage"] == "mature"


def test_single_member_entry_point() -> None:
    row = dict(zip(COLUMNS[:-1], MEMBERS["dormant"][:-1], strict=True))

    assert stage_of(row, {"churn": None}) == ("dormant", "no order for 212 days (>= 180, < 365)")


def test_single_member_entry_point_agrees_with_the_frame_rules(
    members: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """stage_of (the score API's path, no frames) gives every member the stage and sentence of
    assign_stages, also with missing values given as None."""
    features, scores = members
    table = assign_stages(features, scores)
    for member, values in MEMBERS.items():
        row = {k: (None if v is NAN else v) for k, v in zip(COLUMNS, values, strict=True)}
        churn = row.pop("churn")
        expected = (table.loc[member, "stage"], table.loc[member, "rule"])
        assert stage_of(row, {"churn": churn}) == expected, member
    unknown = dict(zip(COLUMNS[:-1], MEMBERS["new"][:-1], strict=True)) | {"has_ordered": None}
    assert stage_of(unknown, {})[0] == "registered", "a missing has_ordered counts as no order"


def test_nullable_and_text_columns_give_the_stages_of_plain_ones(
    members: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The rules read nullable integers, nullable flags and numbers held as objects as they
    read numpy floats and bools: same stages, rule ids and sentences, a categorical stage."""
    features, scores = members
    plain = assign_stages(features, scores)
    mixed = features.assign(
        has_ordered=features["has_ordered"].astype("boolean"),
        frequency=features["frequency"].astype("Int64"),
        days_since_first_order=features["days_since_first_order"].astype("Float64"),
        recency_days=features["recency_days"].astype(object),
    )
    mixed.loc["registered", "has_ordered"] = pd.NA  # a missing flag counts as no order

    result = assign_stages(mixed, scores.astype(object))

    pd.testing.assert_frame_equal(result, plain)
    assert list(result["stage"].cat.categories) == list(STAGES)
    assert result.loc["dormant", "rule_id"] == "dormant_recency"


def test_missing_columns_are_named(members: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    features, _ = members

    with pytest.raises(ValueError, match="need feature column\\(s\\) last_gap_days"):
        assign_stages(features.drop(columns="last_gap_days"))


def test_migration_matrix_counts_moves_and_absences() -> None:
    before = pd.Series({"a": "new", "b": "new", "c": "growing", "d": "dormant"})
    after = pd.Series({"a": "growing", "b": "new", "c": "growing", "e": "registered"})

    matrix = migration_matrix(before, after)

    assert matrix.loc["new", "growing"] == 1
    assert matrix.loc["new", "new"] == 1
    assert matrix.loc["growing", "growing"] == 1
    assert matrix.loc["dormant", "absent"] == 1, "d left between the cutoffs"
    assert matrix.loc["absent", "registered"] == 1, "e joined between the cutoffs"
    assert matrix.to_numpy().sum() == 5
    assert list(matrix.index[: len(STAGES)]) == list(STAGES)


def test_plot_returns_a_figure() -> None:
    stages = pd.Series({"a": "new", "b": "growing"})

    figure = plot_migration(migration_matrix(stages, stages))

    assert len(figure.axes) == 2, "heatmap and colour bar"


def test_stage_inputs_are_catalog_features() -> None:
    from dataclasses import asdict

    from decisions.stages import StageColumns
    from features.catalog import FAMILIES

    served = {f.name for family in FAMILIES.values() for f in family}
    inputs = {v for k, v in asdict(StageColumns()).items() if k != "churn"}

    assert inputs <= served, f"not in the feature catalog: {inputs - served}"
