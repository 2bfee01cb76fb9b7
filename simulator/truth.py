"""Ground truth for evaluation: the hidden lives as tables, and the true P(alive), expected
purchases and expected spend of each member for any cutoff and horizon.

The functions read the truth members table (`latent_frame`) and the canonical orders table, so
evaluation code can call them on the files under `truth_dir` and `raw_dir`. Cutoffs are UTC
timestamps: "as of" a cutoff means using orders at or before it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator.calendar import season_multiplier, to_timestamps
from simulator.campaigns import SEGMENTS, ContactLog
from simulator.params import ACTIONS, SimulationParams
from simulator.population import Latent, Population
from simulator.tables import label_series, text_series

# File names of the ground truth in `Settings.truth_dir`, as `pipelines.simulate` writes them.
TRUTH_FILES = {
    "members": "members.parquet",
    "alive_intervals": "alive_intervals.parquet",
    "contacts": "contacts.parquet",
    "seasonality": "seasonality.parquet",
    "simulation": "simulation.json",
}


def latent_frame(pop: Population, latent: Latent, members: pa.Array, start: date) -> pd.DataFrame:
    """One row per member: hidden rates (per day), lives (timestamps, NaT = never), spend."""
    stamp = lambda days: to_timestamps(start, days)  # noqa: E731
    return pd.DataFrame(
        {
            "member_id": text_series(members),
            "registered_at": stamp(pop.registered),
            "activation_at": stamp(latent.activation),
            "activation_by_campaign": latent.activation_by_campaign,
            "purchase_rate_per_day": latent.rate,
            "dropout_rate_per_day": latent.dropout,
            "death_at": stamp(latent.death),
            "revival_at": stamp(latent.revival),
            "revival_by_campaign": latent.revival_by_campaign,
            "death2_at": stamp(latent.death2),
            "mean_spend": latent.mean_spend,
            "engagement_per_day": latent.engagement,
            "fade_days": latent.fade_days,
            "birth_month": pop.birth_month.astype(np.int64),
            "share_online": latent.shares[:, 0],
            "share_store": latent.shares[:, 1],
            "share_app": latent.shares[:, 2],
        }
    )


def alive_intervals_frame(latent: Latent, members: pa.Array, start: date) -> pd.DataFrame:
    """Half-open intervals [alive_from, alive_until) in which each member is alive (life 1 or 2);
    members who never activate have none. Bounds may lie after the window."""
    first = np.flatnonzero(np.isfinite(latent.activation))
    second = np.flatnonzero(np.isfinite(latent.revival))
    rows = np.r_[first, second]
    frame = pd.DataFrame(
        {
            "member_id": text_series(members.take(pa.array(rows))),
            "life": np.r_[np.ones(len(first), np.int64), np.full(len(second), 2)],
            "alive_from": to_timestamps(
                start, np.r_[latent.activation[first], latent.revival[second]]
            ),
            "alive_until": to_timestamps(start, np.r_[latent.death[first], latent.death2[second]]),
        }
    )
    return frame.sort_values(["member_id", "life"], kind="stable").reset_index(drop=True)


def contacts_truth_frame(
    contacts: ContactLog, contact_ids: pa.Array, members: pa.Array, params: SimulationParams
) -> pd.DataFrame:
    """Per contact: logging propensities, hidden segment, true uplift (P(incremental order within
    the response window | sent)), expected incremental value and cost (currency)."""
    return pd.DataFrame(
        {
            "contact_id": text_series(contact_ids),
            "member_id": text_series(members.take(pa.array(contacts.member))),
            "action_id": label_series(contacts.action, ACTIONS),
            "group": label_series(np.where(contacts.treated, 0, 1), ("treatment", "control")),
            "propensity_action": np.full(len(contacts), params.action_propensity),
            "propensity_treatment": np.full(len(contacts), params.treatment_share),
            "segment": label_series(contacts.segment, SEGMENTS),
            "true_uplift": contacts.uplift,
            "expected_incremental_value": contacts.value,
            "cost": contacts.cost,
            "incremental_order": contacts.effect,
        }
    )


def _utc(at: pd.Timestamp | date | str) -> pd.Timestamp:
    stamp = pd.Timestamp(at)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _indexed(truth: pd.DataFrame, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.Index(truth["member_id"].astype(str), name="member_id"))


def alive_at(truth: pd.DataFrame, at: pd.Timestamp | date | str) -> pd.Series:
    """True where the member is (in truth) alive at `at`, from the truth members table."""
    t = _utc(at)
    first = (truth["activation_at"] <= t) & (t < truth["death_at"])
    second = (truth["revival_at"] <= t) & (t < truth["death2_at"])
    return _indexed(truth, (first | second).to_numpy(dtype=bool))


def _last_purchase_days(
    truth: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp
) -> np.ndarray:
    """Days from each member's last order at or before `cutoff` to the cutoff (NaN if none)."""
    bought = orders.loc[~orders["is_return"].astype(bool) & (orders["ordered_at"] <= cutoff)]
    last = bought.groupby(bought["member_id"].astype(str))["ordered_at"].max()
    last = last.reindex(truth["member_id"].astype(str))
    gap = pd.Series(cutoff - last).dt.total_seconds()
    return gap.to_numpy(dtype=float) / 86_400.0


