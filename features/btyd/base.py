"""Shared base of the buy-till-you-die models: input checks, weighted maximum likelihood.

Every model here follows the scikit-learn estimator contract: hyperparameters are stored in
`__init__` untouched, learned state ends in `_`, `fit` returns `self`. Times are in the unit of
the summary (weeks for CDNOW); the as-of date of every prediction is the end of the period the
summary was computed on (`T` is measured up to it).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, TypeAlias

import numpy as np
import pandas as pd
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from memberscore.errors import MemberscoreError

Objective = Callable[[np.ndarray], tuple[float, np.ndarray] | float]
# An `rfm_summary`: a frame, or its columns as equal-length arrays (the one-member serving path,
# where pandas' per-call cost would dwarf the maths).
Summary: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]
FEW_ROWS = 64


class ConvergenceError(MemberscoreError):
    """The likelihood optimiser stopped without converging; the message carries its reason."""


def require_columns(summary: Summary, columns: tuple[str, ...]) -> None:
    """Raise a ValueError naming the first of `columns` missing from `summary`."""
    present = summary.columns if isinstance(summary, pd.DataFrame) else summary
    for column in columns:
        if column not in present:
            raise ValueError(f"summary lacks the column {column!r}; present: {list(summary)}")


def summary_column(summary: Summary, column: str) -> np.ndarray:
    """One column of `summary` as a float array (checked with `require_columns` first)."""
    return np.asarray(summary[column], dtype=float)


def rfm_arrays(summary: Summary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float arrays (frequency x, recency t_x, age T) from an `rfm_summary`."""
    require_columns(summary, ("frequency", "recency", "T"))
    x, t_x, age = (summary_column(summary, c) for c in ("frequency", "recency", "T"))
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")
    if np.any(t_x < 0) or np.any(t_x > age + 1e-9):
        raise ValueError("recency must lie between 0 and T")
    if np.any((x == 0) & (t_x > 0)):
        raise ValueError("recency must be 0 for customers without a repeat purchase")
    return x, t_x, age


def unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the stacked equal-length `columns`: (columns, inverse, counts).

    Sorting with `np.lexsort` is several times faster than `np.unique(axis=0)`.
    """
    order = np.lexsort(columns[::-1])
    ordered = [col[order] for col in columns]
    starts = np.ones(order.size, dtype=bool)
    for col in ordered:
        starts[1:] &= col[1:] == col[:-1]
    starts = ~starts
    starts[0] = True
    group = np.cumsum(starts) - 1
    inverse = np.empty(order.size, dtype=np.intp)
    inverse[order] = group
    counts = np.bincount(group)
    return [col[starts] for col in ordered], inverse, counts


def compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the stacked `columns` and how many times each occurs (the weights).

    Customers with identical sufficient statistics have identical likelihood terms, so the
    likelihood is evaluated once per distinct row and weighted by its count.
    """
    unique, _, counts = unique_rows(*columns)
    return unique, counts.astype(float)


