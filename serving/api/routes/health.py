"""Liveness, readiness and Prometheus metrics: open endpoints, no API key."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from memberscore.errors import MemberscoreError
from memberscore.redact import redact
from serving.api.deps import ContactLogDep, FeaturesDep, HolderDep, MetricsDep
from serving.schemas import Health, Readiness

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
    `not_served` names them and why, and is left out when every model is served."""
    reasons: list[str] = []
    not_served: dict[str, str] | None = None
    if not holder.loaded:
        reasons.append(f"models not loaded: {holder.last_error or 'no load attempted yet'}")
    else:
        not_served = holder.current.not_served() or None
    for label, store in (("online store", features), ("contact log", contacts)):
        try:
            store.ping()
        except MemberscoreError as error:
            reasons.append(f"{label} unavailable: {redact(error)}")
    body = Readiness(
        status="unavailable" if reasons else "ok", reasons=reasons, not_served=not_served
    )
    code = status.HTTP_503_SERVICE_UNAVAILABLE if reasons else status.HTTP_200_OK
    return JSONResponse(body.model_dump(exclude_none=True), status_code=code)


@router.get("/metrics", response_class=Response)
def metrics(collectors: MetricsDep) -> Response:
    """Request counts, latency histograms and score distributions, in Prometheus text format."""
    return Response(collectors.exposition(), media_type="text/plain; version=0.0.4")
