"""Per-action uplift of response probability and value, learned from randomized contacts.

A T-learner with LightGBM: one pair of models (response probability, value per contact) on the
control contacts of every action pooled (nothing was sent, so which action a member was held out
from does not change their outcome), and one pair per action on its treated contacts. Uplift is
the difference of the two predictions. An action with fewer than `min_treated` treated or
`min_control` control contacts of its own keeps the catalogue prior and is marked
`source="prior"`.

Input rows are contacts: member features as of `sent_at`, plus `action_id`, `group`
(treatment | control), `responded` (bool) and `response_value` (currency, 0 without response).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from decisions.catalogue import NO_ACTION, Catalogue, PriorUplift

if TYPE_CHECKING:
    from lightgbm import Booster

    Pair = tuple[Booster | float, Booster]

ACTION, GROUP, RESPONDED, VALUE = "action_id", "group", "responded", "response_value"
TREATMENT, CONTROL = "treatment", "control"
LEARNED, PRIOR = "learned", "prior"


@dataclass(frozen=True)
class UpliftArrays:
    """Predictions for n members and k actions (catalogue order, no_action excluded).

    `prob` / `value`: uplift in response probability and in value per contact (currency),
    shape (n, k). `base_prob` / `base_value`: the no-contact expectation, shape (n,).
    `source`: "learned" or "prior" per action; `treated` / `control`: contacts per action.
    """

    actions: list[str]
    prob: np.ndarray
    value: np.ndarray
    base_prob: np.ndarray
    base_value: np.ndarray
    source: list[str]
    treated: list[int]
    control: list[int]
    min_treated: int = 0
    min_control: int = 0


_PARAMS = (
    "min_treated",
    "min_control",
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "seed",
    "num_threads",
)


class UpliftModel:
    """T-learner over LightGBM; follows the scikit-learn estimator contract.

    Defaults are shallow and heavily regularised on purpose: uplift is the difference of two
    noisy models, and flexible ones chase noise. On a 20,000-member simulation (9,700 training
    contacts) 150 trees with 50-row leaves gave a learned policy no better than sending nothing
    (true lift +0.13 per contact); 60 trees with 150-row leaves gave +1.73.
    """

    def __init__(
        self,
        features: Sequence[str],
        min_treated: int = 300,
        min_control: int = 300,
        n_estimators: int = 60,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 150,
        seed: int = 42,
        num_threads: int = 1,
    ) -> None:
        self.features = features
        self.min_treated = min_treated
        self.min_control = min_control
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.num_threads = num_threads

    def fit(self, contacts: pd.DataFrame, priors: Mapping[str, PriorUplift]) -> UpliftModel:
        """Learn from `contacts`; `priors` (action id → prior, e.g. `catalogue_priors`) names
        the actions to predict and what to fall back on."""
        _check_columns(contacts, [*self.features, ACTION, GROUP, RESPONDED, VALUE])
        self.categories_ = {
            c: _categories(contacts[c]) for c in self.features if _is_text(contacts[c])
        }
        treated = contacts[GROUP] == TREATMENT
        control = contacts[GROUP] == CONTROL
        self.counts_ = (
            pd.DataFrame(
                {
                    "treated": contacts[treated].groupby(ACTION).size(),
                    "control": contacts[control].groupby(ACTION).size(),
                }
            )
            .reindex(list(priors))
            .fillna(0)
            .astype("int64")
        )
        enough = (self.counts_["treated"] >= self.min_treated) & (
            self.counts_["control"] >= self.min_control
        )
        self.counts_["source"] = np.where(enough, LEARNED, PRIOR)
        self.counts_.index.name = ACTION
        self.priors_ = dict(priors)
        self.control_models_ = self._fit_pair(contacts[control]) if enough.any() else None
        self.treated_models_ = {
            a: self._fit_pair(contacts[treated & (contacts[ACTION] == a)])
            for a in self.counts_.index[enough]
        }
        return self

    def predict_arrays(
        self, features: pd.DataFrame, allowed: np.ndarray | None = None
    ) -> UpliftArrays:
        """Uplift of every action for every row of `features` (which needs `self.features`).

        `allowed` (rows × actions, in `predict_arrays(...).actions` order) limits the learned
        predictions to the pairs an engine may still choose; the other pairs get 0. Batch
        scoring passes the guardrails' verdict, which saves most of the model evaluations.
        """
        n, actions = len(features), list(self.counts_.index)
        mask = np.ones((n, len(actions)), dtype=bool) if allowed is None else allowed
        base_prob, base_value = np.zeros(n), np.zeros(n)
        prob, value = np.zeros((n, len(actions))), np.zeros((n, len(actions)))
        learned = [j for j, a in enumerate(actions) if a in self.treated_models_]
        needed = np.flatnonzero(mask[:, learned].any(axis=1)) if learned else np.array([], int)
        x = self._matrix(features.iloc[needed]) if len(needed) else None
        if self.control_models_ is not None and x is not None:
            base_prob[needed], base_value[needed] = _predict_pair(
                self.control_models_, x, self.num_threads
            )
        for j, action in enumerate(actions):
            if action not in self.treated_models_:
                prior = self.priors_[action]
                prob[:, j], value[:, j] = prior.response_prob, prior.value
                continue
            rows = np.flatnonzero(mask[needed, j])
            if x is None or len(rows) == 0:
                continue
            p, v = _predict_pair(self.treated_models_[action], x[rows], self.num_threads)
            at = needed[rows]
            prob[at, j], value[at, j] = p - base_prob[at], v - base_value[at]
        return UpliftArrays(
            actions=actions,
            prob=prob,
            value=value,
            base_prob=base_prob,
            base_value=base_value,
            source=list(self.counts_["source"]),
            treated=[int(v) for v in self.counts_["treated"]],
            control=[int(v) for v in self.counts_["control"]],
            min_treated=self.min_treated,
            min_control=self.min_control,
        )

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Tidy predictions: one row per (member = `features.index`, action) with
        `uplift_prob`, `uplift_value` (currency per contact) and `source`."""
        arrays = self.predict_arrays(features)
        n, k = arrays.prob.shape
        return pd.DataFrame(
            {
                "member_id": np.repeat(features.index.to_numpy(), k),
                ACTION: np.tile(arrays.actions, n),
                "uplift_prob": arrays.prob.ravel(),
                "uplift_value": arrays.value.ravel(),
                "source": np.tile(arrays.source, n),
            }
        )

    def to_state(self) -> dict[str, Any]:
        """Everything a fitted model holds, as JSON-able data (boosters as LightGBM text)."""
        return {
            "params": {k: getattr(self, k) for k in _PARAMS},
            "features": list(self.features),
            "categories": self.categories_,
            "counts": self.counts_.reset_index().to_dict(orient="list"),
            "priors": {a: p.model_dump() for a, p in self.priors_.items()},
            "control": None if self.control_models_ is None else _pair_state(self.control_models_),
            "treated": {a: _pair_state(p) for a, p in self.treated_models_.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> UpliftModel:
        """The model `to_state` described, without refitting."""
        model = cls(state["features"], **state["params"])
        model.categories_ = dict(state["categories"])
        model.counts_ = pd.DataFrame(state["counts"]).set_index(ACTION)
        model.priors_ = {a: PriorUplift(**p) for a, p in state["priors"].items()}
        control = state["control"]
        model.control_models_ = None if control is None else _pair_from_state(control)
        model.treated_models_ = {a: _pair_from_state(p) for a, p in state["treated"].items()}
        return model

    def _fit_pair(self, rows: pd.DataFrame) -> Pair:
        """A response classifier and a value regressor on `rows`, as LightGBM boosters (a
        constant probability when `rows` hold a single class)."""
        from lightgbm import LGBMClassifier, LGBMRegressor

        x, responded = self._design(rows), rows[RESPONDED].astype(bool).to_numpy()
        params: dict[str, Any] = {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "random_state": self.seed,
            "n_jobs": self.num_threads,
            "deterministic": True,
            "verbose": -1,
        }
        if responded.all() or not responded.any():  # one class: the probability is constant
            classifier: Booster | float = float(responded.mean())
        else:
            classifier = LGBMClassifier(**params).fit(x, responded).booster_
        values = rows[VALUE].fillna(0.0).to_numpy(dtype="float64")
        return classifier, LGBMRegressor(**params).fit(x, values).booster_

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """`_design(frame)` as the float matrix LightGBM makes of it (text as the category
        codes fixed at fit time, NaN where missing or unseen), built once per call: the
        boosters then read it directly instead of converting a frame each."""
        names = list(self.features)
        _check_columns(frame, names)
        out = np.empty((len(frame), len(names)), dtype="float64")
        numbers = [j for j, name in enumerate(names) if name not in self.categories_]
        texts = [j for j, name in enumerate(names) if name in self.categories_]
        if len(frame) < FEW_ROWS:  # a few members: one object array, no Series per column
            return self._small_matrix(frame, names, numbers, texts, out)
        if numbers:
            columns = frame[[names[j] for j in numbers]]
            out[:, numbers] = columns.to_numpy(dtype="float64", na_value=np.nan)
        for j in texts:
            out[:, j] = _codes(_text(frame[names[j]]), self.categories_[names[j]])
        return out

    def _small_matrix(
        self,
        frame: pd.DataFrame,
        names: list[str],
        numbers: list[int],
        texts: list[int],
        out: np.ndarray,
    ) -> np.ndarray:
        """`_matrix` of a frame of fewer than FEW_ROWS rows from one object array of its values
        (each value as its column's `to_numpy(dtype=object)` gives it): pandas' fixed cost per
        column, not the values, is what a decision of one member pays."""
        positions = frame.columns.get_indexer(pd.Index(names))
        values = frame.to_numpy(dtype=object)[:, positions]
        if numbers:
            part = values[:, numbers]
            out[:, numbers] = np.where(pd.isna(part), np.nan, part).astype("float64")
        for j in texts:
            text = _text_values(values[:, j], functools.partial(_column, frame, names[j]))
            out[:, j] = _codes(text, self.categories_[names[j]])
        return out

    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model inputs: text as categories fixed at fit time, everything else as float."""
        _check_columns(frame, list(self.features))
        x = pd.DataFrame(index=frame.index)
        for name in self.features:
            if name in self.categories_:
                x[name] = pd.Categorical(frame[name].astype("string"), self.categories_[name])
            else:
                x[name] = pd.to_numeric(frame[name].astype("Float64"), errors="raise").astype(
                    "float64"
                )
        return x


def catalogue_priors(catalogue: Catalogue) -> dict[str, PriorUplift]:
    """Action id → prior of every sendable action of the catalogue."""
    return {a.id: a.prior for a in catalogue.actions if a.id != NO_ACTION}


def prior_only_model(catalogue: Catalogue) -> UpliftModel:
    """An uplift model fitted on no contacts: every sendable action of `catalogue` keeps its
    catalogue prior (`source="prior"`). The fallback of the score API and of batch scoring
    while no uplift model is registered."""
    no_contacts = pd.DataFrame(columns=[ACTION, GROUP, RESPONDED, VALUE])
    return UpliftModel([]).fit(no_contacts, catalogue_priors(catalogue))


def _text(column: pd.Series) -> np.ndarray:
    """The values of a text feature as `column.astype("string")` gives them (an object array,
    NA where missing), without its cost where they are text or booleans already (flags the
    uplift model learned as the categories "True" and "False")."""
    return _text_values(column.to_numpy(dtype=object), lambda: column)


def _text_values(values: np.ndarray, column: Callable[[], pd.Series]) -> np.ndarray:
    """`_text` of a column's object values; `column()` gives the column itself, read only
    when its values are neither text nor booleans."""
    kind = infer_dtype(values, skipna=True)
    if kind in ("string", "empty"):
        return values
    if kind == "boolean":
        flags = pd.array(values, dtype="boolean")
        words = np.where(flags.to_numpy(dtype=bool, na_value=False), "True", "False")
        words = words.astype(object)
        words[flags.isna()] = None
        return words
    return column().astype("string").to_numpy(dtype=object)


SMALL = 2_000  # rows under which a dict lookup of the codes beats pandas' indexer
# Rows under which `_matrix` reads one object array of the frame rather than a Series per
# column: on the benchmark store's 92 features (measured on a busy machine) 1–200 rows were
# 10–40 % faster that way and 500–2,000 rows 3–6 times slower (boxing every value costs more
# than the columns' fixed cost there).
FEW_ROWS = 256


def _codes(values: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Position of each value (text or missing) in `categories`, NaN when missing or unseen."""
    if len(values) >= SMALL:
        found = pd.Index(categories).get_indexer(pd.Index(values, dtype=object))
        return np.where(found < 0, np.nan, found)
    lookup = _lookup(tuple(categories))
    codes = (lookup.get(v, np.nan) if isinstance(v, str) else np.nan for v in values)
    return np.fromiter(codes, dtype="float64", count=len(values))


@functools.lru_cache(maxsize=256)
def _lookup(categories: tuple[str, ...]) -> dict[str, float]:
    return {c: float(i) for i, c in enumerate(categories)}


def _predict_pair(models: Pair, x: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """P(response) and value per contact of the rows of `x` on `threads` LightGBM threads:
    given none, a booster starts one per core on every call, which cost about 16 ms per call
    on a busy two-core machine (0.04 ms on one thread), 20 calls per member decided."""
    classifier, regressor = models
    if isinstance(classifier, float):
        prob = np.full(len(x), classifier)
    else:  # binary: P(response)
        prob = np.asarray(classifier.predict(x, num_threads=threads), dtype="float64")
    return prob, np.asarray(regressor.predict(x, num_threads=threads), dtype="float64")


def _pair_state(pair: Pair) -> dict[str, Any]:
    classifier, regressor = pair
    return {
        "classifier": classifier if isinstance(classifier, float) else classifier.model_to_string(),
        "regressor": regressor.model_to_string(),
    }


def _pair_from_state(state: Mapping[str, Any]) -> Pair:
    from lightgbm import Booster

    classifier = state["classifier"]
    return (
        classifier if isinstance(classifier, float) else Booster(model_str=classifier),
        Booster(model_str=state["regressor"]),
    )


def _is_text(column: pd.Series) -> bool:
    return bool(
        column.dtype == object
        or pd.api.types.is_string_dtype(column.dtype)
        or isinstance(column.dtype, pd.CategoricalDtype)
    )


def _categories(column: pd.Series) -> list[str]:
    return sorted(column.dropna().astype("string").unique())


def _check_columns(frame: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(
            f"uplift rows lack column(s) {', '.join(missing)}; they have "
            f"{', '.join(map(str, frame.columns))}"
        )


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name]
