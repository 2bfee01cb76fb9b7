"""Campaign lists (budget, caps, hold-out) and lift measurement, on tiny frames built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decisions.campaigns import (
    CONTROL,
    TREATMENT,
    hold_out,
    list_summary,
    measure_lift,
    outcomes,
    select_members,
)


def _candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d", "e"],
            "action_id": ["coupon", "coupon", "email", "email", "call"],
            "expected_value": [4.0, 3.0, 0.5, 0.2, 9.0],
            "unit_cost": [2.0, 1.0, 0.0, 0.1, 10.0],
        }
    )


def test_budget_takes_highest_ev_per_cost_first_and_stops_when_spent() -> None:
    """EV per cost: c free (inf), b 3.0, a 2.0, d 2.0 (lower EV than a), e 0.9."""
    everyone = select_members(_candidates())
    assert list(everyone["member_id"]) == ["c", "b", "a", "d", "e"]
    within = select_members(_candidates(), budget=3.1)
    assert list(within["member_id"]) == ["c", "b", "a", "d"], "cost 0 + 1 + 2 + 0.1 = 3.1"
    assert within["unit_cost"].sum() <= 3.1
    assert list(within["rank"]) == [1, 2, 3, 4]


def test_per_action_caps_keep_the_best_members_of_each_action() -> None:
    capped = select_members(_candidates(), max_per_action=1)
    assert sorted(capped["member_id"]) == ["b", "c", "e"]
    by_action = select_members(_candidates(), max_per_action={"email": 0})
    assert "email" not in set(by_action["action_id"]), "other actions stay uncapped"
    with pytest.raises(ValueError, match="unit_cost"):
        select_members(_candidates().drop(columns=["unit_cost"]))


def test_hold_out_is_reproducible_near_the_share_and_differs_by_action() -> None:
    ids = [f"m{i:05d}" for i in range(20_000)]
    frame = pd.DataFrame({"member_id": ids * 2, "action_id": ["x"] * 20_000 + ["y"] * 20_000})
    group = hold_out(frame, 0.2, "salt")
    x, y = (group[frame["action_id"] == a].to_numpy() == CONTROL for a in ("x", "y"))
    assert 0.19 < x.mean() < 0.21 and 0.19 < y.mean() < 0.21
    assert (hold_out(frame, 0.2, "salt") == group).all(), "same salt, same groups"
    assert (x != y).mean() > 0.2, "independent between actions"
    with pytest.raises(ValueError, match="control share"):
        hold_out(frame, 1.0, "salt")


def test_list_summary_counts_cost_of_treatment_only() -> None:
    lists = _candidates().assign(group=[TREATMENT, CONTROL, TREATMENT, TREATMENT, CONTROL])
    table = list_summary(lists)
    assert table.loc["coupon", ["members", "treatment", "control"]].tolist() == [2, 1, 1]
    assert table.loc["coupon", "cost"] == 2.0 and table.loc["call", "cost"] == 0.0


def test_lift_recovers_a_known_effect_with_a_covering_interval() -> None:
    """Given randomised contacts whose treatment raises the response rate from 10 % to 15 %,
    when lift is measured, then the 95 % interval covers +5 points and excludes 0."""
    rng = np.random.default_rng(3)
    n = 20_000
    treated = rng.random(n) < 0.5
    responded = rng.random(n) < np.where(treated, 0.15, 0.10)
    sent = pd.Timestamp("2025-03-01", tz="UTC")
    contacts = pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(n)],
            "action_id": "coupon",
            "group": np.where(treated, TREATMENT, CONTROL),
            "sent_at": sent,
            "responded_at": np.where(responded, sent + pd.Timedelta(days=2), pd.NaT),
            "response_value": np.where(responded, 20.0, np.nan),
        }
    )
    orders = pd.DataFrame(
        {
            "member_id": ["m0", "m0", "m0"],
            "ordered_at": [sent + pd.Timedelta(days=d) for d in (-1, 3, 40)],
            "amount": [5.0, 7.0, 11.0],
            "is_return": [False, False, False],
        }
    )
    outcome = outcomes(contacts, orders, window_days=30)
    assert outcome.loc[0, "revenue"] == 7.0, "only the order inside (sent, sent + 30 days]"
    table = measure_lift(outcome).set_index("metric")
    rate = table.loc["responded"]
    assert rate["ci_low"] < 0.05 < rate["ci_high"] and rate["ci_low"] > 0
    assert rate["p_value"] < 1e-6
    assert table.loc["response_value", "lift"] == pytest.approx(20 * rate["lift"])


def test_outcomes_without_the_optional_response_columns_count_no_responses() -> None:
    # Given a contacts export with only the required columns (no responded_at, response_value)
    contacts = pd.DataFrame(
        {
            "member_id": ["m0", "m1"],
            "action_id": "coupon",
            "group": [TREATMENT, CONTROL],
            "sent_at": pd.Timestamp("2025-03-01", tz="UTC"),
        }
    )

    # When outcomes are measured
    outcome = outcomes(contacts, None, window_days=30)

    # Then no contact responded and none has a response value
    assert outcome["responded"].tolist() == [0.0, 0.0], "absent responded_at means no response"
    assert outcome["response_value"].tolist() == [0.0, 0.0], "absent value means 0 currency"
