"""Request-level orchestration: read features (and contacts), score, decide, record metrics.

Routes call these; `scoring` and `published` hold the pure part. Store reads go through the
`RequestContext` (off the event loop, within the request's store timeout: a hung store is a
503, never a frozen worker); scoring and decisions, milliseconds of CPU, run in the thread
pool, decisions of many members in the worker's decision process (`serving.api.offload`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool

from memberscore.settings import Settings
from serving.api.context import RequestContext
from serving.api.metrics import Metrics
from serving.api.offload import PROCESS_MEMBERS
from serving.schemas import (
    ActionOut,
    MemberScores,
    NextBestActionOut,
    NextBestActionsOut,
    ScoresOut,
)
from serving.scoring.bundle import ModelBundle
from serving.scoring.cards import card_key, observed_scores
from serving.scoring.domain import Candidate, Decision, Domain
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
    routes), else live. Cards and features, then contacts and consents, are read at once.
    StoreUnavailable when the online store or the contact log does not answer in time."""
    inputs = await _decision_inputs(member_ids, context)
    collaborators = context.bundle, context.domain, context.settings
    result, observed = await run_in_threadpool(decisions, *(collaborators + inputs))
    observe(observed, context.metrics)
    return result


async def decide_json(member_ids: Sequence[str], context: RequestContext) -> bytes:
    """`decide` as its JSON answer; a call of `offload.PROCESS_MEMBERS` members or more is
    decided in the worker's decision process (`serving.api.offload`), the same function on
    the same inputs, so that the worker's event loop stays free meanwhile."""
    inputs = await _decision_inputs(member_ids, context)
    collaborators = context.bundle, context.domain, context.settings
    if context.decider is None or len(inputs[0]) < PROCESS_MEMBERS:
        result, observed = await run_in_threadpool(decisions, *(collaborators + inputs))
        answer = result.model_dump_json().encode()
    else:
        answer, observed = await context.decider.run(collaborators, decisions_json, *inputs)
    observe(observed, context.metrics)
    return answer


async def _decision_inputs(
    member_ids: Sequence[str], context: RequestContext
) -> tuple[list[str], dict[str, str], MemberFeatures, pd.DataFrame, pd.DataFrame]:
    """What `decisions` needs from the stores: ids (each once), current published cards,
    features, contact history and consent register entries of the known members."""
    ids = list(dict.fromkeys(member_ids))
    published, features = await asyncio.gather(current_cards(ids, context), context.features(ids))
    known = [m for m in ids if m in features.rows]
    history, consents = await asyncio.gather(  # an opt-out counts from the next decision on
        context.history(known), context.consents(known)
    )
    return ids, published, features, history, consents


def decisions_json(*args: Any) -> tuple[bytes, list[dict[str, float | None]]]:
    """`decisions` with the answer as JSON (what the decision process sends back)."""
    result, observed = decisions(*args)
    return result.model_dump_json().encode(), observed


def decisions(
    bundle: ModelBundle,
    domain: Domain,
    settings: Settings,
    ids: list[str],
    published: Mapping[str, str],
    features: MemberFeatures,
    history: pd.DataFrame,
    consents: pd.DataFrame,
) -> tuple[NextBestActionsOut, list[dict[str, float | None]]]:
    """The decisions of `decide` once its reads are done: live scores where no current
    published card is, then the domain's next-best actions of every member with features in
    one call (`decisions.engine.decide`, as batch scoring), under the consent the register
    holds for members who changed it; and the live scores computed, for the metrics."""
    live = [m for m in ids if m not in published]
    scored = score(live, features, bundle, domain, settings).scores if live else []
    observed = [dict(observed_scores(card)) for card in scored]
    cards = {card.member_id: card for card in scored}
    for member_id, text in published.items():
        if member_id in features.rows:
            cards[member_id] = MemberScores.model_validate_json(text)
    ordered = [cards[m] for m in ids if m in cards]
    not_found = [m for m in ids if m not in cards]
    if not ordered:
        return NextBestActionsOut(decisions=[], not_found=not_found), observed
    index = pd.Index([card.member_id for card in ordered], name="member_id")
    frame = pd.DataFrame([dict(features.rows[m]) for m in index], index=index)
    flat = pd.DataFrame([flat_scores(card) for card in ordered], index=index, dtype="float64")
    now = datetime.now(UTC)
    chosen = domain.next_best_actions(frame, flat, history, consents, now, bundle.uplift)
    out = [
        _decision_out(card, decision, settings)
        for card, decision in zip(ordered, chosen, strict=True)
    ]
    return NextBestActionsOut(decisions=out, not_found=not_found), observed


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
