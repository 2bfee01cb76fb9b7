"""Request-level orchestration: read features (and contacts), score, decide, record metrics.

Routes call these; `scoring` holds the pure part.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from memberscore.settings import Settings
from serving.bundle import ModelBundle
from serving.contact_log import ContactLog
from serving.domain import Candidate, Domain
from serving.metrics import Metrics
from serving.schemas import ActionOut, NextBestActionOut, NextBestActionsOut, ScoresOut
from serving.scoring import flat_scores, score
from serving.sources import FeatureReader, MemberFeatures

NBA_SERVICE = "nba_v1"


def services(bundle: ModelBundle) -> list[str]:
    """Feature services to read: every served model's, plus nba_v1 (segment, tags, consent)."""
    return sorted({model.feature_service for model in bundle.models.values()} | {NBA_SERVICE})


def score_members(
    member_ids: Sequence[str],
    reader: FeatureReader,
    bundle: ModelBundle,
    domain: Domain,
    settings: Settings,
    metrics: Metrics,
) -> tuple[ScoresOut, MemberFeatures]:
    """Scores of `member_ids` and the features they came from; served scores feed the metrics."""
    features = reader.read(list(dict.fromkeys(member_ids)), services(bundle))
    result = score(member_ids, features, bundle, domain, settings)
    for card in result.scores:
        for name, value in flat_scores(card).items():
            if name.startswith("churn_") or name in ("activation", "p_alive"):
                metrics.observe_scores(name, [value])
    return result, features


def decide(
    member_ids: Sequence[str],
    reader: FeatureReader,
    contacts: ContactLog,
    bundle: ModelBundle,
    domain: Domain,
    settings: Settings,
    metrics: Metrics,
) -> NextBestActionsOut:
    """Next-best action of each known member, with cooldowns read from the contact log."""
    scored, features = score_members(member_ids, reader, bundle, domain, settings, metrics)
    history = contacts.history([card.member_id for card in scored.scores])
    now = datetime.now(UTC)
    decisions = []
    for card in scored.scores:
        own = history[history["member_id"] == card.member_id]
        row = features.rows[card.member_id]
        decision = domain.next_best_action(
            card.member_id, row, flat_scores(card), own, now, bundle.uplift
        )
        chosen = _action(decision.action, settings)
        decisions.append(
            NextBestActionOut(
                member_id=card.member_id,
                action=chosen,
                alternatives=[_action(c, settings) for c in decision.alternatives],
                expected_value=chosen.expected_value,
                reasons=list(decision.reasons),
                control_group=decision.control_group,
                lifecycle=card.lifecycle,
                model_versions=card.model_versions,
            )
        )
    return NextBestActionsOut(decisions=decisions, not_found=scored.not_found)


def _action(candidate: Candidate, settings: Settings) -> ActionOut:
    """A candidate as it is shown to the caller."""
    return ActionOut(
        action_id=candidate.action_id,
        channel=candidate.channel,
        expected_value=candidate.expected_value,
        currency=settings.currency,
        reasons=list(candidate.reasons),
    )
