"""Published score cards: the score API's answers computed in advance, and when one may be served.

A member's card (`MemberScores`) depends only on its features, which change when a new snapshot
is materialized, and on the served model versions and a few settings, which change when a
champion is promoted or the service is reconfigured. Between those events every request would
recompute the same numbers, reason codes (exact SHAP, most of a live request's CPU) included.
`pipelines.publish` computes every member's card once and writes it to the online store beside
the features. It builds them with `card_frame`, whole frames at a time: the batch scorer's core
(`serving.scoring.frames.score_frame`, SHAP `contributions` and `top_positive` for the reasons,
`decisions.stages.assign_stages`, the BTYD outlook over every buyer at once), put together field
by field as `serving.scoring.score.score` does for a request, with `LibraryDomain`'s rules. A
card is the exact answer (the same JSON bytes) a live request gives for the member; the tests
pin it.

A request serves a published card only when it is current: computed from the features the
store holds now (same snapshot cutoff) and with the models and settings the server runs now
(same `card_key`, which includes the card's schema, so a card published before a field was
added is not served). Any other member is scored live, so an answer never depends on whether its
card was published, and a new champion is served at once (live) until its cards are published.

Pure: no I/O. `serving.online.feast_reader` reads the cards, `serving.api.service` chooses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

from decisions.stages import assign_stages
from features.btyd.outlook import outlook_frame
from features.families.btyd import DAYS_PER_WEEK, INPUT_COLUMNS, SHORT_DAYS, btyd_inputs
from memberscore.settings import Settings
from serving.schemas import MemberScores
from serving.scoring.adapters import LibraryDomain
from serving.scoring.bundle import ModelBundle
from serving.scoring.frames import (
    QUANTILES,
    churn_models,
    contributions,
    frame_matrices,
    score_frame,
)
from serving.scoring.score import flat_scores, tags_of
from serving.scoring.sources import PublishedCard
from training.core.reasons import MAX_REASONS, PHRASES, phrase, top_positive

# Settings that change a card; everything else (stores, keys, batch jobs) does not.
CARD_SETTINGS = {
    "currency",
    "churn_horizon_days",
    "churn_horizons_days",
    "monthly_discount_rate",
    "tier_period_days",
    "decisions",
}
RELEASE = version("memberscore")
MEMBER_ID, AS_OF = "member_id", "as_of"
COLUMNS = (MEMBER_ID, AS_OF, "card", "models", "observed")  # a published row


@cache
def card_schema() -> str:
    """A digest of the card's JSON schema (`MemberScores`): new or changed fields change it."""
    text = json.dumps(MemberScores.model_json_schema(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def card_key(bundle: ModelBundle, settings: Settings) -> str:
    """What a card depends on besides the member's features, as a short digest: the served
    model versions, the settings in CARD_SETTINGS, the card's schema and the memberscore
    release."""
    shape = {
        "models": bundle.fingerprint,
        "settings": settings.model_dump(mode="json", include=CARD_SETTINGS),
        "schema": card_schema(),
        "memberscore": RELEASE,
    }
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def observed_scores(card: MemberScores) -> dict[str, float | None]:
    """The scores of a card that the API's score-distribution metrics observe: churn at each
    horizon, activation and P(alive)."""
    return {
        name: value
        for name, value in flat_scores(card).items()
        if name.startswith("churn_") or name in ("activation", "p_alive")
    }


def scores_body(cards: Mapping[str, str], not_found: list[str]) -> bytes:
    """The `ScoresOut` JSON of cards (member id → `MemberScores` JSON, in answer order) and the
    unknown ids: the bytes `ScoresOut.model_dump_json()` gives for the same answer."""
    missing = json.dumps(not_found, ensure_ascii=False, separators=(",", ":"))
    return f'{{"scores":[{",".join(cards.values())}],"not_found":{missing}}}'.encode()


def card_frame(
    features: pd.DataFrame, bundle: ModelBundle, domain: LibraryDomain, settings: Settings
) -> pd.DataFrame:
    """The published rows (COLUMNS, same order) of every row of `features`: snapshot rows with
    `member_id`, `as_of` (the cutoff, UTC) and the features, as the online store holds them.
    Each `card` is the `MemberScores` JSON `serving.scoring.score.score` answers for the member
    with `domain`, `models` the `card_key`, `observed` the JSON of its `observed_scores`."""
    frame = features.set_index(MEMBER_ID, drop=False)
    frame.index.name = None
    scores = score_frame(frame, bundle, settings, reasons=0)
    ordered = ~scores["insufficient_history"].to_numpy(dtype=bool)
    as_of = [_utc(stamp) for stamp in frame[AS_OF]]
    lives = lifetimes(frame, ordered, bundle, as_of)
    stages = assign_stages(frame, scores, domain.decision_settings.stages)
    parts: dict[str, Sequence[Any]] = {
        "reasons": reason_lists(frame, ordered, bundle, domain.descriptions),
        "lifecycle": [
            {"stage": s, "rule": r} for s, r in zip(stages["stage"], stages["rule"], strict=True)
        ],
        "features_as_of": as_of,
        **lives,
    }
    cards = [
        MemberScores.model_validate(card)
        for card in card_dicts(frame, scores, ordered, bundle, settings, parts)
    ]
    out = pd.DataFrame(
        {
            MEMBER_ID: frame[MEMBER_ID].astype(str).to_numpy(),
            AS_OF: frame[AS_OF].to_numpy(),
            "card": [card.model_dump_json() for card in cards],
            "models": card_key(bundle, settings),
            "observed": [json.dumps(observed_scores(card)) for card in cards],
        },
        columns=list(COLUMNS),
    )
    out[AS_OF] = out[AS_OF].astype(frame[AS_OF].dtype)
    return out


def card_dicts(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    ordered: np.ndarray,
    bundle: ModelBundle,
    settings: Settings,
    parts: Mapping[str, Sequence[Any]],
) -> list[dict[str, Any]]:
    """The `MemberScores` fields of every member, as `score` fills them, from the score
    columns, the features and the per-member `parts` (reasons, lifecycle, features_as_of,
    p_alive, expected_next_order_date) computed for the whole frame."""
    n = len(frame)
    versions = dict(sorted(bundle.fingerprint.items()))
    churn = [(m, scores[f"churn_{m.horizon_days}d"].tolist()) for m in _churn(bundle, settings)]
    activation, clv = bundle.get("activation"), bundle.get("clv")
    numbers = {c: scores[c].tolist() for c in scores.columns if c != "insufficient_history"}
    segments, tags = _plain(frame, "segment"), _plain(frame, "tags")
    tiers = next_tiers(frame, numbers, parts["features_as_of"], settings)
    cards = []
    for i, member_id in enumerate(frame[MEMBER_ID].astype(str).tolist()):
        buyer = bool(ordered[i])
        cards.append(
            {
                "member_id": member_id,
                "insufficient_history": not buyer,
                "churn": [
                    {"horizon_days": m.horizon_days, "probability": v[i], "model": m.ref.name}
                    for m, v in churn
                ]
                if buyer
                else [],
                "activation": None
                if activation is None or buyer
                else {
                    "horizon_days": activation.horizon_days,
                    "probability": numbers["activation"][i],
                    "model": activation.ref.name,
                },
                "spend": _interval(clv, numbers, "spend", i, settings) if buyer else None,
                "clv": _interval(clv, numbers, "clv", i, settings) if buyer else None,
                "orders_mean": _number(numbers.get("orders_mean", [None] * n)[i])
                if buyer
                else None,
                "p_alive": parts["p_alive"][i],
                "expected_next_order_date": parts["expected_next_order_date"][i],
                "next_tier": tiers[i],
                "rfm_segment": None if segments[i] is None else str(segments[i]),
                "lifecycle": parts["lifecycle"][i],
                "tags": tags_of(tags[i]),
                "reasons": parts["reasons"][i],
                "model_versions": versions,
                "features_as_of": parts["features_as_of"][i],
            }
        )
    return cards


def _churn(bundle: ModelBundle, settings: Settings) -> list[Any]:
    return churn_models(bundle, settings.churn_horizons_days)


def _interval(
    model: Any, numbers: Mapping[str, list[Any]], kind: str, i: int, settings: Settings
) -> dict[str, Any] | None:
    """Spend or CLV (`kind`) of member `i` as `score` gives it; None without a clv model."""
    if model is None:
        return None
    return {
        "horizon_days": model.horizon_days,
        "currency": settings.currency,
        "mean": _number(numbers[f"{kind}_mean"][i]),
        **{q: float(numbers[f"{kind}_{q}"][i]) for q in QUANTILES},
    }


def next_tiers(
    frame: pd.DataFrame,
    numbers: Mapping[str, list[Any]],
    as_of: Sequence[datetime | None],
    settings: Settings,
) -> list[dict[str, Any] | None]:
    """The `next_tier` of every member (None at the top tier: no distance), from the features
    `distance_to_next_tier` and `next_tier` and the upgrade-timing columns."""
    distances, names = _plain(frame, "distance_to_next_tier"), _plain(frame, "next_tier")
    days = numbers.get("next_tier_days", [None] * len(frame))
    chances = numbers.get("next_tier_probability", [None] * len(frame))
    out: list[dict[str, Any] | None] = []
    for i, distance in enumerate(distances):
        if _number(distance) is None:
            out.append(None)
            continue
        wait, when = _number(days[i]), as_of[i]
        out.append(
            {
                "name": None if names[i] is None else str(names[i]),
                "distance": float(distance),
                "currency": settings.currency,
                "period_days": settings.tier_period_days,
                "expected_date": None
                if wait is None or when is None
                else (when + timedelta(wait)).date(),
                "probability_within_period": _number(chances[i]),
            }
        )
    return out


def lifetimes(
    frame: pd.DataFrame, ordered: np.ndarray, bundle: ModelBundle, as_of: Sequence[datetime]
) -> dict[str, list[Any]]:
    """`p_alive` and `expected_next_order_date` of every member, as `LibraryDomain.lifetime`
    gives them for members with orders (`features.families.btyd.member_outlook`, here over
    every buyer at once); None for the others and while no BTYD outlook is served."""
    n = len(frame)
    p_alive: list[float | None] = [None] * n
    next_order: list[date | None] = [None] * n
    if bundle.outlook is None or n == 0:
        return {"p_alive": p_alive, "expected_next_order_date": next_order}
    inputs = frame.reindex(columns=list(INPUT_COLUMNS)).reset_index(drop=True)
    inputs = inputs.apply(pd.to_numeric, errors="coerce").astype(float)
    summary = btyd_inputs(inputs[ordered].rename_axis(None))
    if not summary.empty:
        found = outlook_frame(bundle.outlook, summary, SHORT_DAYS / DAYS_PER_WEEK)
        weeks = found["median_weeks_to_next"].tolist()
        for i, alive, week in zip(
            summary.index.tolist(), found["p_alive"].tolist(), weeks, strict=True
        ):
            p_alive[i] = float(alive)
            day = pd.Timestamp(as_of[i]) + pd.Timedelta(days=float(week) * DAYS_PER_WEEK)
            next_order[i] = day.date()
    return {"p_alive": p_alive, "expected_next_order_date": next_order}


def reason_lists(
    frame: pd.DataFrame, ordered: np.ndarray, bundle: ModelBundle, descriptions: Mapping[str, str]
) -> list[list[dict[str, Any]]]:
    """The reasons of every member, as `score` words them with `LibraryDomain.reasons`: the
    churn model's SHAP contributions for members with orders, the activation model's for the
    others (none without one), top MAX_REASONS positive, phrased from the member's values."""
    found: list[list[dict[str, Any]]] = [[] for _ in range(len(frame))]
    values: dict[str, list[Any]] = {}
    for model, rows, contribution in contributions(ordered, frame_matrices(frame), bundle):
        names, name = model.feature_names, model.ref.name
        chosen = top_positive(contribution, MAX_REASONS)
        for k, i in enumerate(rows.tolist()):
            reasons = []
            for j in chosen[k][chosen[k] >= 0].tolist():
                code = names[j]
                fields = _phrase_fields(code)
                for field in fields:
                    if field not in values:
                        values[field] = _plain(frame, field)
                row = {field: values[field][i] for field in fields}
                text = phrase(code, row, descriptions)
                impact = float(contribution[k, j])
                reasons.append({"code": code, "text": text, "model": name, "impact": impact})
            found[i] = reasons
    return found


@cache
def _phrase_fields(name: str) -> tuple[str, ...]:
    """The member values `training.core.reasons.phrase` reads to word feature `name`."""
    fields = {name}
    for part in PHRASES.get(name, ()):
        fields.update(re.findall(r"{(\w+)", part))
    return tuple(sorted(fields))


def _plain(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column's values as the online store returns them (None when missing or absent)."""
    if name not in frame.columns:
        return [None] * len(frame)
    return [None if _missing(v) else v for v in frame[name].tolist()]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or value != value


def _number(value: Any) -> float | None:
    """A score as a float, None when missing (NaN)."""
    return None if value is None or value != value else float(value)


def _utc(stamp: Any) -> datetime:
    """A cutoff as an aware UTC datetime, as the online store's timestamps read back."""
    return pd.Timestamp(stamp).tz_convert("UTC").to_pydatetime().replace(tzinfo=UTC)


__all__ = ["PublishedCard", "card_frame", "card_key", "observed_scores", "scores_body"]
