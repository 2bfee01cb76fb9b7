"""A hand-made programme of five members over 2024-01-01 .. 2024-04-14 whose every KPI is
worked out by hand in the tests (short windows so that statuses change within weeks).

    m1 web    registered 01-01; buys 01-03 (50) and 01-20 (80); refund 02-05 (30)
    m2 store  registered 01-10; buys 02-20 (200) and 04-01 00:00 (150)
    m3 web    registered 02-15; never buys
    m4 store  registered 03-05; buys 03-06 (400); refund 04-12 (250)
    m5 web    registered 04-02; buys 04-10 (20)
    m9        not a member: an order on 02-10 (999) that no figure may count
"""

from __future__ import annotations

import pandas as pd

from pipelines.kpis.definitions import Definitions

AS_OF = pd.Timestamp("2024-04-15", tz="UTC")
DEFINITIONS = Definitions(
    activation_days=(7, 30),
    repurchase_days=30,
    dormant_days=30,
    churned_days=60,
    tier_thresholds=(("basic", 0.0), ("silver", 100.0), ("gold", 300.0)),
)
MEMBERS = [
    {"member_id": "m1", "registered_at": "2024-01-01T00:00:00Z", "acquisition_channel": "web"},
    {"member_id": "m2", "registered_at": "2024-01-10T00:00:00Z", "acquisition_channel": "store"},
    {"member_id": "m3", "registered_at": "2024-02-15T00:00:00Z", "acquisition_channel": "web"},
    {"member_id": "m4", "registered_at": "2024-03-05T00:00:00Z", "acquisition_channel": "store"},
    {"member_id": "m5", "registered_at": "2024-04-02T00:00:00Z", "acquisition_channel": "web"},
]


def _order(member: str, day: str, amount: float, is_return: bool = False) -> dict[str, object]:
    return {
        "member_id": member,
        "ordered_at": f"{day}T00:00:00Z",
        "amount": amount,
        "is_return": is_return,
    }


ORDERS = [
    _order("m1", "2024-01-03", 50.0),
    _order("m1", "2024-01-20", 80.0),
    _order("m1", "2024-02-05", 30.0, is_return=True),
    _order("m2", "2024-02-20", 200.0),
    _order("m2", "2024-04-01", 150.0),
    _order("m4", "2024-03-06", 400.0),
    _order("m4", "2024-04-12", 250.0, is_return=True),
    _order("m5", "2024-04-10", 20.0),
    _order("m9", "2024-02-10", 999.0),
]
