"""The demo's tour of the score API calls every endpoint the app declares, once."""

from __future__ import annotations

import re

from memberscore.settings import Settings
from pipelines import demo_api
from serving.api.app import create_app


def test_the_tour_calls_every_endpoint(settings: Settings) -> None:
    paths = create_app(settings).openapi()["paths"]
    declared = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    called = {
        (method, re.sub(r"/(m\d+|demo-m\d+)(?=/|$)", "/{id}", path))
        for method, path, _ in demo_api._calls(["m0000001", "m0000002"])
    }
    templated = {(method, re.sub(r"\{[a-z_]+\}", "{id}", path)) for method, path in declared}

    assert templated == called, f"not called: {templated - called}; unknown: {called - templated}"
