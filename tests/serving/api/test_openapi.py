"""The OpenAPI document lists every status the API answers, on each route that answers it, and
the documented statuses are what the API does (issue 14 finding 8: 400, 401 and 409 were
missing; duplicate ids in one batch were merged silently)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from decisions.catalogue import NO_ACTION, load_catalogue
from memberscore.settings import Settings
from serving.api.app import create_app
from serving.api.deps import get_model_holder
from serving.scoring.bundle import ModelHolder
from tests.serving.conftest import READ_KEY, WRITE_KEY, FakeReader, FakeSource

NOT_UTF8 = b'{"member_ids": ["m1\xff"]}'
KEYS = {
    "no key": {},
    "unknown key": {"X-API-Key": "not-a-key"},
    "read key": {"X-API-Key": READ_KEY},
    "write key": {"X-API-Key": WRITE_KEY},
}


def _operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, OpenAPI operation) of every operation the document lists."""
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _url(path: str, value: str = "m1") -> str:
    """`path` with each {parameter} set to `value`."""
    for name in ("member_id", "contact_id"):
        path = path.replace(f"{{{name}}}", value)
    return path


def _documented(app: FastAPI) -> dict[tuple[str, str], set[int]]:
    """(method, path) → the statuses its OpenAPI operation lists."""
    return {
        (method, path): {int(code) for code in operation["responses"]}
        for method, path, operation in _operations(app)
    }


def _probe(client: TestClient, seen: dict[tuple[str, str], set[int]], label: str) -> None:
    """Call every operation as each kind of caller and with each kind of bad input; note the
    statuses (label names the state of the app, for the failure message)."""
    max_bytes = client.app.state.settings.serving.max_body_bytes  # type: ignore[attr-defined]
    for method, path, operation in _operations(client.app):  # type: ignore[arg-type]
        calls: list[dict[str, Any]] = [{"headers": headers} for headers in KEYS.values()]
        write = KEYS["write key"]
        calls.append({"headers": write, "url": _url(path, "has space")})
        calls.append({"headers": write, "url": _url(path, "nobody")})
        calls.append({"headers": write | {"content-length": str(max_bytes + 1)}, "content": b""})
        if "requestBody" in operation:
            calls.append({"headers": write, "json": {}})
            calls.append({"headers": write | {"content-type": "application/json"}, "content": b""})
            json_type = {"content-type": "application/json"}
            calls.append({"headers": write | json_type, "content": NOT_UTF8})
        for call in calls:
            url = call.pop("url", _url(path))
            answer = client.request(method, url, **call)
            seen[(method, path)].add(answer.status_code)
            assert answer.status_code != 500, f"{label}: {method} {url}: {answer.text[:300]}"


@pytest.fixture
def quiet(client: TestClient) -> TestClient:
    """The conftest client, answering 500s rather than raising them into the test."""
    return TestClient(client.app, raise_server_exceptions=False)


def test_every_status_the_api_answers_is_documented_on_its_route(
    quiet: TestClient, reader: FakeReader, serving_settings: Settings
) -> None:
    """Issue 14 finding 8: walk every operation of app.openapi(); call it without a key, with
    a wrong key, each scope, a malformed or unknown id, a body too large, empty, invalid or not
    UTF-8; with the stores up, the online store down, no models loaded, and the app not started
    yet; and record a contact twice. Each status answered must be listed for that operation."""
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    # Given the app with its fakes up
    _probe(quiet, seen, "stores up")
    # ... with the online store down and no model loaded
    reader.down = True
    empty = ModelHolder(FakeSource())
    quiet.app.dependency_overrides[get_model_holder] = lambda: empty  # type: ignore[attr-defined]
    _probe(quiet, seen, "store down, no models")
    # ... and the app before its lifespan opened anything (no fakes)
    starting = TestClient(create_app(serving_settings), raise_server_exceptions=False)
    _probe(starting, seen, "starting")
    # ... and a contact recorded twice
    reader.down = False
    action = sorted(set(load_catalogue().ids) - {NO_ACTION})[0]
    contact = {"member_id": "m1", "action_id": action, "channel": "email", "contact_id": "c-1"}
    for _ in range(2):
        answer = quiet.post("/v1/contacts", json=contact, headers=KEYS["write key"])
        seen[("POST", "/v1/contacts")].add(answer.status_code)
    assert answer.status_code == 409, f"a contact recorded twice: {answer.text}"

    # Then every status seen is in the route's OpenAPI responses
    documented = _documented(quiet.app)  # type: ignore[arg-type]
    assert set(seen) == set(documented), "every operation was called"
    missing = {
        f"{method} {path}": sorted(codes - documented[(method, path)])
        for (method, path), codes in seen.items()
        if codes - documented[(method, path)]
    }
    assert not missing, f"statuses answered but not in the OpenAPI document: {missing}"


def test_every_documented_status_has_a_body_model_and_503_a_retry_after(
    client: TestClient,
) -> None:
    """Issue 14 finding 8: each error status documents its JSON body; 503s the Retry-After."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code.startswith("2"):
                    continue
                assert "application/json" in response.get("content", {}), (
                    f"{method.upper()} {path} {code} documents no JSON body"
                )
                if code == "503" and path != "/readyz":
                    assert "Retry-After" in response.get("headers", {}), (
                        f"{method.upper()} {path} 503 does not document Retry-After"
                    )


def test_a_body_that_is_not_utf8_gets_the_documented_400_saying_so(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    """Issue 14 finding 8: a JSON body with bytes that are not UTF-8 is 400 (documented),
    with a message saying what to send."""
    headers = read_headers | {"content-type": "application/json"}

    answer = client.post("/v1/scores", content=NOT_UTF8, headers=headers)

    assert answer.status_code == 400, answer.text
    assert "not valid UTF-8" in answer.json()["detail"], answer.text
    documented = client.app.openapi()["paths"]["/v1/scores"]["post"]["responses"]  # type: ignore[attr-defined]
    assert "400" in documented, "the 400 is not in the OpenAPI document"


@pytest.mark.parametrize("path", ["/v1/scores", "/v1/next-best-action"])
def test_a_batch_naming_a_member_twice_is_422_naming_the_field_and_the_ids(
    client: TestClient, read_headers: dict[str, str], path: str
) -> None:
    """Issue 14 finding 8: duplicate ids in one batch are refused, not merged silently."""
    ids = ["m1", "m2", "m1", "m3", "m2"]

    answer = client.post(path, json={"member_ids": ids}, headers=read_headers)

    assert answer.status_code == 422, f"duplicates answered {answer.status_code}"
    (error,) = answer.json()["detail"]
    assert error["field"] == "member_ids", error
    assert "duplicate member ids: m1, m2" in error["msg"], error
    schema = client.app.openapi()["components"]["schemas"]["MembersIn"]  # type: ignore[attr-defined]
    assert schema["properties"]["member_ids"].get("uniqueItems") is True, "not documented"
