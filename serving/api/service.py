"""Request-level orchestration: read features (and contacts), score, decide, record metrics.

Routes call these; `scoring` and `published` hold the pure part. Store reads go through the
`RequestContext` (off the event loop, within the request's store timeout: a hung store is a
503, never a frozen worker); scoring and decisions, milliseconds of CPU, run in the thread
pool.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool

from decisions.guardrails import effective_consent
from memberscore.settings import Settings
from serving.api.context import RequestContext
from serving.api.metrics import Metrics
from serving.schemas import (
    ActionOut,
    MemberScores,
    NextBestActionOut,
    NextBestActionsOut,
    ScoresOut,
)
from serving.scoring.cards import card_key, observed_scores
from serving.scoring.domain import Candidate, Decision
from serving.scoring.score import flat_scores, score
from serving.scoring.sources import MemberFeatures


def score_members(
    member_ids: Sequence[str], features: MemberFeatures, context: RequestContext
) -> ScoresOut:
    """Live scores of `member_ids` from their online `features`; they feed the metrics."""
    result = score(member_ids, features, context.bundle, context.domain, context.settings)
    observe(map(observed_scores, result.scores), context.metrics)
    return result


def observe(served: Iterable[Mapping[str, float | None]], metrics: Metrics) -> None:
    """Add the scores of served cards (name → value, as `observed_scores` gives them) to the
    score-distribution metrics."""
    for scores in served:
        for name, value in scores.items():
            metrics.observe_scores(name, [value])


async def scores_json(
    member_ids: Sequence[str], context: RequestContext
) -> tuple[dict[str, str], list[str]]:
    """Score cards of `member_ids` as `MemberScores` JSON by member id (duplicates once, in
    request order) and the ids the store does not know: current published cards
    (`serving.scoring.cards`) where there are, live scores for the others; StoreUnavailable
    when the online store does not answer in time."""
    ids = list(dict.fromkeys(member_ids))
    cards = await current_cards(ids, context)
    live = [m for m in ids if m not in cards]
    not_found: list[str] = []
    if live:
        features = await context.features(live)
        result = await run_in_threadpool(score_members, live, features, context)
        cards.update((card.member_id, card.model_dump_json()) for card in result.scores)
        not_found = result.not_found
    return {m: cards[m] for m in ids if m in cards}, not_found


async def current_cards(member_ids: Sequence[str], context: RequestContext) -> dict[str, str]:
    """The current published cards among `member_ids` (JSON by member id); their scores feed
    the metrics."""
    key = card_key(context.bundle, context.settings)
    published = await context.published(member_ids)
    current = {m: p for m, p in published.items() if p.current(key)}
    observe((json.loads(p.observed) for p in current.values()), context.metrics)
    return {member_id: published.card for member_id, published in current.items()}


async def decide(member_ids: Sequence[str], context: RequestContext) -> NextBestActionsOut:
    """Next-best action of each known member, with cooldowns read from the contact log. The
    scores it weighs come from current published cards where there are (as for the score
    routes), else live. StoreUnavailable when the online store or the contact log does not
    answer in time."""
    ids = list(dict.fromkeys(member_ids))
    published = await current_cards(ids, context)
    features = await context.features(ids)
    known = [m for m in ids if m in features.rows]
    history = await context.history(known)
    consents = await context.consents(known)  # an opt-out counts from the next decision on
    return await run_in_threadpool(_decisions, ids, published, features, history, consents, context)


def _decisions(
    ids: list[str],
    published: Mapping[str, str],
    features: MemberFeatures,
    history: pd.DataFrame,
    consents: pd.DataFrame,
    context: RequestContext,
) -> NextBestActionsOut:
    """The decisions of `decide` once its reads are done: live scores where no current
    published card is, then the domain's next-best action of every member with features,
    under the consent the register holds for members who changed it."""
    live = [m for m in ids if m not in published]
    scored = score(live, features, context.bundle, context.domain, context.settings)
    observe(map(observed_scores, scored.scores), context.metrics)
    cards = {card.member_id: card for card in scored.scores}
    for member_id, text in published.items():
        if member_id in features.rows:
            cards[member_id] = MemberScores.model_validate_json(text)
    now = datetime.now(UTC)
    rows = _with_consent(features.rows, consents)
    decisions = []
    for card in (cards[m] for m in ids if m in cards):
        decision = context.domain.next_best_action(
            card.member_id,
            features=rows[card.member_id],
            scores=flat_scores(card),
            contacts=history[history["member_id"] == card.member_id],
            now=now,
            uplift=context.bundle.uplift,
        )
        decisions.append(_decision_out(card, decision, context.settings))
    return NextBestActionsOut(decisions=decisions, not_found=[m for m in ids if m not in cards])


def _with_consent(
    rows: Mapping[str, Mapping[str, Any]], consents: pd.DataFrame
) -> Mapping[str, Mapping[str, Any]]:
    """Feature rows with the register's consent of the members in `consents`
    (`decisions.guardrails.effective_consent`); the others as they are."""
    changed = [m for m in consents["member_id"].astype(str) if m in rows]
    if not changed:
        return rows
    frame = pd.DataFrame.from_dict({m: dict(rows[m]) for m in changed}, orient="index")
    merged = effective_consent(frame, consents).astype(object)
    merged = merged.where(merged.notna(), None)
    return {**rows, **{m: {str(k): v for k, v in merged.loc[m].items()} for m in changed}}


def _decision_out(card: MemberScores, decision: Decision, settings: Settings) -> NextBestActionOut:
    """A member's decision as it is shown to the caller, with the card's stage and versions."""
    chosen = _action(decision.action, settings)
    return NextBestActionOut(
        member_id=card.member_id,
        action=chosen,
        alternatives=[_action(c, settings) for c in decision.alternatives],
        expected_value=chosen.expected_value,
        reasons=list(decision.reasons),
        control_group=decision.control_group,
        lifecycle=card.lifecycle,
        model_versions=card.model_versions,
    )


def _action(candidate: Candidate, settings: Settings) -> ActionOut:
    """A candidate as it is shown to the caller."""
    return ActionOut(
        action_id=candidate.action_id,
        channel=candidate.channel,
        expected_value=candidate.expected_value,
        currency=settings.currency,
        reasons=list(candidate.reasons),
    )
