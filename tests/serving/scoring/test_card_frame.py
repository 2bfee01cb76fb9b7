"""Cards built for whole frames (`serving.scoring.cards.card_frame`, what `memberscore
publish-scores` writes) are the live answers: for every member, the JSON bytes
`serving.scoring.score.score` gives from the features the real online store returns, with
champions from a real registry (churn, activation, clv and a BTYD outlook) and the library
domain (reason texts from the catalog, stage rules, P(alive) and next-order date)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from memberscore.settings import Settings
from serving.online.feast_reader import FeastReader
from serving.scoring.adapters import LibraryDomain
from serving.scoring.bundle import ModelBundle
from serving.scoring.cards import COLUMNS, card_frame, card_key, observed_scores
from serving.scoring.registry import RegistrySource
from serving.scoring.score import score
from tests.serving.scoring.test_registry import champions_in, materialized
from training.core.reasons import catalog_descriptions


@pytest.fixture(scope="module")
def champions(
    tmp_path_factory: pytest.TempPathFactory, member_rows: dict[str, dict[str, Any]]
) -> Settings:
    """A temp registry with champions churn, activation, clv and btyd."""
    from features.families.btyd import fit_family
    from tests.serving.api.test_outlook import history
    from training import tracking
    from training.jobs import outlook as outlook_job

    settings = champions_in(tmp_path_factory.mktemp("card_frame"), member_rows, seed=3)
    record = outlook_job.log_outlook(
        settings, fit_family(history()), pd.Timestamp("2026-05-01"), {"roc_auc": 0.7}, {}
    )
    tracking.client(settings).set_registered_model_alias("btyd", "champion", record.version)
    return settings


@pytest.fixture(scope="module")
def stored(champions: Settings, snapshot: pd.DataFrame, families: dict) -> Settings:
    """The champions' settings with a local Feast store holding the snapshot."""
    return materialized(champions, "card_frame", snapshot, families)


def live_cards(settings: Settings, bundle: ModelBundle, domain: LibraryDomain) -> dict[str, str]:
    """Every stored member's card as a live request answers it (features read back from the
    online store)."""
    ids = [f"m{i}" for i in range(40)] + [f"n{i}" for i in range(5)]
    features = FeastReader(settings).read(ids, ())
    answer = score(ids, features, bundle, domain, settings)
    return {card.member_id: card.model_dump_json() for card in answer.scores}


def test_frame_cards_are_the_live_answers_byte_for_byte(
    stored: Settings, snapshot: pd.DataFrame
) -> None:
    """Given champions with a BTYD outlook, each member's card from the whole frame equals the
    live answer for that member: scores, reasons in words with their impacts, stage, P(alive),
    next-order date, next tier, tags, versions and cutoff."""
    bundle = RegistrySource(stored).load()
    domain = LibraryDomain(None, None, stored.decisions, catalog_descriptions())
    assert bundle.outlook is not None and bundle.get("activation") is not None

    frame = card_frame(snapshot, bundle, domain, stored)
    live = live_cards(stored, bundle, domain)

    assert list(frame.columns) == list(COLUMNS)
    assert frame["member_id"].tolist() == snapshot["member_id"].tolist(), "input order"
    differ = [
        m for m, card in zip(frame["member_id"], frame["card"], strict=True) if card != live[m]
    ]
    assert not differ, f"cards differ from the live answers for {differ[:5]}"
    assert set(frame["models"]) == {card_key(bundle, stored)}
    cards = frame["card"].tolist()
    assert any('"p_alive":0.' in card for card in cards), "P(alive) from the outlook"
    assert any('"reasons":[{' in card for card in cards), "reasons in words"
    assert any('"next_tier":{' in card for card in cards), "the next tier and its timing"


def test_frame_cards_without_optional_models_are_the_live_answers(
    stored: Settings, snapshot: pd.DataFrame
) -> None:
    """Without an activation model or a BTYD outlook (both optional) the cards still equal
    live answers: null activation and no reasons for members without orders, no P(alive)."""
    full = RegistrySource(stored).load()
    models = {name: model for name, model in full.models.items() if name != "activation"}
    bundle = replace(full, models=models, outlook=None)
    domain = LibraryDomain(None, None, stored.decisions, catalog_descriptions())

    frame = card_frame(snapshot, bundle, domain, stored)
    live = live_cards(stored, bundle, domain)

    assert dict(zip(frame["member_id"], frame["card"], strict=True)) == live
    never = pd.Series(frame["card"].tolist(), index=frame["member_id"])["n1"]
    assert '"activation":null' in never and '"reasons":[]' in never


def test_observed_scores_and_cutoffs_of_frame_cards(
    stored: Settings, snapshot: pd.DataFrame
) -> None:
    """`observed` is the card's observed scores as JSON and `as_of` the snapshot cutoff."""
    from serving.schemas import MemberScores

    bundle = RegistrySource(stored).load()
    domain = LibraryDomain(None, None, stored.decisions, catalog_descriptions())
    frame = card_frame(snapshot.iloc[:6], bundle, domain, stored)

    for row in frame.itertuples():
        card = MemberScores.model_validate_json(row.card)
        assert row.observed == json.dumps(observed_scores(card))
        assert row.as_of == snapshot["as_of"].iloc[0]
        assert card.features_as_of == row.as_of.to_pydatetime()
