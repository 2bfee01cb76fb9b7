"""BTYD outlook per customer: a transaction model and Gamma-Gamma fitted together as of one date.

Pure (no I/O). `fit_outlook` fits on an `rfm_summary` frame computed as of a cutoff from data
before it only; `outlook_frame` turns the fit into per-customer outputs over a horizon (weeks).
The same outputs are model features (`features.families.btyd`) and the served outlook (`serving`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.btyd.base import BaseTransactionModel, ConvergenceError, Summary, summary_column
from features.btyd.bgnbd import BetaGeoModel
from features.btyd.gammagamma import GammaGammaModel
from features.btyd.paretonbd import ParetoNBDModel

TRANSACTION_MODELS: dict[str, type[BaseTransactionModel]] = {
    "bgnbd": BetaGeoModel,
    "paretonbd": ParetoNBDModel,
}
SPEND_RANGE = 3.0  # plausible population mean order value / observed mean repeat value
OUTLOOK_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "p_no_purchase",
    "median_weeks_to_next",
    "expected_order_value",
    "expected_spend",
)


@dataclass(frozen=True)
class BtydOutlook:
    """A fitted transaction model (`kind` in `TRANSACTION_MODELS`) and its Gamma-Gamma model.

    `spend` is None when the data had no repeat purchase worth more than 0 or the Gamma-Gamma
    fit did not converge; expected order values then fall back to each customer's own mean
    repeat value, or first-purchase value when there is none.
    """

    kind: str
    transactions: BaseTransactionModel
    spend: GammaGammaModel | None

    def params(self) -> dict[str, float]:
        """Fitted parameters, prefixed `tx_` (transaction model) and `gg_` (Gamma-Gamma)."""
        out = {f"tx_{k}": float(v) for k, v in self.transactions.params_.items()}
        if self.spend is not None:
            out |= {f"gg_{k}": float(v) for k, v in self.spend.params_.items()}
        return out


def fit_outlook(summary: pd.DataFrame, kind: str = "bgnbd") -> BtydOutlook:
    """Fit the `kind` transaction model and Gamma-Gamma on one `rfm_summary` frame (weeks)."""
    if kind not in TRANSACTION_MODELS:
        raise ValueError(f"unknown BTYD model {kind!r}; choose one of {sorted(TRANSACTION_MODELS)}")
    transactions = TRANSACTION_MODELS[kind]().fit(summary)
    repeaters = (summary["frequency"] > 0) & (summary["monetary"] > 0)
    spend = _fit_spend(summary) if repeaters.any() else None
    if spend is not None and not plausible_spend(spend, summary.loc[repeaters, "monetary"]):
        spend = None
    return BtydOutlook(kind, transactions, spend)


def plausible_spend(spend: GammaGammaModel, monetary: pd.Series) -> bool:
    """False when the Gamma-Gamma population mean order value p v / (q − 1) is infinite
    (q ≤ 1) or more than `SPEND_RANGE` times off the repeat buyers' own mean: a fit on a few
    repeat buyers can put q just above 1 and the population mean at many times any observed
    order, which would multiply into every forecast."""
    p, q, v = (spend.params_[k] for k in ("p", "q", "v"))
    if q <= 1.0:
        return False
    ratio = p * v / (q - 1.0) / float(monetary.mean())
    return 1.0 / SPEND_RANGE <= ratio <= SPEND_RANGE


def _fit_spend(summary: pd.DataFrame) -> GammaGammaModel | None:
    """Gamma-Gamma on the repeat buyers, or None when its likelihood does not converge (a few
    repeat buyers with nearly equal values leave p, q and v unidentified)."""
    try:
        return GammaGammaModel().fit(summary)
    except ConvergenceError:
        return None


def outlook_from_params(kind: str, params: dict[str, float]) -> BtydOutlook:
    """A `BtydOutlook` rebuilt from `BtydOutlook.params()` (e.g. read back from the registry)."""
    transactions: Any = TRANSACTION_MODELS[kind]()
    transactions.params_ = {name: float(params[f"tx_{name}"]) for name in transactions.param_names}
    spend = None
    if "gg_p" in params:
        spend = GammaGammaModel()
        spend.params_ = {name: float(params[f"gg_{name}"]) for name in ("p", "q", "v")}
    return BtydOutlook(kind, transactions, spend)


def outlook_frame(
    outlook: BtydOutlook, summary: pd.DataFrame, horizon_weeks: float
) -> pd.DataFrame:
    """Per-customer outlook over the `horizon_weeks` weeks after the summary's as-of date.

    Columns (`OUTLOOK_COLUMNS`): P(alive); expected purchase days and P(no purchase) in the
    horizon; median weeks to the next purchase if alive; expected order value and expected
    spend in the horizon (currency of `monetary`). The summary may contain `first_value` (the
    first purchase's value) for the fallback when no Gamma-Gamma model was fitted.
    """
    frame = outlook.transactions.predict_frame(summary, horizon_weeks)
    value = expected_order_value(outlook, summary)
    frame["expected_order_value"] = value
    frame["expected_spend"] = frame["expected_purchases"].to_numpy() * value
    return frame[list(OUTLOOK_COLUMNS)]


def expected_order_value(outlook: BtydOutlook, summary: Summary) -> np.ndarray:
    """E[value of a future purchase] per customer: the Gamma-Gamma estimate, or without one
    the customer's own mean repeat value (first purchase value when there is none)."""
    if outlook.spend is not None:
        return np.asarray(outlook.spend.conditional_expected_spend(summary), dtype=float)
    monetary = summary_column(summary, "monetary")
    own = np.asarray(summary.get("first_value", monetary), dtype=float)
    return np.where(monetary > 0, monetary, own)
