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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from features.btyd.outlook import BtydOutlook
from features.families.btyd import fit_family
from memberscore.errors import MemberscoreError
from training.core import labels
from training.core.season import Season, season
from training.core.tasks import Task
from training.models.prior import BtydPrior, naive_forecast, offsets_of

EVENT_TIMESTAMP = "event_timestamp"
KEYS = (labels.MEMBER_ID, labels.CUTOFF)
LABEL_COLUMNS = ("churned", "activated", "spend", "clv", "purchased", "orders")
PRIOR_TASKS = ("churn", "clv")  # populations of buyers: their models start from BTYD
MIN_REPEAT_BUYERS = 100  # a BTYD fit on fewer repeat buyers is mostly noise


class NotEnoughHistory(MemberscoreError):
    """Too few labelable cutoffs (or purchases) to train, calibrate and evaluate honestly."""


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


def with_repeat_buyers(
    orders: pd.DataFrame, cutoffs: Sequence[pd.Timestamp], minimum: int = MIN_REPEAT_BUYERS
) -> list[pd.Timestamp]:
    """The cutoffs before which at least `minimum` members made two or more purchase orders:
    earlier ones cannot give the BTYD forecast the models start from."""
    buys = orders.loc[~orders["is_return"].astype(bool)].sort_values("ordered_at")
    second = buys.groupby(labels.MEMBER_ID)["ordered_at"].nth(1)
    at = pd.DatetimeIndex(pd.to_datetime(second, utc=True)).sort_values()
    return [c for c in cutoffs if at.searchsorted(labels.as_cutoff(c), "left") >= minimum]


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


@dataclass
class TrainingData:
    """Features of every (member, cutoff) and what labels and offsets at any horizon come from.

    `features` holds the keys and feature columns, one row per member of the task's population
    at each cutoff (the population does not depend on the horizon). `priors` holds the BTYD
    outlook fitted at each cutoff on the rows of that cutoff (data before it only; empty for
    activation, whose members have no purchase) and `seasons` the season profile of each
    cutoff (`training.core.season`). Labels are computed from the orders on request and kept.
    """

    task: Task
    features: pd.DataFrame
    members: pd.DataFrame
    orders: pd.DataFrame
    monthly_discount_rate: float
    priors: Mapping[pd.Timestamp, BtydOutlook | None]
    seasons: Mapping[pd.Timestamp, Season]
    _labels: dict[tuple[pd.Timestamp, int], pd.DataFrame] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """The model's feature columns."""
        return feature_columns(self.features)

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        """Every cutoff with rows, oldest first."""
        return sorted(self.features[labels.CUTOFF].unique())

    def labels(self, cutoff: pd.Timestamp, days: int) -> pd.DataFrame:
        """The task's labels at `cutoff` over `days` (UnlabelableCutoff past the data)."""
        key = (cutoff, days)
        if key not in self._labels:
            end = labels.observed_until(self.orders)
            self._labels[key] = task_labels(
                self.task, self.members, self.orders, cutoff, days, end,
                self.monthly_discount_rate,
            )  # fmt: skip
        return self._labels[key]

    def rows(self, cutoffs: Sequence[pd.Timestamp], days: int) -> pd.DataFrame:
        """Feature rows at `cutoffs` with the labels of the `days` after each, in cutoff order."""
        parts = []
        for cutoff in sorted(cutoffs):
            at = self.features.loc[self.features[labels.CUTOFF] == cutoff]
            found = self.labels(cutoff, days).drop(columns=[labels.CUTOFF])
            merged = at.merge(found, on=labels.MEMBER_ID, how="inner", validate="one_to_one")
            parts.append(merged)
        return pd.concat(parts, ignore_index=True)

    def prior(self, cutoff: pd.Timestamp, days: int) -> BtydPrior | None:
        """The BTYD prior of `cutoff` over its `days` window in average-rate days."""
        outlook = self.priors.get(cutoff)
        if outlook is None:
            return None
        return BtydPrior(outlook, self.seasons[cutoff].effective_days(cutoff, days))

    def forecasts(self, rows: pd.DataFrame, days: int) -> dict[str, pd.DataFrame] | None:
        """The BTYD (`btyd`) and naive (`baseline`) forecasts of `rows` over `days`, on the
        positions of the rows; None for a task without a prior."""
        if not self.priors:
            return None
        rows = rows.reset_index(drop=True)
        btyd, naive = [], []
        for value in rows[labels.CUTOFF].unique():
            cutoff = labels.as_cutoff(value)
            at = rows.loc[rows[labels.CUTOFF] == cutoff]
            prior = self.prior(cutoff, days)
            if prior is None:
                raise NotEnoughHistory(
                    f"no BTYD model could be fitted at cutoff {cutoff.date()}: nobody had "
                    "made a repeat purchase yet; use later cutoffs"
                )
            btyd.append(prior.forecast(at).set_axis(at.index))
            naive.append(naive_forecast(at, days).set_axis(at.index))
        return {
            "btyd": pd.concat(btyd).loc[rows.index].reset_index(drop=True),
            "baseline": pd.concat(naive).loc[rows.index].reset_index(drop=True),
        }

    def offsets(self, rows: pd.DataFrame, days: int) -> pd.DataFrame | None:
        """Offsets (`training.models.prior.OFFSETS`) of `rows` over `days`; None without
        priors."""
        found = self.forecasts(rows, days)
        return None if found is None else offsets_of(found["btyd"])


def training_data(
    task: Task,
    members: pd.DataFrame,
    orders: pd.DataFrame,
    features: pd.DataFrame,
    monthly_discount_rate: float,
) -> TrainingData:
    """`TrainingData` of feature rows (keys, features, labels dropped): a BTYD outlook fitted
    per cutoff for churn and clv, and each cutoff's season profile."""
    keep = [c for c in features.columns if c not in LABEL_COLUMNS]
    frame = features[keep].reset_index(drop=True)
    cutoffs = sorted(frame[labels.CUTOFF].unique())
    priors: dict[pd.Timestamp, BtydOutlook | None] = {}
    if task.name in PRIOR_TASKS:
        for cutoff in cutoffs:
            priors[pd.Timestamp(cutoff)] = fit_family(frame.loc[frame[labels.CUTOFF] == cutoff])
    seasons = {pd.Timestamp(c): season(orders, pd.Timestamp(c)) for c in cutoffs}
    return TrainingData(task, frame, members, orders, monthly_discount_rate, priors, seasons)
