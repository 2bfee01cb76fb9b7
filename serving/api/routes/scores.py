"""Scores of one member or of up to 1,000 members per call (read scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from memberscore.errors import MemberNotFound
from serving.api.deps import (
    BundleDep,
    DomainDep,
    FeaturesDep,
    MetricsDep,
    ReadAccess,
    SettingsDep,
)
from serving.api.errors import ERROR_RESPONSES
from serving.api.responses import ModelJSON
from serving.schemas import MemberId, MemberScores, MembersIn, ScoresOut
from serving.service import score_members

router = APIRouter(prefix="/v1", tags=["scores"], dependencies=[ReadAccess])


@router.get(
    "/members/{member_id}/scores",
    response_model=MemberScores,
    response_class=ModelJSON,
    responses=ERROR_RESPONSES,
)
def member_scores(
    member_id: Annotated[MemberId, Path()],
    reader: FeaturesDep,
    bundle: BundleDep,
    domain: DomainDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> ModelJSON:
    """Churn, activation, spend / CLV interval, P(alive), stage, tags and reasons of a member."""
    result, _ = score_members([member_id], reader, bundle, domain, settings, metrics)
    if not result.scores:
        raise MemberNotFound(f"member {member_id} is not known to the feature store")
    return ModelJSON(result.scores[0])


@router.post(
    "/scores", response_model=ScoresOut, response_class=ModelJSON, responses=ERROR_RESPONSES
)
def batch_scores(
    body: MembersIn,
    reader: FeaturesDep,
    bundle: BundleDep,
    domain: DomainDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> ModelJSON:
    """Scores of up to 1,000 members; unknown ids are listed in `not_found`."""
    result, _ = score_members(body.member_ids, reader, bundle, domain, settings, metrics)
    return ModelJSON(result)
