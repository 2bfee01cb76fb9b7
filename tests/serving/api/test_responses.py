"""ModelJSON: the score routes' JSON, serialised by pydantic in one step."""

from __future__ import annotations

import json
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient

from memberscore.settings import Settings
from serving.api.responses import ModelJSON
from serving.schemas import ScoresOut
from serving.scoring.score import score
from serving.scoring.sources import MemberFeatures
from tests.serving.conftest import AS_OF, FakeDomain, FakeSource


def test_model_json_says_what_fastapis_own_serialisation_says(
    member_rows: dict[str, dict[str, Any]], settings: Settings
) -> None:
    """Given scores of members with and without orders (dates, None, nested lists), when
    answered as ModelJSON, then the body parses to what FastAPI's encoder makes of the model
    and is declared JSON."""
    rows = {m: member_rows[m] for m in ("m3", "m4", "n1")}
    cards = score(
        list(rows),
        MemberFeatures(rows, dict.fromkeys(rows, AS_OF)),
        FakeSource().load(),
        FakeDomain(),
        settings,
    )
    answer = ModelJSON(cards)
    assert json.loads(answer.body) == jsonable_encoder(cards)
    assert answer.headers["content-type"] == "application/json"


def test_score_routes_answer_the_schema_of_their_response_model(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    """Given the batch route answering ModelJSON, its body still validates as ScoresOut."""
    response = client.post(
        "/v1/scores", json={"member_ids": ["m1", "n2", "nobody"]}, headers=read_headers
    )
    assert response.status_code == 200, response.text
    body = ScoresOut.model_validate_json(response.content)
    assert [c.member_id for c in body.scores] == ["m1", "n2"] and body.not_found == ["nobody"]
