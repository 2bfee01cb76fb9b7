"""A synthetic lake for the feature tests: canonical rows built from a few fields each (the rest
from DEFAULTS), parsed by the data contract and registered as DuckDB views, as
`features.snapshot` reads the real lake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

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
