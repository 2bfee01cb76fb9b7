"""Dependencies of the routes: settings, the live resources, the model bundle, the request
context built from them and API-key scopes.

They only read app state, so they are `async def`: FastAPI runs a plain `def` dependency in its
thread pool, a hand-off that cost more CPU per request than the dependency itself.

Tests replace `get_model_holder`, `get_feature_reader`, `get_contact_log` and `get_domain` with
fakes through `app.dependency_overrides`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from memberscore.errors import ModelNotReady
from memberscore.settings import Settings
from serving.api.context import RequestContext
from serving.api.limits import MemberRate, retry_after
from serving.api.metrics import Metrics
from serving.api.offload import DecisionProcess
from serving.api.resources import Resources
from serving.api.security import Scope, granted_scopes, hash_key
from serving.online.consent import ConsentRegister, register_beside
from serving.online.contact_log import ContactLog
from serving.scoring.bundle import ModelBundle, ModelHolder
from serving.scoring.domain import Domain
from serving.scoring.sources import FeatureReader

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus collectors."""
    return request.app.state.metrics


async def get_resources(request: Request) -> Resources:
    """Stores and models opened by the lifespan; 503 while the app is still starting."""
    resources: Resources | None = getattr(request.app.state, "resources", None)
    if resources is None:
        raise ModelNotReady("the service is starting: stores and models are not open yet")
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_model_holder(resources: ResourcesDep) -> ModelHolder:
    """The holder of the current model bundle."""
    return resources.models


async def get_feature_reader(resources: ResourcesDep) -> FeatureReader:
    """The online feature store."""
    return resources.features


async def get_contact_log(resources: ResourcesDep) -> ContactLog:
    """The append-only contact log."""
    return resources.contacts


async def get_domain(resources: ResourcesDep) -> Domain:
    """Reason codes, lifecycle stages, BTYD and next-best-action logic."""
    return resources.domain


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HolderDep = Annotated[ModelHolder, Depends(get_model_holder)]
FeaturesDep = Annotated[FeatureReader, Depends(get_feature_reader)]
ContactLogDep = Annotated[ContactLog, Depends(get_contact_log)]
DomainDep = Annotated[Domain, Depends(get_domain)]


async def get_consent_register(contacts: ContactLogDep) -> ConsentRegister:
    """Members' latest consent changes, in the contact log's database."""
    return register_beside(contacts)


ConsentDep = Annotated[ConsentRegister, Depends(get_consent_register)]


async def get_bundle(holder: HolderDep) -> ModelBundle:
    """The bundle this request is scored with, taken once (a reload never changes it)."""
    return holder.current


BundleDep = Annotated[ModelBundle, Depends(get_bundle)]


async def get_decision_process(request: Request) -> DecisionProcess | None:
    """The app's decision process for next-best actions of many members."""
    return getattr(request.app.state, "decision_process", None)


async def get_request_context(
    decider: Annotated[DecisionProcess | None, Depends(get_decision_process)],
    bundle: BundleDep,
    reader: FeaturesDep,
    domain: DomainDep,
    settings: SettingsDep,
    contacts: ContactLogDep,
    metrics: MetricsDep,
    consents: ConsentDep,
) -> RequestContext:
    """What the score and next-best-action routes hand to `serving.api.service`, gathered once
    per request (the overrides of the dependencies above apply)."""
    return RequestContext(
        bundle=bundle,
        reader=reader,
        domain=domain,
        settings=settings,
        contacts=contacts,
        metrics=metrics,
        consent_register=consents,
        decider=decider,
    )


ContextDep = Annotated[RequestContext, Depends(get_request_context)]


async def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_api_key_header)],
) -> str | None:
    """The API key sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`, if any."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header or None


def require(scope: Scope) -> Callable[..., Awaitable[None]]:
    """A dependency that lets the request through only with a key granted `scope`."""

    async def check(
        settings: SettingsDep, key: Annotated[str | None, Depends(presented_key)]
    ) -> None:
        challenge = {"WWW-Authenticate": "Bearer"}
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers=challenge,
            )
        scopes = granted_scopes(key, settings.serving.api_keys)
        if not scopes:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers=challenge)
        if scope not in scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key lacks the '{scope}' scope"
            )

    return check


def _limiter(request: Request, settings: Settings) -> MemberRate | None:
    """The app's buckets of `serving.decision_members_per_second` (made on first use)."""
    rate = settings.serving.decision_members_per_second
    if rate is None:
        return None
    limiter: MemberRate | None = getattr(request.app.state, "decision_limiter", None)
    if limiter is None:
        limiter = MemberRate(rate, settings.serving.max_decision_members)
        request.app.state.decision_limiter = limiter
    return limiter


async def get_decision_budget(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Depends(presented_key)],
) -> Callable[[int], None]:
    """`spend(members)` for a next-best-action call: 422 past `serving.max_decision_members`
    members in one call, 429 with Retry-After past the key's
    `serving.decision_members_per_second` (see `serving.api.limits`)."""
    limit, limiter = settings.serving.max_decision_members, _limiter(request, settings)

    def spend(members: int) -> None:
        if members > limit:
            msg = (
                f"at most {limit} members per next-best-action call "
                f"(serving.max_decision_members), got {members}; split the list"
            )
            error = {"loc": ("body", "member_ids"), "msg": msg, "type": "too_long"}
            raise RequestValidationError([error])
        if limiter is None or key is None:
            return
        wait = limiter.take(hash_key(key), members, time.monotonic())
        if wait > 0:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"this API key asked next-best actions for more than "
                f"{limiter.rate:g} members per second (serving.decision_members_per_second); "
                "retry after the seconds in Retry-After",
                headers={"Retry-After": retry_after(wait)},
            )

    return spend


BudgetDep = Annotated[Callable[[int], None], Depends(get_decision_budget)]
ReadAccess = Depends(require("read"))
WriteAccess = Depends(require("write"))
