"""Next-best action of one member or of up to 1,000 members per call (read scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from memberscore.errors import MemberNotFound
from serving.api.deps import (
    BundleDep,
    ContactLogDep,
    DomainDep,
    FeaturesDep,
    MetricsDep,
    ReadAccess,
    SettingsDep,
)
from serving.api.errors import ERROR_RESPONSES
from serving.api.responses import ModelJSON
from serving.api.service import decide
from serving.schemas import MemberId, MembersIn, NextBestActionOut, NextBestActionsOut

router = APIRouter(prefix="/v1", tags=["next-best-action"], dependencies=[ReadAccess])


@router.get(
    "/members/{member_id}/next-best-action",
    response_model=NextBestActionOut,
    response_class=ModelJSON,
    responses=ERROR_RESPONSES,
)
def member_next_best_action(
    member_id: Annotated[MemberId, Path()],
    reader: FeaturesDep,
    contacts: ContactLogDep,
    bundle: BundleDep,
    domain: DomainDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> ModelJSON:
    """The action to send this member now, ranked alternatives, expected value and reasons."""
    result = decide([member_id], reader, contacts, bundle, domain, settings, metrics)
    if not result.decisions:
        raise MemberNotFound(f"member {member_id} is not known to the feature store")
    return ModelJSON(result.decisions[0])


@router.post(
    "/next-best-action",
    response_model=NextBestActionsOut,
    response_class=ModelJSON,
    responses=ERROR_RESPONSES,
)
def batch_next_best_action(
    body: MembersIn,
    reader: FeaturesDep,
    contacts: ContactLogDep,
    bundle: BundleDep,
    domain: DomainDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> ModelJSON:
    """Next-best actions of up to 1,000 members; unknown ids are listed in `not_found`."""
    return ModelJSON(decide(body.member_ids, reader, contacts, bundle, domain, settings, metrics))
