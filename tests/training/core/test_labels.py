"""Labels: windows [cutoff, cutoff + H), populations, refunds, discounting, labelable cutoffs."""

from __future__ import annotations

import pandas as pd
import pytest

from training.core.labels import (
    UnlabelableCutoff,
    activation_labels,
    as_cutoff,
    churn_labels,
    clv_labels,
    observed_until,
)

CUTOFF = as_cutoff("2024-03-01")
END = as_cutoff("2024-12-31")


def orders(*rows: tuple[str, str, float, bool]) -> pd.DataFrame:
    """Orders from (member, timestamp, amount, is_return) tuples."""
    frame = pd.DataFrame(rows, columns=["member_id", "ordered_at", "amount", "is_return"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True, format="ISO8601")
    return frame


def by_member(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """Label values by member id."""
    return dict(zip(frame["member_id"], frame[column], strict=True))


def test_churn_window_is_half_open_and_past_orders_are_not_future() -> None:
    """Given orders just before, at, and at cutoff + H, only [cutoff, cutoff + H) counts."""
    given = orders(
        ("a", "2024-02-01", 10, False),
        ("a", "2024-03-01T00:00:00", 10, False),  # at the cutoff: a future purchase
        ("b", "2024-02-29T23:59:59", 10, False),  # just before: history, not future
        ("c", "2024-01-01", 10, False),
        ("c", "2024-03-31T00:00:00", 10, False),  # at cutoff + 30 days: outside the window
        ("d", "2024-01-01", 10, False),
        ("d", "2024-03-10", 10, True),  # a return is not a purchase
    )
    labels = by_member(churn_labels(given, CUTOFF, 30, END), "churned")
    assert labels == {"a": 0, "b": 1, "c": 1, "d": 1}, "churn = no purchase in [cutoff, +30d)"


def test_churn_population_needs_a_purchase_before_the_cutoff() -> None:
    """A member whose first purchase is after the cutoff, or who only returned, is left out."""
    given = orders(("new", "2024-03-05", 10, False), ("ret", "2024-02-01", 10, True))
    assert churn_labels(given, CUTOFF, 30, END).empty, "no purchase before the cutoff"


def test_activation_population_and_label() -> None:
    """Registered before the cutoff with no purchase yet; activated = first purchase in H."""
    members = pd.DataFrame(
        {
            "member_id": ["x", "y", "z", "late"],
            "registered_at": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-01", "2024-03-02"], utc=True
            ),
        }
    )
    given = orders(
        ("x", "2024-03-15", 10, False),  # activates inside 30 days
        ("y", "2024-04-15", 10, False),  # too late for a 30-day horizon
        ("z", "2024-02-15", 10, False),  # already a buyer: not in the population
        ("late", "2024-03-05", 10, False),  # registered after the cutoff
    )
    labels = by_member(activation_labels(members, given, CUTOFF, 30, END), "activated")
    assert labels == {"x": 1, "y": 0}, "population: registered before, no order before"


def test_clv_nets_refunds_and_discounts_each_order() -> None:
    """Spend = purchases − refunds in the window; clv discounts by (1 + r)^(days / 30.4375)."""
    given = orders(
        ("a", "2024-01-01", 50, False),
        ("a", "2024-03-01", 100, False),
        ("a", "2024-03-31T10:30:00", 30, True),
        ("a", "2024-06-01", 999, False),  # outside a 60-day horizon
        ("b", "2024-01-01", 20, False),
    )
    frame = clv_labels(given, CUTOFF, 60, END, monthly_discount_rate=0.01).set_index("member_id")
    days = 30 + 10.5 / 24
    expected_clv = 100 - 30 / 1.01 ** (days / 30.4375)
    assert frame.loc["a", "spend"] == pytest.approx(70.0), "100 bought − 30 refunded"
    assert frame.loc["a", "clv"] == pytest.approx(expected_clv), "each order discounted"
    assert frame.loc["a", "purchased"] == 1
    assert (frame.loc["b", "spend"], frame.loc["b", "purchased"]) == (0.0, 0)


def test_a_cutoff_whose_window_passes_the_data_end_is_refused() -> None:
    """cutoff + H must not pass the exclusive data end; the message names the latest cutoff."""
    given = orders(("a", "2024-01-01", 10, False), ("a", "2024-03-30T12:00", 10, False))
    end = observed_until(given)
    assert end == as_cutoff("2024-03-31"), "the day after the last order"
    churn_labels(given, CUTOFF, 30, end)  # 2024-03-01 + 30 days = 2024-03-31: just fits
    with pytest.raises(UnlabelableCutoff, match="latest labelable cutoff for this horizon is"):
        churn_labels(given, CUTOFF, 31, end)


def test_missing_columns_are_named() -> None:
    """A frame without is_return is refused with the column's name."""
    with pytest.raises(ValueError, match="is_return"):
        churn_labels(pd.DataFrame(columns=["member_id", "ordered_at", "amount"]), CUTOFF, 30, END)
