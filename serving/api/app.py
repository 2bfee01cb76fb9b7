"""The FastAPI app: `create_app(settings)`. Stores are opened in the lifespan; models are loaded
in the background (the reload poll's first tick), so the port listens at once and /readyz says
503 with the reason until the first load succeeds (registry away, no champion, refused version).

Run it with `memberscore serve`; OpenAPI docs at /docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from memberscore.errors import MemberscoreError
from memberscore.redact import redact
from memberscore.settings import Settings
from serving.api import errors
from serving.api.metrics import Metrics
from serving.api.middleware import BodySizeLimit, RequestMetrics
from serving.api.offload import DecisionProcess
from serving.api.reload import poll
from serving.api.resources import Resources, open_resources
from serving.api.routes import actions, consent, contacts, erasure, health, models, scores

LOG = logging.getLogger("memberscore.serving")

DESCRIPTION = """Scores, lifecycle stage, reasons and next-best action of programme members.

Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`: the `read` scope serves
scores, actions, models and consent; `write` also records contacts and consent changes and
reloads models, and erases members (`DELETE /v1/members/{member_id}`)."""


def create_app(settings: Settings) -> FastAPI:
    """The score API for `settings`; nothing is opened until the app starts."""
    app = FastAPI(
        title="memberscore",
        version="1",
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url="/docs",
    )
    app.state.settings = settings
    app.state.metrics = Metrics.for_settings(settings)
    app.state.resources = None
    app.state.decision_process = DecisionProcess()
    errors.install(app)
    for module in (health, scores, actions, contacts, consent, erasure, models):
        app.include_router(module.router, responses=errors.ANY_REQUEST)
    # Added last = outermost: the metrics see every answer, 413s included.
    app.add_middleware(BodySizeLimit, max_bytes=settings.serving.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the stores; in the background load the champions, poll for new ones and warm the
    online store; close everything at the end. Nothing here waits on the registry."""
    settings: Settings = app.state.settings
    resources = await asyncio.to_thread(open_resources, settings)
    app.state.resources = resources
    tasks = (
        asyncio.create_task(
            poll(resources.models, app.state.metrics, settings.serving.model_poll_seconds)
        ),
        asyncio.create_task(_warm_up(resources)),
    )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        app.state.resources = None
        resources.close()
        await asyncio.to_thread(app.state.decision_process.close)


async def _warm_up(resources: Resources) -> None:
    """The first online-store read imports Feast (seconds): paid here, not by a request."""
    try:
        await asyncio.to_thread(resources.features.ping)
    except MemberscoreError as error:
        LOG.warning("online store not usable yet (/readyz says so): %s", redact(error))


def app_from_settings() -> FastAPI:
    """The app for this process's settings (`get_settings()`): uvicorn's factory."""
    from memberscore.settings import get_settings

    return create_app(get_settings())
