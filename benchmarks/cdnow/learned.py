"""Label-learning rows of the CDNOW benchmark: LightGBM on RFM + BTYD features.

Honest protocol (no holdout label is read for training):
- training origins 1997-05-31, 1997-06-15 and 1997-06-30; at each, features from purchases up
  to and including the origin (BTYD models fitted on that data only) and labels over the next
  13 weeks, which all end by the calibration end 1997-09-30;
- prediction: the same features as of 1997-09-30, for the 39-week holdout.
A 13-week label cannot be scaled to 39 weeks by a constant (dropout compounds), so every
LightGBM model learns a *correction* of the Pareto/NBD + Gamma-Gamma forecast: its raw score
starts from the BTYD forecast of the label's horizon (`init_score`: logit P(no purchase),
log E[purchases], log E[spend]) and is applied at 39 weeks on top of the 39-week forecast.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from benchmarks.cdnow.data import CALIBRATION_END, COLUMNS, HOLDOUT_WEEKS
from features.btyd import holdout_summary, purchase_days, rfm_summary
from features.btyd.outlook import fit_outlook, outlook_frame

ORIGINS = (pd.Timestamp("1997-05-31"), pd.Timestamp("1997-06-15"), pd.Timestamp("1997-06-30"))
LABEL_WEEKS = 13.0
FEATURE_WEEKS = 13.0  # BTYD outputs used as features always cover 13 weeks (same at fit/predict)
BTYD_KIND = "paretonbd"
ROUNDS = 150
PARAMS = {
    "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 200, "lambda_l2": 10.0,
    "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1, "seed": 42,
    "num_threads": 1, "deterministic": True, "force_row_wise": True, "verbosity": -1,
}  # fmt: skip
EPS = 1e-6


@dataclass(frozen=True)
class OriginData:
    """Features (index = customer) and the BTYD offsets of one origin at the target horizon."""

    features: pd.DataFrame
    offsets: pd.DataFrame


def _window(days: pd.DataFrame, as_of: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """Purchase days in the `weeks` weeks up to and including `as_of`."""
    return days.loc[days["day"] > as_of - pd.Timedelta(weeks=weeks)]


def rfm_frame(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """RFM summary (weeks) plus order-level features from purchases up to `as_of` inclusive."""
    summary = rfm_summary(transactions, observation_end=as_of, **COLUMNS)
    days = purchase_days(transactions, **COLUMNS)
    days = days.loc[days["day"] <= as_of]
    by_day = days.groupby("customer")["value"]
    raw = transactions.loc[transactions["date"] <= as_of].groupby("customer_id")
    out = summary.assign(
        gap=summary["T"] - summary["recency"],
        first_value=by_day.first(),
        last_value=by_day.last(),
        total_value=by_day.sum(),
        cds=raw["number_of_cds"].sum(),
        first_cds=raw["number_of_cds"].first(),
        orders=raw.size(),
    )
    for weeks in (4, 13):
        recent = _window(days, as_of, weeks).groupby("customer")["value"]
        out[f"days_{weeks}w"] = recent.size().reindex(out.index, fill_value=0).astype(float)
        out[f"value_{weeks}w"] = recent.sum().reindex(out.index, fill_value=0.0)
    out["cds_per_day"] = out["cds"] / (out["frequency"] + 1.0)
    out["price_per_cd"] = out["total_value"] / out["cds"].clip(lower=1)
    out["mean_gap"] = (out["recency"] / out["frequency"]).where(out["frequency"] > 0)
    out["overdue"] = out["gap"] - out["mean_gap"]
    return out


def origin_data(transactions: pd.DataFrame, as_of: pd.Timestamp, weeks: float) -> OriginData:
    """Features as of `as_of` and the BTYD forecast over `weeks` weeks (the offsets)."""
    frame = rfm_frame(transactions, as_of)
    outlook = fit_outlook(frame, BTYD_KIND)
    fixed = outlook_frame(outlook, frame, FEATURE_WEEKS).add_prefix("btyd_")
    target = outlook_frame(outlook, frame, weeks)
    offsets = pd.DataFrame(
        {
            "churn": logit(np.clip(target["p_no_purchase"], EPS, 1 - EPS)),
            "count": np.log(target["expected_purchases"] + EPS),
            "spend": np.log(target["expected_spend"] + EPS),
        },
        index=frame.index,
    )
    return OriginData(frame.join(fixed), offsets)


def training_set(
    transactions: pd.DataFrame, origins: Sequence[pd.Timestamp], weeks: float
) -> tuple[OriginData, pd.DataFrame]:
    """Stacked origin data and labels (purchase days and $ in the `weeks` after each origin)."""
    parts, labels = [], []
    for origin in origins:
        end = origin + pd.Timedelta(weeks=weeks)
        if end > CALIBRATION_END:
            raise ValueError(f"origin {origin.date()}: its label window reads holdout data")
        data = origin_data(transactions, origin, weeks)
        labels.append(
            holdout_summary(
                transactions,
                start=origin + pd.Timedelta(days=1),
                end=end,
                customers=data.features.index,
                **COLUMNS,
            )
        )
        parts.append(data)
    stacked = OriginData(
        pd.concat([p.features for p in parts]), pd.concat([p.offsets for p in parts])
    )
    return stacked, pd.concat(labels)


@dataclass(frozen=True)
class LearnedModels:
    """Three LightGBM corrections of the BTYD forecast: churn, purchase count, spend."""

    churn: lgb.Booster
    count: lgb.Booster
    spend: lgb.Booster

    def predict(self, data: OriginData) -> pd.DataFrame:
        """P(no purchase), expected and median purchase days, expected spend ($)."""
        raw = {
            name: getattr(self, name).predict(data.features, raw_score=True) + data.offsets[name]
            for name in ("churn", "count", "spend")
        }
        p_none = expit(raw["churn"])
        count = np.exp(raw["count"])
        return pd.DataFrame(
            {
                "p_no_purchase": p_none,
                "expected_purchases": count,
                "median_purchases": median_count(p_none, count),
                "expected_spend": np.exp(raw["spend"]),
            },
            index=data.features.index,
        )


def median_count(p_none: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Median of a hurdle count: 0 when P(none) ≥ ½, else the median of a Poisson with the mean
    given at least one purchase (at least 1). The point forecast that minimises absolute error."""
    given_any = np.asarray(mean) / np.clip(1.0 - np.asarray(p_none), 1e-3, None)
    positive = np.maximum(stats.poisson.median(given_any), 1.0)
    return np.where(np.asarray(p_none) >= 0.5, 0.0, positive)


def fit_learned(data: OriginData, labels: pd.DataFrame) -> LearnedModels:
    """Fit the three corrections, each starting from its BTYD offset."""
    count = labels["holdout_count"].to_numpy()
    targets = {
        "churn": ("binary", (count == 0).astype(float)),
        "count": ("poisson", count),
        "spend": ("tweedie", labels["holdout_value"].to_numpy()),
    }
    boosters = {
        name: lgb.train(
            {**PARAMS, "objective": objective},
            lgb.Dataset(data.features, y, init_score=data.offsets[name].to_numpy()),
            ROUNDS,
        )
        for name, (objective, y) in targets.items()
    }
    return LearnedModels(**boosters)


def learned_predictions(transactions: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Holdout predictions as of 1997-09-30 (index = customer) and the training seconds."""
    started = time.perf_counter()
    data, labels = training_set(transactions, ORIGINS, LABEL_WEEKS)
    models = fit_learned(data, labels)
    seconds = time.perf_counter() - started
    return models.predict(origin_data(transactions, CALIBRATION_END, HOLDOUT_WEEKS)), seconds
