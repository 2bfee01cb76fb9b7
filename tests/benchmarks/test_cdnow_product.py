"""CDNOW product benchmark, scoring only (pure functions, no product run): holdout targets count
purchase days, the batch output's columns are scored, and missing scores are refused."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.cdnow.peers import TABLE_HEADER
from benchmarks.cdnow.product import (
    Step,
    StepFailed,
    chosen_columns,
    format_product_row,
    holdout_targets,
    promoted_name,
    score_holdout,
)

START = pd.Timestamp("1997-10-01")
MEMBERS = pd.Index(["00001", "00002", "00003", "00004"])


def _records() -> pd.DataFrame:
    """00001: two records on one day and one later; 00002: one; 00003 only before the
    holdout; 00004: one record a day after a 3-day holdout."""
    rows = [
        ("00001", "1997-10-01", 10.0),
        ("00001", "1997-10-01", 5.0),
        ("00001", "1997-10-03", 20.0),
        ("00002", "1997-10-02", 7.0),
        ("00003", "1997-09-30", 99.0),
        ("00004", "1997-10-04", 50.0),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "dollar_value"])
    return frame.assign(date=pd.to_datetime(frame["date"]))


def _scores(**overrides: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "member_id": ["00004", "00003", "00002", "00001"],  # not in target order
            "churn": [0.8, 0.9, 0.4, 0.1],
            "orders_mean": [0.2, 0.1, 1.0, 2.0],
            "spend_mean": [5.0, 1.0, 8.0, 30.0],
            "spend_p50": [0.0, 0.0, 5.0, 25.0],
        }
    )
    return frame.assign(**overrides)


def test_holdout_targets_count_purchase_days_in_the_window() -> None:
    # when the targets of a 3-day holdout from 1997-10-01 are built
    targets = holdout_targets(_records(), START, 3, MEMBERS)

    # then same-day records are one purchase, the window is inclusive and ends on day 3
    assert targets["holdout_count"].tolist() == [2, 1, 0, 0], "00001 bought on 2 days"
    assert targets["holdout_value"].tolist() == [35.0, 7.0, 0.0, 0.0]
    assert targets.index.tolist() == MEMBERS.tolist(), "every member has a row, buyers or not"


def test_scores_are_matched_by_member_and_scored() -> None:
    targets = holdout_targets(_records(), START, 3, MEMBERS)

    result = score_holdout(_scores(), targets)

    m = result["metrics"]
    assert result["columns"] == {"churn": "churn", "count": "orders_mean", "spend": "spend_mean"}
    assert m["churn_roc_auc[P(churn)]"] == pytest.approx(1.0), "churners have the top scores"
    assert m["churn_roc_auc[-E[orders]]"] == pytest.approx(1.0)
    assert m["churn_share"] == pytest.approx(0.5)
    assert m["count_mae"] == pytest.approx((0.2 + 0.1 + 0.0 + 0.0) / 4), "rows joined by id"
    assert m["count_actual_total"] == 3.0 and m["count_pred_total"] == pytest.approx(3.3)
    assert m["spend_actual_total"] == 42.0 and m["spend_pred_total"] == pytest.approx(44.0)
    assert m["spend_mae"] == pytest.approx((5 + 1 + 1 + 5) / 4)


def test_without_mean_columns_the_median_spend_stands_in_and_counts_are_absent() -> None:
    targets = holdout_targets(_records(), START, 3, MEMBERS)
    scores = _scores().drop(columns=["orders_mean", "spend_mean"])

    result = score_holdout(scores, targets)
    row = format_product_row(result, 91, 12.0)

    assert chosen_columns(scores.columns) == {"churn": "churn", "count": None, "spend": "spend_p50"}
    assert (
        "count_mae" not in result["metrics"]
        and "churn_roc_auc[-E[orders]]" not in (result["metrics"])
    ), "no count score is made up"
    assert len(row) == len(TABLE_HEADER)
    assert row[1] == "–" and "spend_p50" in row[0] and "91 d" in row[0], "stand-ins are named"
    assert row[5] == f"{result['metrics']['churn_roc_auc[P(churn)]']:.3f} (P(churn))"


def test_a_member_without_a_score_is_refused() -> None:
    targets = holdout_targets(_records(), START, 3, MEMBERS)
    missing_one = _scores().iloc[1:]  # 00004 has no row
    unscored = _scores(churn=[0.8, None, 0.4, 0.1])

    with pytest.raises(ValueError, match=r"1 of 4 holdout members have no 'churn'.*00004"):
        score_holdout(missing_one, targets)
    with pytest.raises(ValueError, match=r"no 'churn'.*00003"):
        score_holdout(unscored, targets)


def test_the_promote_name_is_read_from_the_train_output() -> None:
    printed = "registered churn version 1 as challenger (run a1); next: memberscore promote churn"
    step = Step("train churn", ["train", "churn"], output=printed + "\n")
    assert promoted_name(step) == "churn"
    with pytest.raises(StepFailed, match="step 'train clv' failed"):
        promoted_name(Step("train clv", ["train", "clv"], output="nothing useful"))