@dataclass(frozen=True)
class Histories:
    """Customer histories (x repeat purchases, last at t_x, observed for T weeks) with the
    distinct values of each column, so that costly special functions of a single column
    (lgamma of r + x, log of α + T, ...) are evaluated once per distinct value."""

    x: np.ndarray
    t_x: np.ndarray
    age: np.ndarray
    x_values: np.ndarray
    x_index: np.ndarray
    t_x_values: np.ndarray
    t_x_index: np.ndarray
    age_values: np.ndarray
    age_index: np.ndarray

    @classmethod
    def from_arrays(cls, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> Histories:
        """Histories of equal-length float arrays (weeks). Up to `FEW_ROWS` rows (a live
        request) every row is its own value: finding the distinct ones would cost more than
        it saves."""
        if x.size <= FEW_ROWS:
            rows = np.arange(x.size)
            return cls(x, t_x, age, x, rows, t_x, rows, age, rows)
        (xv, xi), (tv, ti), (av, ai) = (
            np.unique(col, return_inverse=True) for col in (x, t_x, age)
        )
        return cls(x, t_x, age, xv, xi, tv, ti, av, ai)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (x, t) pairs over the rows' (x, t_x) then (x, T), and each of those 2n rows'
        pair index (every row its own pair up to `FEW_ROWS` rows). Computed once per Histories
        (a fit evaluates it hundreds of times)."""
        x, t = np.concatenate([self.x, self.x]), np.concatenate([self.t_x, self.age])
        if self.x.size <= FEW_ROWS:
            return x, t, np.arange(x.size)
        (x, t), index, _ = unique_rows(x, t)
        return x, t, index

    def by_x(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """f(x) per row, computed on the distinct values of x."""
        return f(self.x_values)[self.x_index]

    def by_t_x(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """f(t_x) per row, computed on the distinct values of t_x."""
        return f(self.t_x_values)[self.t_x_index]

    def by_age(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """f(T) per row, computed on the distinct values of T."""
        return f(self.age_values)[self.age_index]


def histories(summary: Summary, extra_weeks: float = 0.0) -> Histories:
    """Checked `Histories` of an `rfm_summary` frame, observed `extra_weeks` longer."""
    x, t_x, age = rfm_arrays(summary)
    return Histories.from_arrays(x, t_x, age + extra_weeks)


def minimise_log_params(objective: Objective, start: np.ndarray, jac: bool) -> np.ndarray:
    """Minimise `objective` over log-parameters with BFGS; return the positive optimum.

    `objective` takes log-parameters and returns the mean negative log-likelihood (and its
    gradient with respect to the log-parameters when `jac` is true). The log scale removes the
    positivity bounds, so plain BFGS suffices; unlike L-BFGS-B it makes no BLAS calls, whose
    thread start-up dominated small fits on a busy 2-core machine (0.3 s of a 0.4 s fit).
    """
    # Line-search trial points far from the optimum can overflow the special functions; BFGS
    # treats the resulting inf/nan as "worse" and steps back, so those floating-point warnings
    # are expected here and would only flood the output of snapshot builds.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        result = optimize.minimize(
            objective,
            np.log(start),
            jac=jac,
            method="BFGS",
            options={"gtol": 1e-9, "maxiter": 2000},
        )
        if not result.success and np.max(np.abs(result.jac)) > 1e-5:
            raise ConvergenceError(f"maximum likelihood did not converge: {result.message}")
        return np.exp(result.x)  # may be inf at the edge of the parameter space: `fit` checks


class BaseTransactionModel(BaseEstimator):
    """Purchase-count model on (frequency, recency, T) with Gamma(r, α) purchase rates.

    Subclasses give the per-customer log-likelihood (and optionally its gradient), P(alive)
    and the conditional expected number of purchases.
    """

    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef

    @abstractmethod
    def _loglik_rows(self, params: np.ndarray, h: Histories) -> np.ndarray:
        """Log-likelihood of each customer's history (x purchases, last at t_x, observed to T)."""

    def _loglik_grad_rows(self, params: np.ndarray, h: Histories) -> np.ndarray | None:
        """Gradient (rows × parameters) of `_loglik_rows` in natural parameters, or None."""
        return None

    @abstractmethod
    def conditional_probability_alive(self, summary: Summary) -> np.ndarray:
        """P(customer still alive at the as-of date | history)."""

    @abstractmethod
    def conditional_expected_purchases(
        self, summary: Summary, t: float, p_alive: np.ndarray | None = None
    ) -> np.ndarray:
        """E[number of purchase days in the next `t` weeks after the as-of date | history];
        `p_alive`, if given, is `conditional_probability_alive(summary)` computed already."""

    def fit(self, X: pd.DataFrame, y: None = None) -> BaseTransactionModel:
        """Maximum-likelihood fit on an `rfm_summary` frame (frequency, recency, T in weeks)."""
        x, t_x, age = rfm_arrays(X)
        (ux, ut, uT), weights = compress(x, t_x, age)
        h = Histories.from_arrays(ux, ut, uT)
        total = weights.sum()
        with_grad = self._loglik_grad_rows(np.ones(len(self.param_names)), h) is not None

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray] | float:
            params = np.exp(log_params)
            penalty = self.penalizer_coef * np.sum(params**2)
            value = -(weights @ self._loglik_rows(params, h)) / total + penalty
            if not with_grad:
                return float(value)
            grad_rows = self._loglik_grad_rows(params, h)
            assert grad_rows is not None
            grad = -(weights @ grad_rows) / total + 2 * self.penalizer_coef * params
            return float(value), grad * params

        params = minimise_log_params(objective, np.ones(len(self.param_names)), with_grad)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_likelihood = float(weights @ self._loglik_rows(params, h))
        if not np.isfinite(log_likelihood):
            # e.g. Pareto/NBD with dropout rates equal across customers: s and β run off to
            # ~1e280 at a fixed ratio, where the likelihood can no longer be evaluated.
            raise ConvergenceError(
                f"maximum likelihood ran to the edge of the parameter space ({params}); "
                "its likelihood is not finite there"
            )
        self.params_ = dict(zip(self.param_names, params.tolist(), strict=True))
        self.log_likelihood_ = log_likelihood
        self.n_customers_ = int(total)
        return self

    def _params(self, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Parameters as an array in `param_names` order: given ones, else the fitted ones."""
        if params is None:
            if not hasattr(self, "params_"):
                raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")
            params = self.params_
        return np.array([params[name] for name in self.param_names], dtype=float)

    def log_likelihood(
        self, summary: pd.DataFrame, params: Mapping[str, float] | None = None
    ) -> float:
        """Total log-likelihood of `summary` at `params` (default: the fitted parameters)."""
        return float(np.sum(self._loglik_rows(self._params(params), histories(summary))))

    def probability_no_purchase(self, summary: Summary, t: float) -> np.ndarray:
        """P(no purchase in the `t` weeks after the as-of date | history).

        The likelihood of a history is the probability of observing it, so extending the
        observation window by `t` weeks without a purchase gives
        P(no purchase) = L(x, t_x, T + t) / L(x, t_x, T). This holds for every model here and
        keeps each model's dropout mechanism (BG/NBD: only after a repeat purchase).
        """
        params = self._params()
        log_ratio = self._loglik_rows(params, histories(summary, t)) - self._loglik_rows(
            params, histories(summary)
        )
        return np.exp(np.minimum(log_ratio, 0.0))

    def median_weeks_to_next_purchase(self, summary: Summary) -> np.ndarray:
        """Median waiting time (weeks after the as-of date) to the next purchase, if alive.

        Definition: conditional on the customer being alive at the as-of date, the purchase
        rate's posterior is Gamma(r + x, α + T), so the waiting time W to the next purchase has
        P(W > w) = ((α + T) / (α + T + w))^(r + x) and median (α + T)(2^(1/(r+x)) − 1). For
        BG/NBD this is the exact median of the time to the next purchase given alive (dropout
        happens only at a purchase); for Pareto/NBD it ignores dropout during the wait. The
        mean is not used: it is infinite whenever r + x ≤ 1.
        """
        x, _, age = rfm_arrays(summary)
        r, alpha = self.params_["r"], self.params_["alpha"]
        return (alpha + age) * np.expm1(np.log(2.0) / (r + x))

    def predict_frame(
        self, summary: pd.DataFrame, horizon: float, as_of: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Per-customer outputs over the next `horizon` weeks after the as-of date.

        Columns: `p_alive`, `expected_purchases`, `p_no_purchase`, `median_weeks_to_next`
        and, if the as-of date `as_of` is given, `next_purchase_date` (as_of + that median).
        """
        frame = pd.DataFrame(
            {
                "p_alive": self.conditional_probability_alive(summary),
                "expected_purchases": self.conditional_expected_purchases(summary, horizon),
                "p_no_purchase": self.probability_no_purchase(summary, horizon),
                "median_weeks_to_next": self.median_weeks_to_next_purchase(summary),
            },
            index=summary.index,
        )
        if as_of is not None:
            delta = pd.to_timedelta(frame["median_weeks_to_next"] * 7.0, unit="D")
            frame["next_purchase_date"] = (pd.Timestamp(as_of) + delta).dt.normalize()
        return frame
