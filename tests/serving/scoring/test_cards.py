"""Published score cards: served when current (same features cutoff, same models and settings),
live scores otherwise; either way the same answer, byte for byte."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from memberscore.settings import Settings
from pipelines.publish import cards_frame
from serving.scoring import cards
from serving.scoring.bundle import ModelHolder
from serving.scoring.cards import card_key
from serving.scoring.context import ScoringContext
from serving.scoring.sources import PublishedCard
from tests.serving.conftest import AS_OF, FakeDomain, FakeReader, FakeSource, FakeSpendModel


def publish(reader: FakeReader, holder: ModelHolder, settings: Settings, ids: list[str]) -> None:
    """Publish the cards of `ids` into the fake store, as `pipelines.publish.run` would."""
    context = ScoringContext(
        bundle=holder.current, reader=reader, domain=FakeDomain(), settings=settings
    )
    frame = cards_frame(ids, context)
    for row in frame.itertuples():
        reader.cards[row.member_id] = PublishedCard(
            row.card, row.models, row.observed, row.as_of.to_pydatetime(), AS_OF
        )


def test_published_answers_equal_live_answers(
    client: TestClient,
    reader: FakeReader,
    holder: ModelHolder,
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """Given cards published for some members, one- and many-member answers are byte-identical
    to live scoring, in request order, with unknown ids listed."""
    ids = ["n1", "m3", "ghost", "m1", "n2"]
    live_one = client.get("/v1/members/m3/scores", headers=read_headers).content
    live_many = client.post("/v1/scores", json={"member_ids": ids}, headers=read_headers).content

    publish(reader, holder, serving_settings, ["m3", "n1", "m2"])
    one = client.get("/v1/members/m3/scores", headers=read_headers)
    many = client.post("/v1/scores", json={"member_ids": ids}, headers=read_headers)

    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.content == live_one
    assert many.content == live_many, "published (m3, n1) and live (m1, n2) in request order"
    assert many.json()["not_found"] == ["ghost"]


def test_a_current_card_is_served_and_a_stale_one_is_not(
    client: TestClient,
    reader: FakeReader,
    holder: ModelHolder,
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """The served card is the published one while its key and cutoff match the store and the
    models; another key (new champion, other settings) or cutoff (new features) scores live."""
    publish(reader, holder, serving_settings, ["m3"])
    card = reader.cards["m3"]
    marked = json.loads(card.card) | {"rfm_segment": "published"}
    reader.cards["m3"] = replace(card, card=json.dumps(marked, separators=(",", ":")))

    def segment() -> str:
        return client.get("/v1/members/m3/scores", headers=read_headers).json()["rfm_segment"]

    assert segment() == "published", "a current card is served as published"
    reader.cards["m3"] = replace(reader.cards["m3"], features_as_of=AS_OF + timedelta(days=7))
    assert segment() != "published", "features of a newer cutoff: scored live"
    reader.cards["m3"] = replace(reader.cards["m3"], features_as_of=AS_OF)
    assert segment() == "published"
    other = serving_settings.model_copy(update={"monthly_discount_rate": 0.02})
    assert card_key(holder.current, other) != card.key, "settings that change a card"
    client.app.state.settings = other
    assert segment() != "published", "other settings: scored live"
    client.app.state.settings = serving_settings
    holder._source.promote()  # type: ignore[attr-defined]
    holder.refresh()
    assert segment() != "published", "new champions: scored live until published again"


def test_published_cards_feed_the_score_metrics(
    client: TestClient,
    reader: FakeReader,
    holder: ModelHolder,
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """Scores served from cards are observed like live ones (the distributions in /metrics)."""
    publish(reader, holder, serving_settings, ["m3"])
    client.get("/v1/members/m3/scores", headers=read_headers)
    churn = json.loads(reader.cards["m3"].observed)["churn_90d"]
    metrics = client.get("/metrics").text
    assert churn is not None
    assert 'memberscore_score_count{score="churn_90d"} 1.0' in metrics


def test_card_key_follows_the_models_and_card_settings(
    holder: ModelHolder, serving_settings: Settings
) -> None:
    key = card_key(holder.current, serving_settings)
    unrelated = serving_settings.model_copy(update={"chunk_rows": 7})
    assert card_key(holder.current, unrelated) == key, "settings that do not shape a card"
    assert card_key(holder.current, serving_settings) == key, "stable"
    euro = serving_settings.model_copy(update={"currency": "EUR"})
    assert card_key(holder.current, euro) != key, "the currency is in the card"
    quarter = serving_settings.model_copy(update={"tier_period_days": 90})
    assert card_key(holder.current, quarter) != key, "the tier period shapes next_tier"


def test_next_best_action_weighs_published_scores(
    client: TestClient,
    reader: FakeReader,
    holder: ModelHolder,
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """Next-best actions built on published cards equal those built on live scores (members in
    request order, unknown ids listed), and a current card's scores are the ones used."""
    ids = {"member_ids": ["n1", "m3", "ghost", "m1"]}
    live = client.post("/v1/next-best-action", json=ids, headers=read_headers).content

    publish(reader, holder, serving_settings, ["m3", "n1"])
    assert client.post("/v1/next-best-action", json=ids, headers=read_headers).content == live

    card = json.loads(reader.cards["m3"].card)
    card["lifecycle"] = {"stage": "published", "rule": "from the card"}
    reader.cards["m3"] = replace(reader.cards["m3"], card=json.dumps(card))
    answer = client.get("/v1/members/m3/next-best-action", headers=read_headers).json()
    assert answer["lifecycle"]["stage"] == "published"


