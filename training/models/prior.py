"""The BTYD forecast a boosted model starts from (its offset), and the naive baseline.

A churn or spend booster does not learn a member's outlook from scratch: its raw score starts
at the Pareto/NBD (or BG/NBD) + Gamma-Gamma forecast of the same window (`init_score`), so the
trees learn a *correction* of that forecast from the member's other features. Because the
forecast has an explicit horizon, a correction learned on a short labelled window can be
carried to a longer one: the booster's output is added to the BTYD forecast of the longer
window (`training.core.horizons`). Offsets, by model:

- `no_purchase_logit`: logit P(no purchase in the window) — the churn classifier;
- `orders_log`: log E[purchases in the window] — the spend model's count booster;
- `spend_log`: log E[spend in the window] — the spend model's spend and interval boosters.

The BTYD inputs are the rfm columns of the feature matrix (`features.families.btyd.btyd_inputs`),
so serving computes the offset from the same row it scores. Members without a purchase (not in
the churn/clv populations) get the offsets of a member with `FALLBACK` outlook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from features.btyd.outlook import BtydOutlook, expected_order_value, outlook_from_params
from features.btyd.summary import DAYS_PER_WEEK, order_summary
from features.families.btyd import INPUT_COLUMNS

OFFSETS = ("no_purchase_logit", "orders_log", "spend_log")
EPS = 1e-6
FALLBACK = {"p_alive": 0.5, "p_no_purchase": 0.99, "expected_purchases": EPS, "expected_spend": EPS}
FORECAST_INPUTS = ("p_no_purchase", "expected_purchases", "expected_spend")  # of the offsets
SHARED_ROWS = 64


@dataclass(frozen=True)
class BtydPrior:
    """A fitted BTYD outlook and the window (effective days, see `training.core.season`) its
    forecasts describe."""

    outlook: BtydOutlook
    horizon_days: float

    def forecast(self, features: pd.DataFrame) -> pd.DataFrame:
        """p_alive, p_no_purchase, expected_purchases and expected_spend per row of `features`
        (rfm columns `INPUT_COLUMNS`), on the positions of its rows."""
        frame = features[list(INPUT_COLUMNS)].astype(float)
        return pd.DataFrame(self.forecast_arrays([frame[c].to_numpy() for c in INPUT_COLUMNS]))

    def forecast_arrays(self, rfm: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """`forecast` of the rfm columns given as float arrays in `INPUT_COLUMNS` order: plain
        numpy, no pandas (serving calls it for every member it scores live)."""
        columns = [np.asarray(c, dtype=float) for c in rfm]
        out = {name: np.full(len(columns[0]), value) for name, value in FALLBACK.items()}
        rows = np.flatnonzero(timed(columns))
        if rows.size:
            summary = order_summary(*(c[rows] for c in columns))
            model, weeks = self.outlook.transactions, self.horizon_days / DAYS_PER_WEEK
            alive = model.conditional_probability_alive(summary)
            expected = model.conditional_expected_purchases(summary, weeks, alive)
            out["p_alive"][rows] = alive
            out["p_no_purchase"][rows] = model.probability_no_purchase(summary, weeks)
            out["expected_purchases"][rows] = expected
            value = expected_order_value(self.outlook, valued(summary))
            spend = expected * value
            out["expected_spend"][rows] = np.where(np.isfinite(spend), spend, EPS)
        return out

    def offsets(self, features: pd.DataFrame) -> pd.DataFrame:
        """The `OFFSETS` columns per row of `features` (see the module docstring)."""
        return offsets_of(self.forecast(features))

    def offsets_matrix(self, matrix: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
        """`offsets` of an encoded matrix whose columns are `names` (the serving path)."""
        return pd.DataFrame(self.offset_columns(matrix, names))

    def offset_columns(self, matrix: np.ndarray, names: Sequence[str]) -> Mapping[str, np.ndarray]:
        """`offsets_matrix` as read-only arrays by name, without a frame (~0.1 ms a call).

        A matrix of up to `SHARED_ROWS` rows (a live request) is looked up in a small cache of
        recent results first: the models of one bundle carry equal priors, so a member's
        forecast over one window is computed once for every model forecasting that window."""
        index = {name: i for i, name in enumerate(names)}
        missing = [c for c in INPUT_COLUMNS if c not in index]
        if missing:
            raise ValueError(f"the model's features lack the rfm column(s) {', '.join(missing)}")
        rfm = np.ascontiguousarray(matrix[:, [index[c] for c in INPUT_COLUMNS]], dtype=float)
        if len(rfm) <= SHARED_ROWS:
            return _shared_offsets(self.same_forecast, rfm.tobytes(), len(rfm))
        return offset_arrays(self.forecast_arrays(list(rfm.T)))

    @cached_property
    def same_forecast(self) -> SameForecast:
        """This prior compared by what it forecasts (kind, parameters, window)."""
        params = tuple(sorted(self.outlook.params().items()))
        return SameForecast((self.outlook.kind, params, self.horizon_days), self)

    def document(self) -> dict[str, Any]:
        """What `from_document` rebuilds the prior from (model.json)."""
        params = self.outlook.params()
        return {"kind": self.outlook.kind, "params": params, "horizon_days": self.horizon_days}


def timed(rfm: Sequence[np.ndarray]) -> np.ndarray:
    """Rows (rfm arrays in `INPUT_COLUMNS` order) with a purchase and known purchase timing
    (days since the last and the first order): the rows a BTYD forecast exists for. An
    unknown count is no purchase; unknown timing gets the `FALLBACK` outlook too, rather than
    a NaN offset the booster would start from."""
    orders, last, first = rfm[0], rfm[1], rfm[2]
    return (orders >= 1) & np.isfinite(last) & np.isfinite(first)


def valued(summary: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`summary` with members whose order values are unknown (NaN mean or first amount)
    treated as having no repeat-order value: Gamma-Gamma gives them the population mean."""
    unknown = ~(np.isfinite(summary["monetary"]) & np.isfinite(summary["first_value"]))
    if not unknown.any():
        return summary
    out = dict(summary)
    out["frequency"] = np.where(unknown, 0.0, summary["frequency"])
    out["monetary"] = np.where(unknown, 0.0, summary["monetary"])
    return out


