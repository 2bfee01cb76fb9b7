"""BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

While alive a customer buys at Poisson rate λ ~ Gamma(r, α) (per week); after each repeat
purchase they drop out with probability p ~ Beta(a, b). A customer without a repeat purchase
is therefore alive for sure.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from features.btyd.base import (
    BaseTransactionModel,
    Histories,
    Summary,
    histories,
    rfm_arrays,
)


def _bgnbd_terms(params: np.ndarray, h: Histories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, log alive-branch, log dropped-branch): log L = A + logaddexp(alive, dropped).

    The dropped branch (last purchase at t_x was the dropout) exists only when x > 0; it is
    −inf otherwise. Equation (6) of Fader, Hardie & Lee (2005), in logs.
    """
    r, alpha, a, b = params
    common = h.by_x(
        lambda x: gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    )
    rx = r + h.x
    alive = -rx * h.by_age(lambda age: np.log(alpha + age))
    log_odds = h.by_x(
        lambda x: np.where(x > 0, np.log(a) - np.log(np.where(x > 0, b + x - 1.0, 1.0)), -np.inf)
    )
    dropped = log_odds - rx * h.by_t_x(lambda t_x: np.log(alpha + t_x))
    return common, alive, dropped


class BetaGeoModel(BaseTransactionModel):
    """BG/NBD fitted by maximum likelihood (weeks); parameters r, alpha, a, b.

    Hyperparameter `penalizer_coef` adds `penalizer_coef * Σ θ²` to the mean negative
    log-likelihood (0 = plain maximum likelihood, as in the paper).
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")

    def _loglik_rows(self, params: np.ndarray, h: Histories) -> np.ndarray:
        common, alive, dropped = _bgnbd_terms(params, h)
        return common + np.logaddexp(alive, dropped)

    def _loglik_grad_rows(self, params: np.ndarray, h: Histories) -> np.ndarray:
        r, alpha, a, b = params
        _, alive, dropped = _bgnbd_terms(params, h)
        w_dropped = np.exp(dropped - np.logaddexp(alive, dropped))
        w_alive = 1.0 - w_dropped
        rx = r + h.x
        d_r = (
            h.by_x(lambda x: digamma(r + x) - digamma(r) + np.log(alpha))
            - w_alive * h.by_age(lambda age: np.log(alpha + age))
            - w_dropped * h.by_t_x(lambda t_x: np.log(alpha + t_x))
        )
        d_alpha = r / alpha - rx * (
            w_alive * h.by_age(lambda age: 1.0 / (alpha + age))
            + w_dropped * h.by_t_x(lambda t_x: 1.0 / (alpha + t_x))
        )
        psi_a = h.by_x(lambda x: digamma(a + b) - digamma(a + b + x))
        d_a = psi_a + w_dropped / a
        inv_bx = h.by_x(lambda x: np.where(x > 0, 1.0 / np.where(x > 0, b + x - 1.0, 1.0), 0.0))
        d_b = psi_a + h.by_x(lambda x: digamma(b + x) - digamma(b)) - w_dropped * inv_bx
        return np.column_stack([d_r, d_alpha, d_a, d_b])

    def conditional_probability_alive(self, summary: Summary) -> np.ndarray:
        """P(alive at the as-of date | x, t_x, T); exactly 1 when x = 0 (equation 11)."""
        _, alive, dropped = _bgnbd_terms(self._params(), histories(summary))
        return np.exp(alive - np.logaddexp(alive, dropped))

    def conditional_expected_purchases(
        self, summary: Summary, t: float, p_alive: np.ndarray | None = None
    ) -> np.ndarray:
        """E[purchase days in the `t` weeks after the as-of date | x, t_x, T] (equation 10)."""
        x, _, age = rfm_arrays(summary)
        r, alpha, a, b = self._params()
        z = t / (alpha + age + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        log_shrink = (r + x) * np.log((alpha + age) / (alpha + age + t))
        unconditional = (a + b + x - 1.0) / (a - 1.0) * (1.0 - np.exp(log_shrink) * hyp)
        alive = self.conditional_probability_alive(summary) if p_alive is None else p_alive
        return unconditional * alive

    def expected_purchases_new_customer(self, t: float) -> float:
        """E[repeat purchases within `t` weeks of a new customer's first purchase] (eq. 7)."""
        r, alpha, a, b = self._params()
        hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
        return float((a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp))