def _season_integral(cutoff: pd.Timestamp, back: np.ndarray) -> np.ndarray:
    """∫ season(t) dt from `back` days before `cutoff` up to the cutoff (season-days)."""
    span = int(np.ceil(np.nanmax(back, initial=0.0))) + 2
    origin = cutoff - pd.Timedelta(days=span)
    start = origin.normalize()
    season = season_multiplier(pd.date_range(start, periods=span + 2, freq="D"))
    cumulative = np.r_[0.0, np.cumsum(season)]
    grid = np.arange(len(cumulative), dtype=float)
    at_cutoff = (cutoff - start) / pd.Timedelta(days=1)
    from_day = at_cutoff - np.nan_to_num(back, nan=0.0)
    return np.interp(at_cutoff, grid, cumulative) - np.interp(from_day, grid, cumulative)


def p_alive(
    truth: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp | date | str
) -> pd.Series:
    """P(alive at cutoff) knowing the member's true purchase and dropout rates and the orders up
    to the cutoff (individual Pareto/NBD, silence measured in season-adjusted days); 0 for
    members without an order yet. Later win-backs are ignored."""
    t = _utc(cutoff)
    gap = _last_purchase_days(truth, orders, t)
    lam = truth["purchase_rate_per_day"].to_numpy(dtype=float)
    mu = truth["dropout_rate_per_day"].to_numpy(dtype=float)
    exposure = lam * _season_integral(t, gap)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        effective = np.where(gap > 0, exposure / gap, lam)
        odds = mu / (effective + mu) * np.expm1(exposure + mu * np.nan_to_num(gap))
        p = 1.0 / (1.0 + odds)
    return _indexed(truth, np.where(np.isnan(gap), 0.0, p))


def _discounted_season(
    start: pd.Timestamp, horizon_days: int, lam: np.ndarray, mu: np.ndarray, since: np.ndarray
) -> np.ndarray:
    """λ ∫ season(t) e^(−μ(t − since)) dt over the horizon from `start`, only where t > since
    (days after `start`); daily midpoint rule (expected orders)."""
    season = season_multiplier(pd.date_range(start.normalize(), periods=horizon_days, freq="D"))
    total = np.zeros(len(lam))
    for day, level in enumerate(season):
        mid = day + 0.5
        total += np.where(mid > since, level * np.exp(-mu * np.maximum(mid - since, 0.0)), 0.0)
    return lam * total


def expected_purchases(
    truth: pd.DataFrame,
    orders: pd.DataFrame,
    cutoff: pd.Timestamp | date | str,
    horizon_days: int,
) -> pd.Series:
    """True expected number of orders in (cutoff, cutoff + horizon_days]: P(alive) × rate ×
    seasonality × survival for buyers; for members without an order yet, the first order at their
    true activation time (if inside the horizon) and the purchases after it."""
    t = _utc(cutoff)
    lam = truth["purchase_rate_per_day"].to_numpy(dtype=float)
    mu = truth["dropout_rate_per_day"].to_numpy(dtype=float)
    alive = p_alive(truth, orders, t).to_numpy()
    buyer = ~np.isnan(_last_purchase_days(truth, orders, t))
    current = alive * _discounted_season(t, horizon_days, lam, mu, np.zeros(len(lam)))
    until = (truth["activation_at"] - t) / pd.Timedelta(days=1)
    starts = until.to_numpy(dtype=float, na_value=np.inf)
    soon = ~buyer & (starts > 0) & (starts <= horizon_days)
    later = np.where(soon, starts, np.inf)
    future = np.where(soon, 1.0 + _discounted_season(t, horizon_days, lam, mu, later), 0.0)
    return _indexed(truth, np.where(buyer, current, future))


def expected_spend(
    truth: pd.DataFrame,
    orders: pd.DataFrame,
    cutoff: pd.Timestamp | date | str,
    horizon_days: int,
) -> pd.Series:
    """True expected gross spend (currency, before discounts and refunds) in the horizon."""
    purchases = expected_purchases(truth, orders, cutoff, horizon_days)
    return purchases * truth["mean_spend"].to_numpy(dtype=float)
