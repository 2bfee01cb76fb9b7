"""Training sets: rolling cutoffs, entity rows with labels, the feature join."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest

from training.core import dataset
from training.core.labels import UnlabelableCutoff, as_cutoff, observed_until
from training.core.tasks import TASKS


def test_rolling_cutoffs_end_at_the_latest_labelable_cutoff() -> None:
    """Every 28 days back from data end − horizon, not before `first`, oldest first."""
    end = as_cutoff("2024-12-31")
    cutoffs = dataset.rolling_cutoffs(as_cutoff("2024-06-01"), end, 90, 28)
    assert cutoffs[-1] == end - pd.Timedelta(days=90), "the last cutoff's window just fits"
    assert all(b - a == pd.Timedelta(days=28) for a, b in pairwise(cutoffs))
    assert cutoffs[0] >= as_cutoff("2024-06-01")
    with pytest.raises(UnlabelableCutoff):
        dataset.rolling_cutoffs(as_cutoff("2024-12-01"), end, 90, 28)


def test_entity_frame_has_one_row_per_member_and_cutoff(programme) -> None:
    """event_timestamp equals the cutoff; populations follow the task."""
    members, orders = programme
    end = observed_until(orders)
    cutoffs = [as_cutoff("2023-04-01"), as_cutoff("2023-06-01")]
    churn = dataset.entity_frame(TASKS["churn"], members, orders, cutoffs, 90, end, 0.01)
    assert not churn.duplicated(["member_id", "cutoff"]).any()
    assert (churn["event_timestamp"] == churn["cutoff"]).all()
    assert set(churn["churned"].unique()) <= {0, 1}
    act = dataset.entity_frame(TASKS["activation"], members, orders, cutoffs, 30, end, 0.01)
    both = act.merge(churn, on=["member_id", "cutoff"])
    assert both.empty, "a member is either a buyer (churn) or not yet (activation) at a cutoff"


def test_join_features_is_a_left_join_on_member_and_time() -> None:
    """Entity rows keep their labels; features match on (member_id, event_timestamp)."""
    t1, t2 = as_cutoff("2024-01-01"), as_cutoff("2024-02-01")
    entities = pd.DataFrame(
        {
            "member_id": ["a", "a", "b"],
            "cutoff": [t1, t2, t1],
            "event_timestamp": [t1, t2, t1],
            "churned": [0, 1, 1],
        }
    )
    features = pd.DataFrame(
        {"member_id": ["a", "a"], "event_timestamp": [t1, t2], "recency_days": [3.0, 40.0]}
    )
    joined = dataset.join_features(entities, features)
    assert joined["recency_days"].tolist()[:2] == [3.0, 40.0]
    assert pd.isna(joined["recency_days"].iloc[2]), "no feature row → missing, row kept"
    assert dataset.feature_columns(joined) == ["recency_days"]
    with pytest.raises(ValueError, match="several rows"):
        dataset.join_features(entities, pd.concat([features, features]))
