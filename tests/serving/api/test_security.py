"""API keys and request limits: 401 without a valid key, 403 without the scope, 413 too big."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.api.security import granted_scopes, hash_key, new_key


def test_missing_key_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/members/m1/scores")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer not-a-key"}, {"X-API-Key": "not-a-key"}, {"Authorization": "x"}],
)
def test_wrong_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/v1/members/m1/scores", headers=headers).status_code == 401


def test_read_key_cannot_write_but_write_key_can_read(
    client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    contact = {"member_id": "m1", "action_id": "winback_email", "channel": "email"}

    forbidden = client.post("/v1/contacts", json=contact, headers=read_headers)
    reload = client.post("/v1/admin/reload", headers=read_headers)
    reads = client.get("/v1/members/m1/scores", headers=write_headers)

    assert forbidden.status_code == 403 and "'write' scope" in forbidden.json()["detail"]
    assert reload.status_code == 403
    assert reads.status_code == 200, "write implies read"


def test_open_endpoints_need_no_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_body_over_the_limit_is_413(client: TestClient, read_headers: dict[str, str]) -> None:
    huge = {"member_ids": ["m" + "1" * 120] * 1000 + ["x" * 200_000]}

    response = client.post("/v1/scores", json=huge, headers=read_headers)

    assert response.status_code == 413
    assert "larger than 200000 bytes" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    def chunks():  # no Content-Length: the middleware must count
        for _ in range(300):
            yield b"x" * 1000

    response = client.post("/v1/scores", content=chunks(), headers=read_headers)

    assert response.status_code == 413


def test_keys_are_matched_by_hash_only() -> None:
    key = new_key()
    stored = ((hash_key(key), "read"),)

    assert granted_scopes(key, stored) == {"read"}
    assert granted_scopes(key + "x", stored) == frozenset()
    assert key not in repr(stored), "the key itself is never stored"
