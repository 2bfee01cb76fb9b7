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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from features.btyd.outlook import BtydOutlook, expected_order_value, outlook_from_params
from features.families.btyd import DAYS_PER_WEEK, INPUT_COLUMNS, btyd_inputs

OFFSETS = ("no_purchase_logit", "orders_log", "spend_log")
EPS = 1e-6
FALLBACK = {"p_alive": 0.5, "p_no_purchase": 0.99, "expected_purchases": EPS, "expected_spend": EPS}


@dataclass(frozen=True)
class BtydPrior:
    """A fitted BTYD outlook and the window (effective days, see `training.core.season`) its
    forecasts describe."""

    outlook: BtydOutlook
    horizon_days: float

    def forecast(self, features: pd.DataFrame) -> pd.DataFrame:
        """p_alive, p_no_purchase, expected_purchases and expected_spend per row of `features`
        (rfm columns `INPUT_COLUMNS`), on the positions of its rows. Plain arrays, no per-row
        pandas work: serving calls it for every member it scores live."""
        frame = features[list(INPUT_COLUMNS)].reset_index(drop=True).astype(float)
        out = {name: np.full(len(frame), value) for name, value in FALLBACK.items()}
        summary = btyd_inputs(frame)
        if not summary.empty:
            rows = summary.index.to_numpy(dtype=int)
            model, weeks = self.outlook.transactions, self.horizon_days / DAYS_PER_WEEK
            expected = model.conditional_expected_purchases(summary, weeks)
            out["p_alive"][rows] = model.conditional_probability_alive(summary)
            out["p_no_purchase"][rows] = model.probability_no_purchase(summary, weeks)
            out["expected_purchases"][rows] = expected
            out["expected_spend"][rows] = expected * expected_order_value(self.outlook, summary)
        return pd.DataFrame(out)

    def offsets(self, features: pd.DataFrame) -> pd.DataFrame:
        """The `OFFSETS` columns per row of `features` (see the module docstring)."""
        return offsets_of(self.forecast(features))

    def offsets_matrix(self, matrix: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
        """`offsets` of an encoded matrix whose columns are `names` (the serving path)."""
        index = {name: i for i, name in enumerate(names)}
        missing = [c for c in INPUT_COLUMNS if c not in index]
        if missing:
            raise ValueError(f"the model's features lack the rfm column(s) {', '.join(missing)}")
        columns = {c: matrix[:, index[c]] for c in INPUT_COLUMNS}
        return self.offsets(pd.DataFrame(columns))

    def document(self) -> dict[str, Any]:
        """What `from_document` rebuilds the prior from (model.json)."""
        params = self.outlook.params()
        return {"kind": self.outlook.kind, "params": params, "horizon_days": self.horizon_days}


def from_document(document: dict[str, Any]) -> BtydPrior:
    """The prior saved by `BtydPrior.document`."""
    outlook = outlook_from_params(str(document["kind"]), dict(document["params"]))
    return BtydPrior(outlook, float(document["horizon_days"]))


def offsets_of(forecast: pd.DataFrame) -> pd.DataFrame:
    """Offsets (`OFFSETS`) of a forecast frame with p_no_purchase, expected_purchases and
    expected_spend columns."""
    p_none = np.clip(forecast["p_no_purchase"].to_numpy(dtype=float), EPS, 1 - EPS)
    orders = np.clip(forecast["expected_purchases"].to_numpy(dtype=float), EPS, None)
    spend = np.clip(forecast["expected_spend"].to_numpy(dtype=float), EPS, None)
    return pd.DataFrame(
        {
            "no_purchase_logit": logit(p_none),
            "orders_log": np.log(orders),
            "spend_log": np.log(spend),
        },
        index=forecast.index,
    )


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