def test_published_cards_carry_expected_values_and_p_alive(
    reader: FakeReader, serving_settings: Settings
) -> None:
    """A published card holds the expected orders, spend and CLV and P(alive), as live."""
    holder = ModelHolder(FakeSource(clv=FakeSpendModel()))
    holder.refresh()
    publish(reader, holder, serving_settings, ["m3", "n1"])

    card = json.loads(reader.cards["m3"].card)
    assert card["orders_mean"] > 0 and card["spend"]["mean"] > card["clv"]["mean"] > 0
    assert card["p_alive"] == 0.8
    assert json.loads(reader.cards["n1"].card)["orders_mean"] is None


def test_published_cards_carry_the_next_tier_as_live(
    reader: FakeReader, serving_settings: Settings
) -> None:
    """A published card holds the next tier with its upgrade timing, as a live answer; a
    member at the top tier has none."""
    holder = ModelHolder(FakeSource(clv=FakeSpendModel()))
    holder.refresh()
    reader.rows["m2"] = {**reader.rows["m2"], "distance_to_next_tier": None}
    publish(reader, holder, serving_settings, ["m3", "m2"])

    tier = json.loads(reader.cards["m3"].card)["next_tier"]
    assert tier["distance"] == 150.0 and tier["period_days"] == 365
    assert 0 < tier["probability_within_period"] < 1, tier
    assert json.loads(reader.cards["m2"].card)["next_tier"] is None, "top tier"


def test_card_key_follows_the_card_schema(
    holder: ModelHolder, serving_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards published before the card gained fields are not served: the schema is in the key."""
    key = card_key(holder.current, serving_settings)
    monkeypatch.setattr(cards, "card_schema", lambda: "an older schema")
    assert card_key(holder.current, serving_settings) != key


def test_cards_published_without_an_activation_model_are_served_as_live(
    client: TestClient,
    reader: FakeReader,
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """Given no activation champion, the cards published for members with and without orders
    hold a null activation (observed as None: the metrics skip it), are current under the bundle's
    key, and the answers and decisions built on them equal live ones byte for byte."""
    from serving.api.deps import get_model_holder

    holder = ModelHolder(FakeSource(without=("activation",)))
    holder.refresh()
    client.app.dependency_overrides[get_model_holder] = lambda: holder
    ids = {"member_ids": ["n1", "m3"]}
    live = client.post("/v1/scores", json=ids, headers=read_headers).content
    live_actions = client.post("/v1/next-best-action", json=ids, headers=read_headers).content

    publish(reader, holder, serving_settings, ["n1", "m3"])

    n1 = reader.cards["n1"]
    assert json.loads(n1.card)["activation"] is None
    assert json.loads(n1.observed)["activation"] is None
    assert n1.current(card_key(holder.current, serving_settings))
    assert client.post("/v1/scores", json=ids, headers=read_headers).content == live
    actions = client.post("/v1/next-best-action", json=ids, headers=read_headers)
    assert actions.content == live_actions
