"""The action catalogue: what marketers may send, to whom, how often and at what cost.

`load_catalogue(path)` reads YAML (the shipped `actions.yaml` when `path` is None) and validates
it at load; every error names the action and the field, e.g.
"action 'winback_coupon': cooldown_days must be >= 0 (got -3)". Eligibility conditions are data
({feature, op, value}), evaluated by `condition_mask` with numpy comparisons, never `eval`.
A condition reads a feature or one of `CONDITION_SCORES`, the scores the engine is handed beside
the features (`with_scores`), e.g. the chance of reaching the next tier within the tier period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from decisions.stages import STAGES
from memberscore.contract import CONTACT_CHANNELS
from memberscore.errors import MemberscoreError

NO_ACTION = "no_action"
Op = Literal["<", "<=", ">", ">=", "==", "!=", "in"]
Stage = Literal[STAGES]  # type: ignore[valid-type]
Consent = Literal["marketing", "personalization"]
Channel = Literal[CONTACT_CHANNELS]  # type: ignore[valid-type]
Scalar = bool | int | float | str
# Scores (not features) a condition may read: `next_tier_probability`, the chance of reaching
# the next tier within the tier period (0-1; null at the top tier or without a spend forecast).
CONDITION_SCORES = ("next_tier_probability",)


class CatalogueError(MemberscoreError):
    """The action catalogue cannot be read or does not validate; the message says where."""


class Condition(BaseModel):
    """One eligibility rule on a feature, e.g. {feature: recency_days, op: ">=", value: 60}."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str = Field(min_length=1)
    op: Op
    value: Scalar | tuple[Scalar, ...]

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if (self.op == "in") != isinstance(self.value, tuple):
            raise ValueError(
                f"condition on {self.feature!r}: op 'in' needs a list value and other ops a "
                f"single value (got op {self.op!r} with {self.value!r})"
            )
        return self

    def describe(self) -> str:
        """The rule as a marketer wrote it, e.g. "recency_days >= 60"."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.feature} {self.op} {value}"


class ContactCap(BaseModel):
    """At most `count` contacts with this action per member in any `period_days` window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1)
    period_days: int = Field(ge=1)


class PriorUplift(BaseModel):
    """Uplift assumed while an action has too little history to learn from.

    `response_prob` is the absolute increase in response probability per contact (0.02 = +2
    points); `value_per_response` is the value of one incremental response (currency).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    response_prob: float = Field(ge=-1, le=1)
    value_per_response: float = Field(ge=0)

    @property
    def value(self) -> float:
        """Incremental value per contact (currency)."""
        return self.response_prob * self.value_per_response


class Action(BaseModel):
    """One entry of the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    channels: tuple[Channel, ...] = ()
    unit_cost: float = Field(ge=0, description="Cost of one contact (currency).")
    stages: tuple[Stage, ...] = Field(min_length=1)
    conditions: tuple[Condition, ...] = ()
    requires_consent: tuple[Consent, ...] = ()
    cooldown_days: int = Field(ge=0, description="Days before the same action may be resent.")
    cap: ContactCap | None = None
    prior: PriorUplift

    @model_validator(mode="after")
    def _sendable_has_channel(self) -> Action:
        if self.id != NO_ACTION and not self.channels:
            raise ValueError("channels must list at least one channel")
        return self


class Catalogue(BaseModel):
    """The validated catalogue; `actions` keeps the file's order and always holds no_action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    actions: tuple[Action, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_unique_and_no_action_present(self) -> Catalogue:
        ids = [a.id for a in self.actions]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"action ids must be unique; repeated: {', '.join(twice)}")
        if NO_ACTION not in ids:
            raise ValueError(f"the catalogue must contain the {NO_ACTION!r} action")
        return self

    @property
    def ids(self) -> list[str]:
        """Action ids in catalogue order."""
        return [a.id for a in self.actions]

    @property
    def sendable(self) -> list[Action]:
        """Every action except no_action."""
        return [a for a in self.actions if a.id != NO_ACTION]

    def action(self, action_id: str) -> Action:
        """The action called `action_id`, or a CatalogueError listing the known ids."""
        for action in self.actions:
            if action.id == action_id:
                return action
        raise CatalogueError(f"unknown action {action_id!r}; known: {', '.join(self.ids)}")

    def features(self) -> set[str]:
        """Feature names that eligibility conditions read."""
        return {c.feature for a in self.actions for c in a.conditions}


def load_catalogue(path: Path | None = None, features: Iterable[str] | None = None) -> Catalogue:
    """Read and validate a catalogue; None reads the shipped `decisions/actions.yaml`.

    When `features` (the names the feature store serves) is given, conditions on any other
    feature are an error too. Raises CatalogueError with every problem found, one per line.
    """
    if path is None:
        text = resources.files("decisions").joinpath("actions.yaml").read_text(encoding="utf-8")
        source = "decisions/actions.yaml"
    else:
        if not path.is_file():
            raise CatalogueError(f"action catalogue {path} does not exist")
        text, source = path.read_text(encoding="utf-8"), str(path)
    return parse_catalogue(text, source=source, features=features)


def parse_catalogue(
    text: str, source: str = "<catalogue>", features: Iterable[str] | None = None
) -> Catalogue:
    """Validate catalogue YAML `text`; `source` names it in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogueError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise CatalogueError(f"{source}: expected a mapping with 'currency' and 'actions'")
    try:
        catalogue = Catalogue.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(e, raw) for e in _root_causes(error.errors())]
        raise CatalogueError(f"{source}: " + "\n  ".join(problems)) from None
    if features is not None:
        _check_features(catalogue, set(features), source)
    return catalogue