@dataclass(frozen=True)
class SameForecast:
    """A prior keyed by what it forecasts, so that equal priors loaded apart share results."""

    key: tuple[Any, ...]
    prior: BtydPrior = field(compare=False, repr=False)


@lru_cache(maxsize=256)
def _shared_offsets(prior: SameForecast, rfm: bytes, rows: int) -> dict[str, np.ndarray]:
    """`offset_arrays` of the rfm matrix (rows × `INPUT_COLUMNS`, as bytes), read-only."""
    columns = np.frombuffer(rfm, dtype=float).reshape(rows, len(INPUT_COLUMNS)).T
    found = offset_arrays(prior.prior.forecast_arrays(list(columns)))
    for values in found.values():
        values.setflags(write=False)
    return found


def from_document(document: dict[str, Any]) -> BtydPrior:
    """The prior saved by `BtydPrior.document`."""
    outlook = outlook_from_params(str(document["kind"]), dict(document["params"]))
    return BtydPrior(outlook, float(document["horizon_days"]))


def offsets_of(forecast: pd.DataFrame) -> pd.DataFrame:
    """Offsets (`OFFSETS`) of a forecast frame with p_no_purchase, expected_purchases and
    expected_spend columns."""
    columns = {name: forecast[name].to_numpy(dtype=float) for name in FORECAST_INPUTS}
    return pd.DataFrame(offset_arrays(columns), index=forecast.index)


def offset_arrays(forecast: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`offsets_of` on arrays: the `OFFSETS` of p_no_purchase, expected_purchases and
    expected_spend."""
    p_none = np.clip(np.asarray(forecast["p_no_purchase"], dtype=float), EPS, 1 - EPS)
    orders = np.clip(np.asarray(forecast["expected_purchases"], dtype=float), EPS, None)
    spend = np.clip(np.asarray(forecast["expected_spend"], dtype=float), EPS, None)
    return {
        "no_purchase_logit": logit(p_none),
        "orders_log": np.log(orders),
        "spend_log": np.log(spend),
    }


def naive_forecast(features: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """The baseline every model must beat: each member keeps making repeat purchases at their
    own past rate (repeat orders per day since the first order, at least a week of it) and
    average order value, as a Poisson process.

    Columns p_no_purchase = exp(−rate × days), expected_purchases = rate × days and
    expected_spend = expected_purchases × average order value, on the positions of the rows.
    """
    orders = pd.to_numeric(features["frequency"], errors="coerce").fillna(0).to_numpy(float)
    tenure = pd.to_numeric(features["days_since_first_order"], errors="coerce").to_numpy(float)
    value = pd.to_numeric(features["avg_order_value"], errors="coerce").fillna(0).to_numpy(float)
    rate = np.maximum(orders - 1.0, 0.0) / np.maximum(np.nan_to_num(tenure, nan=0.0), 7.0)
    expected = rate * horizon_days
    return pd.DataFrame(
        {
            "p_no_purchase": np.exp(-expected),
            "expected_purchases": expected,
            "expected_spend": expected * value,
        }
    )
