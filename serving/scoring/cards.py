"""Published score cards: the score API's answers computed in advance, and when one may be served.

A member's card (`MemberScores`) depends only on its features, which change when a new snapshot
is materialized, and on the served model versions and a few settings, which change when a
champion is promoted or the service is reconfigured. Between those events every request would
recompute the same numbers, reason codes (exact SHAP, most of a live request's CPU) included.
`pipelines.publish` computes every member's card once, with the same code a live request runs
(`serving.scoring.score.score`), and writes it to the online store beside the features.

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
from collections.abc import Mapping
from functools import cache
from importlib.metadata import version

from memberscore.settings import Settings
from serving.schemas import MemberScores
from serving.scoring.bundle import ModelBundle
from serving.scoring.score import flat_scores
from serving.scoring.sources import PublishedCard

# Settings that change a card; everything else (stores, keys, batch jobs) does not.
CARD_SETTINGS = {
    "currency",
    "churn_horizon_days",
    "churn_horizons_days",
    "monthly_discount_rate",
    "decisions",
}
RELEASE = version("memberscore")


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


__all__ = ["PublishedCard", "card_key", "observed_scores", "scores_body"]
