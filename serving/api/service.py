"""Request-level orchestration: read features (and contacts), score, decide, record metrics.

Routes call these; `scoring` and `published` hold the pure part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from memberscore.settings import Settings
from serving.api.metrics import Metrics
from serving.online.contact_log import ContactLog
from serving.schemas import (
    ActionOut,
    MemberScores,
    NextBestActionOut,
    NextBestActionsOut,
    ScoresOut,
)
from serving.scoring.bundle import ModelBundle
from serving.scoring.cards import card_key, observed_scores
from serving.scoring.domain import Candidate, Domain
from serving.scoring.score import flat_scores, score
from serving.scoring.sources import FeatureReader

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
) -> ScoresOut:
    """Live scores of `member_ids`, read from the online store; they feed the metrics."""
    features = reader.read(list(dict.fromkeys(member_ids)), services(bundle))
    result = score(member_ids, features, bundle, domain, settings)
    observe(map(observed_scores, result.scores), metrics)
    return result


def observe(served: Iterable[Mapping[str, float | None]], metrics: Metrics) -> None:
    """Add the scores of served cards (name → value, as `observed_scores` gives them) to the
    score-distribution metrics."""
    for scores in served:
        for name, value in scores.items():
            metrics.observe_scores(name, [value])


async def scores_json(
    member_ids: Sequence[str],
    reader: FeatureReader,
    bundle: ModelBundle,
    domain: Domain,
    settings: Settings,
    metrics: Metrics,
) -> tuple[dict[str, str], list[str]]:
    """Score cards of `member_ids` as `MemberScores` JSON by member id (duplicates once, in
    request order) and the ids the store does not know: current published cards
    (`serving.scoring.cards`) where there are, live scores for the others.

    The cards are read on the event loop (two short online reads, cheaper than a hand-off to
    a thread); live scoring, which costs milliseconds of CPU, runs in the thread pool."""
    ids = list(dict.fromkeys(member_ids))
    cards = current_cards(ids, reader, bundle, settings, metrics)
    live = [m for m in ids if m not in cards]
    not_found: list[str] = []
    if live:
        result = await run_in_threadpool(
            score_members, live, reader, bundle, domain, settings, metrics
        )
        cards.update((card.member_id, card.model_dump_json()) for card in result.scores)
        not_found = result.not_found
    return {m: cards[m] for m in ids if m in cards}, not_found


def current_cards(
    member_ids: Sequence[str],
    reader: FeatureReader,
    bundle: ModelBundle,
    settings: Settings,
    metrics: Metrics,
) -> dict[str, str]:
    """The current published cards among `member_ids` (JSON by member id); their scores feed
    the metrics."""
    key = card_key(bundle, settings)
    current = {m: p for m, p in reader.published(member_ids).items() if p.current(key)}
    observe((json.loads(p.observed) for p in current.values()), metrics)
    return {member_id: published.card for member_id, published in current.items()}


def decide(
    member_ids: Sequence[str],
    reader: FeatureReader,
    contacts: ContactLog,
    bundle: ModelBundle,
    domain: Domain,
    settings: Settings,
    metrics: Metrics,
) -> NextBestActionsOut:
    """Next-best action of each known member, with cooldowns read from the contact log. The
    scores it weighs come from current published cards where there are (as for the score
    routes), else live."""
    ids = list(dict.fromkeys(member_ids))
    published = current_cards(ids, reader, bundle, settings, metrics)
    features = reader.read(ids, services(bundle))
    live = [m for m in ids if m not in published]
    scored = score(live, features, bundle, domain, settings)
    observe(map(observed_scores, scored.scores), metrics)
    cards = {card.member_id: card for card in scored.scores}
    for member_id, text in published.items():
        if member_id in features.rows:
            cards[member_id] = MemberScores.model_validate_json(text)
    history = contacts.history([m for m in ids if m in cards])
    now = datetime.now(UTC)
    decisions = []
    for card in (cards[m] for m in ids if m in cards):
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
    return NextBestActionsOut(decisions=decisions, not_found=[m for m in ids if m not in cards])


def _action(candidate: Candidate, settings: Settings) -> ActionOut:
    """A candidate as it is shown to the caller."""
    return ActionOut(
        action_id=candidate.action_id,
        channel=candidate.channel,
        expected_value=candidate.expected_value,
        currency=settings.currency,
        reasons=list(candidate.reasons),
    )
