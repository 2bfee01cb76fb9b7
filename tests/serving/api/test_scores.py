"""Score endpoints: one member, a batch, profile-only members, unknown members, expected
values."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from memberscore.settings import Settings
from serving.api.deps import get_model_holder
from serving.schemas import MemberScores
from serving.scoring.bundle import ModelBundle, ModelHolder
from serving.scoring.frames import discount_factor
from serving.scoring.score import flat_scores
from tests.serving.conftest import AS_OF, FakeReader, FakeSource, FakeSpendModel


def test_member_scores_carry_every_part(client: TestClient, read_headers: dict[str, str]) -> None:
    # Given a member with orders, when their scores are asked for
    response = client.get("/v1/members/m3/scores", headers=read_headers)

    # Then every part of the outlook is there
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["member_id"] == "m3"
    assert body["insufficient_history"] is False
    assert [c["horizon_days"] for c in body["churn"]] == [90], "one churn model: the default"
    assert 0 <= body["churn"][0]["probability"] <= 1
    assert body["activation"] is None, "activation is for members who never ordered"
    spend, clv = body["spend"], body["clv"]
    assert spend["p10"] <= spend["p50"] <= spend["p90"], "interval must be ordered"
    assert clv["p50"] < spend["p50"], "CLV is discounted spend"
    assert body["p_alive"] == 0.8
    assert body["expected_next_order_date"] == "2026-06-15"
    assert body["rfm_segment"] == "champions"
    assert body["lifecycle"]["stage"] in {"active", "at_risk"} and body["lifecycle"]["rule"]
    assert body["tags"] == ["newsletter"]
    assert len(body["reasons"]) == 3 and body["reasons"][0]["model"] == "churn"
    assert body["model_versions"] == {"activation": "1", "churn": "1", "clv": "1"}
    assert body["features_as_of"].startswith("2026-06-01")


def test_member_without_orders_gets_profile_scores_and_the_flag(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    body = client.get("/v1/members/n1/scores", headers=read_headers).json()

    assert body["insufficient_history"] is True
    assert body["activation"]["horizon_days"] == 30
    assert body["churn"] == [] and body["spend"] is None and body["clv"] is None
    assert body["p_alive"] is None, "BTYD needs an order history"
    assert body["lifecycle"] == {"stage": "registered", "rule": "no_order_yet"}
    assert body["reasons"] and body["reasons"][0]["model"] == "activation"


def test_unknown_member_is_404_with_a_clear_body(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    response = client.get("/v1/members/nobody/scores", headers=read_headers)

    assert response.status_code == 404
    assert response.json() == {"detail": "member nobody is not known to the feature store"}


def test_batch_scores_known_members_and_lists_the_rest(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    ids = ["m1", "n2", "ghost", "m7"]

    body = client.post("/v1/scores", json={"member_ids": ids}, headers=read_headers).json()

    assert [s["member_id"] for s in body["scores"]] == ["m1", "n2", "m7"], "in request order"
    assert body["not_found"] == ["ghost"]


def test_batch_of_1000_is_fine_and_1001_is_422_naming_the_field(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    ids = [f"m{i}" for i in range(1001)]
    ok = client.post("/v1/scores", json={"member_ids": ids[:1000]}, headers=read_headers)
    too_many = client.post("/v1/scores", json={"member_ids": ids}, headers=read_headers)

    assert ok.status_code == 200
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "member_ids"


def test_bad_input_is_422_naming_the_field(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    wrong_type = client.post("/v1/scores", json={"member_ids": "m1"}, headers=read_headers)
    bad_id = client.get("/v1/members/has space/scores", headers=read_headers)
    extra = client.post("/v1/scores", json={"member_ids": ["m1"], "x": 1}, headers=read_headers)

    assert wrong_type.status_code == 422 and wrong_type.json()["detail"][0]["field"] == "member_ids"
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["field"] == "member_id"
    assert extra.status_code == 422 and extra.json()["detail"][0]["field"] == "x"


def test_each_configured_churn_horizon_with_a_registered_model_is_served(
    client: TestClient, holder: ModelHolder, read_headers: dict[str, str]
) -> None:
    # Given churn models registered for 30 and 180 days besides the default (90), and one for
    # 365 days, a horizon the settings do not list (30, 90, 180)
    bundle = holder.current
    churn = bundle.models["churn"]
    extra = {
        f"churn_{h}d": replace(churn, ref=replace(churn.ref, name=f"churn_{h}d"), horizon_days=h)
        for h in (30, 180, 365)
    }
    holder._bundle = ModelBundle(dict(bundle.models) | extra)

    # When a member's scores are asked for
    body = client.get("/v1/members/m3/scores", headers=read_headers).json()

    # Then churn lists each configured horizon once, shortest first, with its model
    served = [(c["horizon_days"], c["model"]) for c in body["churn"]]
    assert served == [(30, "churn_30d"), (90, "churn"), (180, "churn_180d")], served
    assert set(body["model_versions"]) >= {"churn_30d", "churn_180d"}


def test_scores_carry_expected_orders_spend_and_clv(
    client: TestClient,
    holder: ModelHolder,
    member_rows: dict[str, dict[str, Any]],
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """Given a spend model predicting expected orders and spend, a member's answer carries them
    beside the interval: `orders_mean`, `spend.mean`, and `clv.mean` discounted like the
    interval; the decision rules see them by name too."""
    holder._bundle = FakeSource(clv=FakeSpendModel()).load()
    row = member_rows["m3"]
    want = FakeSpendModel.expected(row["frequency"], row["monetary"])

    body = client.get("/v1/members/m3/scores", headers=read_headers).json()

    factor = discount_factor(365, serving_settings.monthly_discount_rate)
    assert body["orders_mean"] == pytest.approx(want["orders_mean"])
    assert body["spend"]["mean"] == pytest.approx(want["spend_mean"])
    assert body["clv"]["mean"] == pytest.approx(want["spend_mean"] * factor)
    assert body["clv"]["p50"] == pytest.approx(want["p50"] * factor)
    assert body["spend"]["p10"] <= body["spend"]["p50"] <= body["spend"]["p90"]
    flat = flat_scores(MemberScores.model_validate(body))
    assert flat["spend_mean"] == body["spend"]["mean"] and flat["clv_mean"] == body["clv"]["mean"]
    assert flat["orders_mean"] == body["orders_mean"] and flat["p_alive"] == 0.8
    never = client.get("/v1/members/n1/scores", headers=read_headers).json()
    assert never["orders_mean"] is None and never["spend"] is None, "no order history"


def test_scores_carry_the_next_tier_and_when_it_may_be_reached(
    client: TestClient,
    holder: ModelHolder,
    reader: FakeReader,
    member_rows: dict[str, dict[str, Any]],
    read_headers: dict[str, str],
) -> None:
    """Given a spend model with known outputs and no spend leaving the window (the rows have
    no window features), the expected date is the distance over the expected daily spend after
    the cutoff and the chance is the fitted P(spend over the horizon >= distance); a member
    who never ordered keeps the distance without timing; a top-tier member has no next tier."""
    holder._bundle = FakeSource(clv=FakeSpendModel()).load()
    row = member_rows["m8"]
    want = FakeSpendModel.expected(row["frequency"], row["monetary"])
    distance = row["distance_to_next_tier"]
    assert 0 < distance < want["p10"], "precondition: inside the first piece of the fit"

    body = client.get("/v1/members/m8/scores", headers=read_headers).json()

    tier = body["next_tier"]
    days = distance / (want["spend_mean"] / 365)
    assert tier["expected_date"] == (AS_OF + timedelta(days=days)).date().isoformat(), tier
    assert tier["probability_within_period"] == pytest.approx(0.9 ** (distance / want["p10"]))
    assert (tier["distance"], tier["currency"], tier["period_days"]) == (distance, "USD", 365)
    flat = flat_scores(MemberScores.model_validate(body))
    assert flat["next_tier_probability"] == tier["probability_within_period"]
    never = client.get("/v1/members/n1/scores", headers=read_headers).json()["next_tier"]
    assert never["distance"] == 50.0 and never["expected_date"] is None
    assert never["probability_within_period"] is None, "no spend forecast without orders"
    reader.rows["m8"] = {**row, "distance_to_next_tier": None}
    top = client.get("/v1/members/m8/scores", headers=read_headers).json()
    assert top["next_tier"] is None, "the top tier has no next tier"


def test_the_next_tier_is_documented(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    fields = schemas["NextTier"]["properties"]
    assert {"name", "distance", "expected_date", "probability_within_period"} <= set(fields)
    assert "description" in fields["probability_within_period"]
    assert "next_tier" in schemas["MemberScores"]["properties"]


def test_a_spend_model_without_means_answers_null_means(
    client: TestClient, holder: ModelHolder, read_headers: dict[str, str]
) -> None:
    holder._bundle = FakeSource(clv=FakeSpendModel(("p10", "p50", "p90"))).load()

    body = client.get("/v1/members/m3/scores", headers=read_headers).json()

    assert body["orders_mean"] is None and body["spend"]["mean"] is None
    assert body["clv"]["mean"] is None and body["spend"]["p50"] > 0, "the interval is served"


def test_without_an_activation_model_members_without_orders_get_null_activation(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    """Given a programme where every member has bought, so no activation champion exists, when
    members with and without orders are scored (one and many), then each answer is 200: the
    member without orders has activation null, no reasons (no model to explain), stage
    registered; the buyer is scored as usual; activation is not among the served versions."""
    holder = ModelHolder(FakeSource(without=("activation",)))
    holder.refresh()
    client.app.dependency_overrides[get_model_holder] = lambda: holder

    one = client.get("/v1/members/n1/scores", headers=read_headers)
    many = client.post("/v1/scores", json={"member_ids": ["n1", "m3"]}, headers=read_headers)
    action = client.get("/v1/members/n1/next-best-action", headers=read_headers)

    assert one.status_code == 200, one.text
    body = one.json()
    assert body["insufficient_history"] is True and body["activation"] is None
    assert body["reasons"] == [], "no activation model: no reasons for a member without orders"
    assert body["lifecycle"] == {"stage": "registered", "rule": "no_order_yet"}
    assert body["model_versions"] == {"churn": "1", "clv": "1"}
    assert many.status_code == 200, many.text
    n1, m3 = many.json()["scores"]
    assert n1 == body, "one member or many: the same answer"
    assert m3["churn"] and m3["clv"] is not None and m3["activation"] is None
    assert action.status_code == 200, action.text
    assert action.json()["lifecycle"]["stage"] == "registered"
