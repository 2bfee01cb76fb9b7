"""Operations: health, readiness with a store down and back, metrics, models, reload and the
champion swap while requests run."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from memberscore.settings import Settings
from serving.api.app import create_app
from serving.api.deps import get_model_holder
from serving.scoring.bundle import OPTIONAL_MODELS, ModelBundle, ModelHolder
from tests.serving.conftest import FakeSource
from training.models.persistence import DamagedModel


def test_store_down_makes_readyz_and_scoring_503_then_recovers(
    client: TestClient, reader, read_headers: dict[str, str]
) -> None:
    assert client.get("/readyz").json() == {"status": "ok", "reasons": []}

    # Given the online store goes down
    reader.down = True
    ready = client.get("/readyz")
    scores = client.get("/v1/members/m1/scores", headers=read_headers)

    # Then readiness and scoring say so, with a reason and no trace
    assert ready.status_code == 503
    assert ready.json()["reasons"][0].startswith("online store unavailable: the Redis")
    assert scores.status_code == 503 and scores.headers["retry-after"]
    assert "cannot be reached" in scores.json()["detail"]

    # When it is back, both recover with no restart
    reader.down = False
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/members/m1/scores", headers=read_headers).status_code == 200


def test_no_model_yet_is_503_not_500(
    client: TestClient, source, read_headers: dict[str, str]
) -> None:
    empty = ModelHolder(source)
    client.app.dependency_overrides[get_model_holder] = lambda: empty

    scores = client.get("/v1/members/m1/scores", headers=read_headers)
    ready = client.get("/readyz").json()

    assert scores.status_code == 503 and scores.json()["detail"] == "no model loaded yet"
    assert ready["reasons"] == ["models not loaded: no load attempted yet"]


def test_models_and_reload(
    client: TestClient, source, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    models = client.get("/v1/models", headers=read_headers).json()
    unchanged = client.post("/v1/admin/reload", headers=write_headers).json()
    source.promote()
    swapped = client.post("/v1/admin/reload", headers=write_headers).json()

    assert {(m["name"], m["version"], m["alias"]) for m in models["models"]} == {
        ("churn", "1", "champion"),
        ("activation", "1", "champion"),
        ("clv", "1", "champion"),
    }
    quality = {
        m["name"]: (m["quality_grade"], m["horizon_days"], m["label_horizon_days"])
        for m in models["models"]
    }
    assert quality == {
        "churn": ("A", 90, None),
        "activation": (None, 30, None),
        "clv": ("C", 365, 180),
    }, "the tags recorded with each version; None where untagged"
    notes = {m["name"]: m["quality_notes"] for m in models["models"]}
    assert notes["clv"] == "interval too narrow" and notes["activation"] is None
    assert unchanged["swapped"] is False and source.loads == 2, "no load when nothing changed"
    assert swapped == {"swapped": True, "models": {"churn": "2", "activation": "2", "clv": "2"}}


def test_without_an_activation_champion_the_api_is_ready_and_says_activation_is_not_served(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    """Given no activation champion (every member has bought), /readyz is 200 and names
    activation as not served, with why; /v1/models lists the others and says the same. With
    every model served, `not_served` is empty in /v1/models and left out of /readyz."""
    full = client.get("/v1/models", headers=read_headers).json()
    holder = ModelHolder(FakeSource(without=("activation",)))
    holder.refresh()
    client.app.dependency_overrides[get_model_holder] = lambda: holder

    ready = client.get("/readyz")
    models = client.get("/v1/models", headers=read_headers).json()

    why = "no champion; train activation when the programme has members without orders"
    assert OPTIONAL_MODELS["activation"] == why
    assert ready.status_code == 200, "activation is optional: ready without it"
    assert ready.json() == {"status": "ok", "reasons": [], "not_served": {"activation": why}}
    assert {m["name"] for m in models["models"]} == {"churn", "clv"}
    assert models["not_served"] == {"activation": why}
    assert full["not_served"] == {}, "every model served: nothing listed"


def test_champion_swap_while_requests_run_fails_none(
    client: TestClient, source, holder: ModelHolder, read_headers: dict[str, str]
) -> None:
    def ask(i: int) -> tuple[int, set[str]]:
        response = client.post(
            "/v1/scores", json={"member_ids": [f"m{i % 40}", "n1"]}, headers=read_headers
        )
        body = response.json()
        return response.status_code, {
            v for s in body["scores"] for v in s["model_versions"].values()
        }

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(ask, i) for i in range(120)]
        for _ in range(5):
            source.promote()
            holder.refresh()
        results = [f.result() for f in futures]

    assert all(code == 200 for code, _ in results), "no request may fail during a swap"
    assert all(len(versions) == 1 for _, versions in results), "one bundle per request"
    assert holder.current.fingerprint["churn"] == "6"


def test_metrics_count_requests_by_template_and_score_distributions(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    client.get("/v1/members/m1/scores", headers=read_headers)
    client.get("/v1/members/nobody/scores", headers=read_headers)

    text = client.get("/metrics").text

    assert 'route="/v1/members/{member_id}/scores",status="200"' in text
    assert 'route="/v1/members/{member_id}/scores",status="404"' in text
    assert "nobody" not in text and "m1" not in text, "no member ids in labels"
    assert 'memberscore_score_count{score="churn_90d"} 1.0' in text
    assert "memberscore_request_seconds_bucket" in text


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "reasons": []}


def test_logs_name_route_templates_not_members(
    client: TestClient, read_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="memberscore"):
        client.get("/v1/members/m7/scores", headers=read_headers)
        client.post("/v1/scores", json={"member_ids": ["m8", "ghost-9"]}, headers=read_headers)

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /v1/members/{member_id}/scores 200" in text
    assert "m7" not in text and "m8" not in text and "ghost-9" not in text


class DamagingSource(FakeSource):
    """The fake registry, whose versions after the first are refused as damaged (what
    `serving.scoring.registry` raises for a file that fails its checksum or the probe)."""

    def load(self) -> ModelBundle:
        if self.version > 1:
            raise DamagedModel(
                f"churn version {self.version} refused: native/booster.txt cannot be loaded by "
                "LightGBM (the loader died of SIGSEGV)"
            )
        return super().load()


def test_a_refused_version_is_named_while_the_old_bundle_keeps_serving(
    client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    """Issue 14 finding 1. Given a bundle in service, when the new champion is refused as
    damaged, the reload answers 503 naming model, version and file; /readyz stays 200 (the
    old bundle serves) and names the refusal, as /v1/models does; scoring keeps version 1."""
    source = DamagingSource()
    holder = ModelHolder(source)
    holder.refresh()
    client.app.dependency_overrides[get_model_holder] = lambda: holder

    source.promote()
    reload = client.post("/v1/admin/reload", headers=write_headers)
    ready = client.get("/readyz")
    models = client.get("/v1/models", headers=read_headers).json()
    scores = client.get("/v1/members/m1/scores", headers=read_headers)

    refused = "churn version 2 refused: native/booster.txt cannot be loaded"
    assert reload.status_code == 503 and refused in reload.json()["detail"], reload.text
    assert ready.status_code == 200, "the old bundle serves: still ready"
    assert refused in ready.json().get("last_error", ""), ready.json()
    assert refused in (models["last_error"] or "") and {m["version"] for m in models["models"]} == {
        "1"
    }, models
    assert scores.status_code == 200 and scores.json()["model_versions"]["churn"] == "1"


def test_the_app_listens_at_once_while_the_registry_is_unreachable(
    serving_settings: Settings,
) -> None:
    """Issue 14 finding 5. Given an MLflow PostgreSQL that refuses connections, the app starts
    (the lifespan yields) within seconds instead of after MLflow's retries (about 100 s);
    /healthz answers, /readyz is 503 naming the unreachable registry, without its password."""
    uri = "postgresql+psycopg://ms:hunter2secret@127.0.0.1:1/mlflow"
    settings = serving_settings.model_copy(update={"mlflow_tracking_uri": uri})
    app = create_app(settings)

    started = time.monotonic()
    with TestClient(app) as client:
        listening = time.monotonic() - started
        health = client.get("/healthz")
        deadline, reasons = time.monotonic() + 15, []
        while time.monotonic() < deadline:
            ready = client.get("/readyz")
            reasons = ready.json()["reasons"]
            if any("StoreUnavailable" in reason for reason in reasons):
                break
            time.sleep(0.1)

    assert listening < 5, f"start-up waited {listening:.1f} s on the registry"
    assert health.status_code == 200
    assert ready.status_code == 503, ready.text
    models = next((r for r in reasons if r.startswith("models not loaded: ")), "")
    assert "the MLflow registry database at postgresql+psycopg://ms:***@127.0.0.1:1" in models
    assert "cannot be reached" in models, reasons
    assert "hunter2secret" not in ready.text, "no password in an open answer"
