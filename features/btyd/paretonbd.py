"""Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys at Poisson rate λ ~ Gamma(r, α); the lifetime is exponential with
rate μ ~ Gamma(s, β) (weeks). Likelihood and conditional expressions follow Fader & Hardie,
"A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import gammaln, hyp2f1

from features.btyd.base import (
    BaseTransactionModel,
    Histories,
    Summary,
    histories,
    rfm_arrays,
)


def _log_hyp_term(params: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log[2F1(r+s+x, ·; r+s+x+1; z(t)) / (max(α, β) + t)^(r+s+x)] for the note's A0.

    With α ≥ β the note uses 2F1(r+s+x, s+1; r+s+x+1; (α−β)/(α+t)); with α < β it uses
    2F1(r+s+x, r+x; r+s+x+1; (β−α)/(β+t)). Both have c = a + 1, so Euler's transformation
    2F1(a, b; a+1; z) = (1−z)^(1−b) 2F1(1, a+1−b; a+1; z) is applied: the remaining 2F1 has
    positive, slowly growing terms and never overflows, even for large x.
    """
    r, alpha, s, beta = params
    big, small = max(alpha, beta), min(alpha, beta)
    b = s + 1.0 if alpha >= beta else r + x
    c = r + s + x + 1.0
    one_minus_z = (small + t) / (big + t)
    z = (big - small) / (big + t)
    return (
        -(r + s + x) * np.log(big + t)
        + (1.0 - b) * np.log(one_minus_z)
        + np.log(hyp2f1(1.0, c - b, c, z))
    )


def _log_a0(params: np.ndarray, h: Histories) -> np.ndarray:
    """log A0 = log(F(t_x) − F(T)) ≥ −inf, computed on distinct (x, t) pairs.

    F(t_x) − F(T) = F(t_x)·(1 − exp(log F(T) − log F(t_x))), which is 0 (log −inf) when t_x = T.
    """
    x, t, index = h.pairs
    log_f = _log_hyp_term(params, x, t)[index]
    log_f_tx, log_f_age = log_f[: h.x.size], log_f[h.x.size :]
    gap = np.minimum(log_f_age - log_f_tx, 0.0)
    with np.errstate(divide="ignore"):
        return log_f_tx + np.log(-np.expm1(gap))


def _pareto_terms(params: np.ndarray, h: Histories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, log alive-branch, log dead-branch): log L = A + logaddexp(alive, dead).

    alive = −(r+x) log(α+T) − s log(β+T); dead = log(s/(r+s+x)) + log A0 (note, eq. 17).
    """
    r, alpha, s, beta = params
    common = h.by_x(lambda x: gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta))
    alive = -(r + h.x) * h.by_age(lambda age: np.log(alpha + age)) - h.by_age(
        lambda age: s * np.log(beta + age)
    )
    dead = h.by_x(lambda x: np.log(s / (r + s + x))) + _log_a0(params, h)
    return common, alive, dead


class ParetoNBDModel(BaseTransactionModel):
    """Pareto/NBD fitted by maximum likelihood (weeks); parameters r, alpha, s, beta.

    Hyperparameter `penalizer_coef` adds `penalizer_coef * Σ θ²` to the mean negative
    log-likelihood (0 = plain maximum likelihood).
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")

    def _loglik_rows(self, params: np.ndarray, h: Histories) -> np.ndarray:
        common, alive, dead = _pareto_terms(params, h)
        return common + np.logaddexp(alive, dead)

    def conditional_probability_alive(self, summary: Summary) -> np.ndarray:
        """P(alive at the as-of date | x, t_x, T) (Fader & Hardie note, equation 18)."""
        _, alive, dead = _pareto_terms(self._params(), histories(summary))
        return np.exp(alive - np.logaddexp(alive, dead))

    def conditional_expected_purchases(
        self, summary: Summary, t: float, p_alive: np.ndarray | None = None
    ) -> np.ndarray:
        """E[purchase days in the `t` weeks after the as-of date | x, t_x, T] (equation 21).

        (r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)] · P(alive), written with
        expm1 so that s = 1 gives its limit (r+x)/(α+T) · (β+T) log((β+T+t)/(β+T)).
        """
        x, _, age = rfm_arrays(summary)
        r, alpha, s, beta = self._params()
        log_growth = np.log1p(t / (beta + age))
        if abs(s - 1.0) < 1e-12:
            integral = log_growth
        else:
            integral = -np.expm1(-(s - 1.0) * log_growth) / (s - 1.0)
        rate = (r + x) / (alpha + age)
        alive = self.conditional_probability_alive(summary) if p_alive is None else p_alive
        return rate * (beta + age) * integral * alive
