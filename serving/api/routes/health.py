"""Liveness, readiness and Prometheus metrics: open endpoints, no API key."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from memberscore.errors import MemberscoreError
from memberscore.redact import redact
from serving.api.deps import ContactLogDep, FeaturesDep, HolderDep, MetricsDep
from serving.schemas import Health, Readiness
from serving.scoring.bundle import ModelHolder

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (says nothing about models or stores). Answered on the event loop
    from memory, so threads blocked on a hung store never delay it."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready; `reasons` says why."}},
)
def readyz(holder: HolderDep, features: FeaturesDep, contacts: ContactLogDep) -> Response:
    """Ready when models are loaded and the online store and contact log answer. Optional
    models the loaded bundle lacks (activation without a champion) do not make it unready:
    `not_served` names them and why, and is left out when every model is served. A reload
    that failed after the first load (a version refused) leaves it ready with the bundle it
    has; `last_error` says what was refused."""
    reasons: list[str] = []
    not_served: dict[str, str] | None = None
    last_error: str | None = None
    if not holder.loaded:
        reasons.append(f"models not loaded: {holder.last_error or _first_load(holder)}")
    else:
        not_served = holder.current.not_served() or None
        last_error = holder.last_error
    for label, store in (("online store", features), ("contact log", contacts)):
        try:
            store.ping()
        except MemberscoreError as error:
            reasons.append(f"{label} unavailable: {redact(error)}")
    body = Readiness(
        status="unavailable" if reasons else "ok",
        reasons=reasons,
        not_served=not_served,
        last_error=last_error,
    )
    code = status.HTTP_503_SERVICE_UNAVAILABLE if reasons else status.HTTP_200_OK
    return JSONResponse(body.model_dump(exclude_none=True), status_code=code)


def _first_load(holder: ModelHolder) -> str:
    """Why no bundle yet, before any load has failed."""
    return "first load from the registry in progress" if holder.loading else "no load attempted yet"


@router.get("/metrics", response_class=Response)
def metrics(collectors: MetricsDep) -> Response:
    """Request counts, latency histograms and score distributions, in Prometheus text format."""
    return Response(collectors.exposition(), media_type="text/plain; version=0.0.4")
