"""What the score API needs from the domain libraries (`training.core.reasons`, `features.btyd`,
`decisions`), as one port. The adapter over the real libraries is built in the lifespan; tests
inject a fake through `app.dependency_overrides[get_domain]`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ReasonCode:
    """A plain-word reason; `impact` is the contribution on the model's raw (log-odds) scale."""

    code: str
    text: str
    impact: float


@dataclass(frozen=True)
class Candidate:
    """An action the engine considered; `expected_value` is incremental, in the dataset
    currency per contact; `channel` is None for no_action."""

    action_id: str
    channel: str | None
    expected_value: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The engine's choice for one member (no_action when nothing is allowed and worth it)."""

    action: Candidate
    alternatives: tuple[Candidate, ...]
    reasons: tuple[str, ...]
    control_group: bool


class Domain(Protocol):
    """Reason codes, lifecycle stage and BTYD outlook of one member; next-best actions of many."""

    def reasons(
        self,
        model: str,
        contributions: np.ndarray,
        feature_names: Sequence[str],
        features: Mapping[str, Any],
    ) -> list[ReasonCode]:
        """Reasons behind `model`'s score from its per-feature contributions (bias excluded)."""
        ...

    def lifetime(
        self, features: Mapping[str, Any], as_of: datetime | None, outlook: Any
    ) -> tuple[float | None, date | None]:
        """P(alive) at `as_of` and the expected date of the next order from `outlook`, the
        served BTYD model (None, None while none is served)."""
        ...

    def stage(
        self, features: Mapping[str, Any], scores: Mapping[str, float | None]
    ) -> tuple[str, str]:
        """Lifecycle stage and the name of the rule that fired."""
        ...

    def next_best_actions(
        self,
        features: pd.DataFrame,
        scores: pd.DataFrame,
        contacts: pd.DataFrame,
        consents: pd.DataFrame,
        now: datetime,
        uplift: Any,
    ) -> list[Decision]:
        """The decision of every member (rows of `features`, indexed by member id; `scores` by
        name on the same index), in row order, after consent (the register's `consents` over
        the features' flags), cooldowns (from `contacts`) and control-group checks; `uplift`
        is the served uplift model (None: the catalogue's prior uplift)."""
        ...