def _check_features(catalogue: Catalogue, known: set[str], source: str) -> None:
    problems = [
        f"action {a.id!r}: condition on unknown feature {c.feature!r}"
        for a in catalogue.actions
        for c in a.conditions
        if c.feature not in known and c.feature not in CONDITION_SCORES
    ]
    if problems:
        raise CatalogueError(f"{source}: " + "\n  ".join(problems))


def _root_causes(errors: list[Any]) -> list[Any]:
    """Drop "too short" errors that only echo an invalid item inside the same list."""
    locs = [tuple(e["loc"]) for e in errors]
    return [
        e
        for e in errors
        if e["type"] != "too_short"
        or not any(len(o) > len(e["loc"]) and o[: len(e["loc"])] == tuple(e["loc"]) for o in locs)
    ]


def _describe(error: Any, raw: dict[str, Any]) -> str:
    """One pydantic error as "action 'x': field must be ... (got ...)"."""
    loc = list(error["loc"])
    where = "catalogue"
    if len(loc) >= 2 and loc[0] == "actions" and isinstance(loc[1], int):
        entries = raw.get("actions") or []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        name = entry.get("id") if isinstance(entry, dict) else None
        where = f"action {name!r}" if name else f"action #{loc[1] + 1}"
        loc = loc[2:]
    # pydantic names the union member tried ('tuple[...]', 'function-after[...]'): noise here
    field = ".".join(str(p) for p in loc if "[" not in str(p)) or "entry"
    return f"{where}: {field} {_rule(error)}"


def _rule(error: Any) -> str:
    ctx, kind = error.get("ctx") or {}, error["type"]
    got = f" (got {error['input']!r})" if kind != "missing" else ""
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}{got}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not a known field{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])) + got
    return f"{error['msg'][0].lower()}{error['msg'][1:]}{got}"


def condition_mask(frame: pd.DataFrame, condition: Condition) -> np.ndarray:
    """Rows of `frame` meeting `condition`; a missing value never meets it."""
    if condition.feature not in frame.columns:
        score = condition.feature in CONDITION_SCORES
        where = " (a score: hand the scores to the engine, `with_scores`)" if score else ""
        raise CatalogueError(
            f"condition {condition.describe()!r} reads {condition.feature!r}, which the "
            f"features frame does not have{where}"
        )
    column = frame[condition.feature]
    values = column.to_numpy()
    present = ~pd.isna(values)
    if condition.op == "in":
        return present & column.isin(list(condition.value)).to_numpy()  # type: ignore[arg-type]
    compare = {
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
        "==": np.equal,
        "!=": np.not_equal,
    }[condition.op]
    out = np.zeros(len(frame), dtype=bool)
    out[present] = compare(values[present], condition.value).astype(bool)
    return out


def eligibility_mask(frame: pd.DataFrame, conditions: Sequence[Condition]) -> np.ndarray:
    """Rows meeting every condition (all rows when there is none)."""
    mask = np.ones(len(frame), dtype=bool)
    for condition in conditions:
        mask &= condition_mask(frame, condition)
    return mask


def with_scores(features: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """`features` with the `CONDITION_SCORES` columns of `scores` (rows aligned by index) that
    `features` lacks; `features` itself when there are none (or `scores` is None)."""
    if scores is None:
        return features
    names = [n for n in CONDITION_SCORES if n in scores.columns and n not in features.columns]
    if not names:
        return features
    same = scores.index.equals(features.index)
    columns = {n: (scores[n] if same else scores[n].reindex(features.index)) for n in names}
    return features.assign(**{n: column.to_numpy() for n, column in columns.items()})
