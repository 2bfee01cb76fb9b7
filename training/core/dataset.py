"""Training sets: (member_id, cutoff) entity rows with labels, joined with features (pure).

Rolling origin: one cutoff every `every_days`, counted back from the latest labelable one, so
each model sees several past moments of the programme. The features come from Feast's
point-in-time join (`features.store.training_frame`) in the job; here they are a DataFrame
keyed by (member_id, event_timestamp) so every piece is testable without Feast.

Populations (docs/labels.md): churn and clv — members with >= 1 purchase order before the
cutoff (the score API gives spend/CLV to members with orders only); activation — members
registered before the cutoff with no purchase order yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from training.core import labels
from training.core.tasks import Task

EVENT_TIMESTAMP = "event_timestamp"
KEYS = (labels.MEMBER_ID, labels.CUTOFF)
LABEL_COLUMNS = ("churned", "activated", "spend", "clv", "purchased")


def rolling_cutoffs(
    first: pd.Timestamp, end: pd.Timestamp, horizon_days: int, every_days: int
) -> list[pd.Timestamp]:
    """Cutoffs every `every_days` ending at the latest labelable one, oldest first.

    `first` is the earliest cutoff allowed (e.g. the first feature snapshot) and `end` the
    exclusive end of the data; all timestamps at 00:00 UTC.
    """
    if every_days <= 0:
        raise ValueError(f"every must be a positive number of days, got {every_days}")
    first, latest = labels.as_cutoff(first), end - pd.Timedelta(days=horizon_days)
    if latest < first:
        raise labels.UnlabelableCutoff(
            f"no cutoff from {first.date()} has {horizon_days} days of data after it "
            f"(the data ends at {end.date()}); use a shorter horizon or more data"
        )
    count = (latest - first).days // every_days + 1
    return [latest - pd.Timedelta(days=every_days * i) for i in reversed(range(count))]


def task_labels(
    task: Task,
    members: pd.DataFrame,
    orders: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_days: int,
    end: pd.Timestamp,
    monthly_discount_rate: float,
) -> pd.DataFrame:
    """The labels of `task` at one cutoff (see `training.core.labels`)."""
    if task.name == "churn":
        return labels.churn_labels(orders, cutoff, horizon_days, end)
    if task.name == "activation":
        return labels.activation_labels(members, orders, cutoff, horizon_days, end)
    return labels.clv_labels(orders, cutoff, horizon_days, end, monthly_discount_rate)


def entity_frame(
    task: Task,
    members: pd.DataFrame,
    orders: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    horizon_days: int,
    end: pd.Timestamp,
    monthly_discount_rate: float,
) -> pd.DataFrame:
    """Labelled entity rows for every cutoff: member_id, cutoff, event_timestamp, labels.

    `event_timestamp` equals the cutoff: Feast then joins the snapshot built at that cutoff,
    whose features use data strictly before it.
    """
    parts = [
        task_labels(task, members, orders, c, horizon_days, end, monthly_discount_rate)
        for c in sorted(labels.as_cutoff(c) for c in cutoffs)
    ]
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(2, EVENT_TIMESTAMP, frame[labels.CUTOFF])
    return frame


def join_features(entities: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Entity rows with their features, matched on (member_id, event_timestamp).

    Rows without a feature row keep NaN features (LightGBM treats them as missing). Raises
    ValueError if `features` has duplicate keys, which would duplicate labels.
    """
    keys = [labels.MEMBER_ID, EVENT_TIMESTAMP]
    labels.require_columns(features, tuple(keys), "features")
    if features.duplicated(keys).any():
        raise ValueError("features hold several rows for one (member_id, event_timestamp)")
    extra = [c for c in features.columns if c not in entities.columns or c in keys]
    right = features[extra].copy()
    right[labels.MEMBER_ID] = right[labels.MEMBER_ID].astype(str)
    right[EVENT_TIMESTAMP] = _utc_ns(right[EVENT_TIMESTAMP])
    left = entities.copy()
    left[EVENT_TIMESTAMP] = _utc_ns(left[EVENT_TIMESTAMP])
    return left.merge(right, on=keys, how="left", validate="one_to_one")


def _utc_ns(values: pd.Series) -> pd.Series:
    """Timestamps as datetime64[ns, UTC], so frames from Feast and from pandas merge."""
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def feature_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Every column of `frame` that is not a key, a timestamp, a label or in `exclude`."""
    skip = {*KEYS, EVENT_TIMESTAMP, "as_of", *LABEL_COLUMNS, *exclude}
    return [c for c in frame.columns if c not in skip]
