"""Adapters from the serving ports to the domain libraries (`training`, `decisions`); the
Feast online store's adapter is `serving.online.feast_reader.FeastReader`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from memberscore.settings import Settings
from serving.scoring.domain import Candidate, Decision, ReasonCode


class LibraryDomain:
    """The domain port over the real libraries: `training.core.reasons` for reason codes,
    `decisions.stages` for the lifecycle stage, `decisions.engine` for the next-best actions.

    The uplift model comes with the request's model bundle (`uplift@champion`); while none is
    registered, `prior_uplift` (`decisions.uplift.prior_only_model`) makes the engine use the
    catalogue's prior uplift for every action, its documented fallback. P(alive) and the
    next-order date come from the bundle's BTYD outlook (`btyd@champion`); None while none is
    served.
    """

    def __init__(
        self,
        catalogue: Any,
        prior_uplift: Any,
        decision_settings: Any,
        descriptions: Mapping[str, str],
    ) -> None:
        self.catalogue = catalogue
        self.prior_uplift = prior_uplift
        self.decision_settings = decision_settings
        self.descriptions = dict(descriptions)

    def reasons(
        self,
        model: str,
        contributions: np.ndarray,
        feature_names: Sequence[str],
        features: Mapping[str, Any],
    ) -> list[ReasonCode]:
        """The strongest positive drivers of `model`'s score, in plain words."""
        from training.core.reasons import top_reasons

        found = top_reasons(contributions, feature_names, features, self.descriptions)
        return [ReasonCode(r.code, r.text, r.impact) for r in found]

    def lifetime(
        self, features: Mapping[str, Any], as_of: datetime | None, outlook: Any
    ) -> tuple[float | None, date | None]:
        """P(alive) at the features' cutoff `as_of` and the expected (median) next-order date
        from the member's rfm features and the served BTYD model `outlook`
        (`features.families.btyd`, the same logic as the snapshot's `btyd` family); (None, None)
        without a model, cutoff or order."""
        from features.families.btyd import member_outlook

        if outlook is None or as_of is None:
            return None, None
        return member_outlook(outlook, features, as_of)

    def stage(
        self, features: Mapping[str, Any], scores: Mapping[str, float | None]
    ) -> tuple[str, str]:
        """Stage and the rule in words, from `decisions.stages.stage_of`."""
        from decisions.stages import stage_of

        return stage_of(features, scores, self.decision_settings.stages)

    def next_best_actions(
        self,
        features: pd.DataFrame,
        scores: pd.DataFrame,
        contacts: pd.DataFrame,
        consents: pd.DataFrame,
        now: datetime,
        uplift: Any,
    ) -> list[Decision]:
        """The engine's decisions (`decisions.engine.decide`, as batch scoring), after
        consent, cooldowns, caps and the control group."""
        from decisions.engine import decide
        from decisions.stages import assign_stages

        settings = self.decision_settings
        stages = assign_stages(features, scores, settings.stages)
        model = self.prior_uplift if uplift is None else uplift
        now_utc, policy = pd.Timestamp(now), settings.guardrails
        batch = decide(
            features,
            stages,
            self.catalogue,
            model,
            contacts,
            now_utc,
            policy,
            consents,
            scores=scores,
        )
        return [_decision(batch.explain(member_id)) for member_id in features.index]


def _decision(decision: Any) -> Decision:
    """An engine decision as the serving port's."""
    return Decision(
        action=_candidate(decision.action),
        alternatives=tuple(_candidate(o) for o in decision.alternatives),
        reasons=tuple(decision.reasons),
        control_group=bool(decision.control_group),
    )


def _candidate(option: Any) -> Candidate:
    """An engine option as the serving port's candidate."""
    return Candidate(
        action_id=str(option.action_id),
        channel=option.channel,
        expected_value=float(option.expected_value),
        reasons=tuple(option.reasons),
    )


def open_domain(settings: Settings) -> LibraryDomain:
    """The shipped action catalogue, the settings' decision rules, feature descriptions from
    the catalog and a priors-only uplift model for when none is registered."""
    from decisions.catalogue import load_catalogue
    from decisions.uplift import prior_only_model
    from training.core.reasons import catalog_descriptions

    catalogue = load_catalogue()
    uplift = prior_only_model(catalogue)
    return LibraryDomain(catalogue, uplift, settings.decisions, catalog_descriptions())
