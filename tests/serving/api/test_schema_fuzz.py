"""Schemathesis over the OpenAPI schema: generated requests (valid and not) never get a 500.

Bounded to a few examples per operation so the run stays a few seconds."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

WRITE_KEY_HEADERS = {"X-API-Key": "test-write-key"}


@contextlib.asynccontextmanager
async def _no_lifespan(app: object) -> AsyncIterator[None]:
    yield  # the fakes in dependency_overrides stand in for what the lifespan opens


@pytest.fixture
def api_schema(client: TestClient) -> schemathesis.schemas.BaseSchema:
    """The app's OpenAPI schema, called in-process through ASGI (with the conftest fakes)."""
    client.app.router.lifespan_context = _no_lifespan
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


def test_no_request_gets_a_server_error(api_schema: schemathesis.schemas.BaseSchema) -> None:
    """Every operation, a bounded number of generated requests each (valid and invalid)."""
    checked = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(headers=WRITE_KEY_HEADERS)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )

        try:
            no_server_error()
        except Unsatisfiable:  # no input to make invalid (e.g. GET /healthz)
            assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request"
            continue
        checked += 1

    declared = sum(len(methods) for methods in api_schema.raw_schema["paths"].values())
    assert len(operations) == declared >= 14 and checked >= 22, (
        "every operation, valid and invalid input"
    )
