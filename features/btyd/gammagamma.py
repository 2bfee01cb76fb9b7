"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie's note).

The value of each repeat purchase is Gamma(p, ν) with ν ~ Gamma(q, γ) across customers,
independent of the purchase process. It is fitted on the average value `monetary` of the x > 0
repeat purchase days of each customer. Money is in the currency of the summary (CDNOW: US $).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from features.btyd.base import (
    BaseTransactionModel,
    Summary,
    minimise_log_params,
    require_columns,
    summary_column,
)

WEEKS_PER_MONTH = 365.25 / 12.0 / 7.0
PARAM_NAMES = ("p", "q", "v")


def _spend_arrays(summary: Summary) -> tuple[np.ndarray, np.ndarray]:
    """Checked (frequency x, mean repeat spend m) arrays from an `rfm_summary`."""
    require_columns(summary, ("frequency", "monetary"))
    x, m = summary_column(summary, "frequency"), summary_column(summary, "monetary")
    if np.any(x < 0) or np.any(m < 0):
        raise ValueError("frequency and monetary must be non-negative")
    return x, m


def gamma_gamma_loglik_rows(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Log-density of the mean spend m of x > 0 repeat purchases (Fader & Hardie, eq. 3)."""
    p, q, v = params
    xs, index = np.unique(x, return_inverse=True)  # few distinct x: lgamma once per value
    px = p * x
    return (
        (gammaln(p * xs + q) - gammaln(p * xs) + p * xs * np.log(xs))[index]
        - gammaln(q) + q * np.log(v) + (px - 1.0) * np.log(m) - (px + q) * np.log(v + m * x)
    )  # fmt: skip


def _loglik_grad_rows(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gradient (rows × (p, q, v)) of `gamma_gamma_loglik_rows`."""
    p, q, v = params
    xs, index = np.unique(x, return_inverse=True)
    px = p * x
    psi = digamma(p * xs + q)[index]
    log_v_mx = np.log(v + m * x)
    d_p = x * ((psi - digamma(p * xs)[index]) + np.log(m * x) - log_v_mx)
    d_q = psi - digamma(q) + np.log(v) - log_v_mx
    d_v = q / v - (px + q) / (v + m * x)
    return np.column_stack([d_p, d_q, d_v])


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model fitted by maximum likelihood on repeat customers.

    Parameters p, q and v (the paper's γ, in currency units). Hyperparameter `penalizer_coef`
    adds `penalizer_coef * Σ θ²` to the mean negative log-likelihood.
    """

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef

    def fit(self, X: pd.DataFrame, y: None = None) -> GammaGammaModel:
        """Fit on the customers of `X` with frequency > 0 (columns frequency, monetary).

        Repeat customers whose repeat purchases are all worth 0 are left out: a Gamma density
        has no mass at 0 (CDNOW full data: 1 of 9,451 repeat customers).
        """
        x, m = _spend_arrays(X)
        used = (x > 0) & (m > 0)
        x, m = x[used], m[used]
        if x.size == 0:
            raise ValueError("Gamma-Gamma needs at least one customer with a repeat purchase")

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            value = -np.mean(gamma_gamma_loglik_rows(params, x, m))
            grad = -np.mean(_loglik_grad_rows(params, x, m), axis=0)
            value += self.penalizer_coef * np.sum(params**2)
            grad += 2.0 * self.penalizer_coef * params
            return float(value), grad * params

        params = minimise_log_params(objective, np.ones(3), jac=True)
        self.params_ = dict(zip(PARAM_NAMES, params.tolist(), strict=True))
        self.log_likelihood_ = float(np.sum(gamma_gamma_loglik_rows(params, x, m)))
        self.n_customers_ = int(x.size)
        return self

    def _params(self, params: dict[str, float] | None = None) -> np.ndarray:
        """Parameters (p, q, v): given ones, else the fitted ones."""
        if params is None:
            if not hasattr(self, "params_"):
                raise NotFittedError("GammaGammaModel is not fitted; call fit first")
            params = self.params_
        return np.array([params[name] for name in PARAM_NAMES], dtype=float)

    def log_likelihood(
        self, summary: pd.DataFrame, params: dict[str, float] | None = None
    ) -> float:
        """Total log-likelihood of the repeat customers (monetary > 0) of `summary` at `params`."""
        x, m = _spend_arrays(summary)
        used = (x > 0) & (m > 0)
        return float(np.sum(gamma_gamma_loglik_rows(self._params(params), x[used], m[used])))

    def conditional_expected_spend(self, summary: Summary) -> np.ndarray:
        """E[value of a future purchase | x, m] (currency): p(v + x m)/(p x + q − 1).

        A weighted mean of the population mean p v/(q − 1) and the customer's own mean m;
        customers without a repeat purchase get the population mean. Needs q > 1.
        """
        x, m = _spend_arrays(summary)
        p, q, v = self._params()
        if q <= 1.0:
            raise ValueError(f"expected spend is infinite for q = {q:.3f} ≤ 1")
        return p * (v + x * m) / (p * x + q - 1.0)

    def customer_lifetime_value(
        self,
        transaction_model: BaseTransactionModel,
        summary: pd.DataFrame,
        months: int = 12,
        monthly_discount_rate: float = 0.01,
    ) -> np.ndarray:
        """Discounted expected spend over the `months` months after the as-of date (currency).

        CLV = Σ_{k=1..months} (E[X(k)] − E[X(k−1)]) · E[spend] / (1 + d)^k, where E[X(k)] is the
        transaction model's conditional expected purchases in the first k months (one month is
        365.25/12 days, converted to weeks) and d is `monthly_discount_rate`.
        """
        spend = self.conditional_expected_spend(summary)
        value = np.zeros(len(summary))
        previous = np.zeros(len(summary))
        for k in range(1, months + 1):
            current = transaction_model.conditional_expected_purchases(summary, k * WEEKS_PER_MONTH)
            value += (current - previous) * spend / (1.0 + monthly_discount_rate) ** k
            previous = current
        return value

    def predict_frame(
        self,
        summary: pd.DataFrame,
        horizon: float,
        transaction_model: BaseTransactionModel | None = None,
    ) -> pd.DataFrame:
        """Per-customer spend outputs over the next `horizon` weeks after the as-of date.

        Columns: `expected_order_value` (currency per purchase day) and, when a fitted
        `transaction_model` is given, `expected_spend` = E[purchases in horizon] × that value.
        """
        frame = pd.DataFrame(
            {"expected_order_value": self.conditional_expected_spend(summary)},
            index=summary.index,
        )
        if transaction_model is not None:
            count = transaction_model.conditional_expected_purchases(summary, horizon)
            frame["expected_spend"] = count * frame["expected_order_value"].to_numpy()
        return frame
