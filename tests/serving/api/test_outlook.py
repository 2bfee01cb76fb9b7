"""The served BTYD outlook: `LibraryDomain.lifetime` gives P(alive) and the next-order date
from the member's rfm features with the bundle's `btyd` model, and nothing without one."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from features.families.btyd import btyd_features, fit_family
from serving.scoring.adapters import LibraryDomain


def history() -> pd.DataFrame:
    """rfm columns of 300 members with varied purchase histories."""
    rng = np.random.default_rng(5)
    count = 1 + rng.poisson(rng.gamma(0.8, 3.0, 300))
    age = rng.uniform(30, 400, 300)
    value = rng.lognormal(3.5, 0.3, 300)
    return pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(300)],
            "frequency": count,
            "recency_days": np.where(count > 1, rng.uniform(0, 1, 300) * age, age),
            "days_since_first_order": age,
            "avg_order_value": value,
            "first_order_amount": value,
        }
    )


DOMAIN = LibraryDomain(None, None, None, {})


def test_lifetime_serves_the_btyd_family_values() -> None:
    """Given a served model, a member's P(alive) and next-order date are those of the `btyd`
    feature family computed with the same model (one logic for snapshot and API)."""
    rows = history()
    model = fit_family(rows)
    family = btyd_features(rows, model).set_index("member_id")
    as_of = datetime(2024, 5, 6, tzinfo=UTC)
    member = rows.iloc[7].to_dict()
    p_alive, next_order = DOMAIN.lifetime(member, as_of, model)
    assert p_alive == pytest.approx(family.loc["m7", "btyd_p_alive"])
    expected = pd.Timestamp(as_of) + pd.Timedelta(days=family.loc["m7", "btyd_days_to_next_order"])
    assert next_order == expected.date() and next_order >= date(2024, 5, 6)


def test_lifetime_is_unknown_without_model_cutoff_or_order() -> None:
    rows = history()
    member = rows.iloc[0].to_dict()
    as_of = datetime(2024, 5, 6, tzinfo=UTC)
    assert DOMAIN.lifetime(member, as_of, None) == (None, None), "no btyd champion"
    assert DOMAIN.lifetime(member, None, fit_family(rows)) == (None, None), "no cutoff"
    never = {"member_id": "x", "frequency": 0}
    assert DOMAIN.lifetime(never, as_of, fit_family(rows)) == (None, None), "never ordered"
