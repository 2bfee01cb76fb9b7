"""Lifecycle features: what the stage engine reads, including the won-back signal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from features.families.lifecycle import compute_lifecycle, recency_bucket
from features.snapshot import register_frames
from memberscore.contract import TABLES, validate

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
Rows = Sequence[dict[str, Any]]
DEFAULTS: dict[str, dict[str, Any]] = {
    "members": {
        "registered_at": "2024-01-01T00:00:00Z",
        "acquisition_channel": "web",
        "region": "north",
        "tier": "platinum",  # the export-time tier: features must never read it
        "consent_marketing": True,
        "consent_personalization": True,
    },
    "orders": {
        "amount": 10.0,
        "discount": 0.0,
        "items": 1,
        "channel": "online",
        "is_return": False,
    },
    "events": {},
    "contacts": {"action_id": "a1", "channel": "email", "group": "treatment"},
}


def table(name: str, rows: Rows) -> pd.DataFrame:
    """Canonical rows of table `name`: defaults, then `rows`, parsed by the data contract."""
    spec = TABLES[name]
    filled = [{**DEFAULTS[name], spec.key: f"{name[0]}{i}", **row} for i, row in enumerate(rows)]
    checked = validate(pd.DataFrame(filled, columns=spec.names), spec)
    assert checked.rejected.empty, checked.rejected.to_dict("records")
    return checked.accepted


def connect(
    members: Rows, orders: Rows = (), events: Rows = (), contacts: Rows = ()
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the four canonical views over the given rows."""
    tables = zip(TABLES, (members, orders, events, contacts), strict=True)
    return register_frames(duckdb.connect(), *(table(n, r) for n, r in tables))


def day(text: str) -> str:
    """An ISO timestamp in UTC for the builder."""
    return f"{text}T00:00:00Z" if "T" not in text else f"{text}Z"


def test_won_back_after_a_long_gap() -> None:
    # Given orders 400 and 190 days before and 10 days before the cutoff (gaps 210 and 180)
    con = connect(
        [{"member_id": "back", "registered_at": day("2023-01-01")}, {"member_id": "new"}],
        [
            {"member_id": "back", "ordered_at": day("2023-04-28")},  # 400 d
            {"member_id": "back", "ordered_at": day("2023-11-24")},  # 190 d
            {"member_id": "back", "ordered_at": day("2024-05-22")},  # 10 d
        ],
    )
    # When computing the lifecycle family
    out = compute_lifecycle(con, AS_OF).set_index("member_id")
    back, new = out.loc["back"], out.loc["new"]
    # Then
    assert back["last_gap_days"] == 180.0 and back["max_gap_days"] == 210.0
    assert back["won_back"], "the last order came after a 180-day gap"
    assert back["has_ordered"] and back["orders_count_all"] == 3
    assert back["days_to_first_order"] == 117.0, "registered 2023-01-01, first order 04-28"
    assert back["is_active_90d"] and back["recency_bucket"] == "0_30"
    assert back["frequency_prev_90d"] == 0, "nothing 90 to 180 days ago"
    assert not new["has_ordered"] and not new["won_back"] and not new["is_active_90d"]
    assert new["recency_bucket"] == "none" and pd.isna(new["days_to_first_order"])
    assert new["days_since_registration"] == 152.0


def test_recency_bucket_edges() -> None:
    days = pd.Series([0.0, 30.0, 30.5, 90.0, 180.0, 365.0, 366.0, None])
    expected = ["0_30", "0_30", "31_90", "31_90", "91_180", "181_365", "365_plus", "none"]
    assert recency_bucket(days).tolist() == expected, "upper bounds are inclusive"
