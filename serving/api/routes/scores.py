"""Scores of one member or of up to 1,000 members per call (read scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from memberscore.errors import MemberNotFound
from serving.api.deps import ContextDep, ReadAccess
from serving.api.errors import BODY_RESPONSES, ERROR_RESPONSES
from serving.api.service import scores_json
from serving.schemas import MemberId, MemberScores, MembersIn, ScoresOut
from serving.scoring.cards import scores_body

router = APIRouter(prefix="/v1", tags=["scores"], dependencies=[ReadAccess])


@router.get("/members/{member_id}/scores", response_model=MemberScores, responses=ERROR_RESPONSES)
async def member_scores(member_id: Annotated[MemberId, Path()], context: ContextDep) -> Response:
    """Churn, activation, spend / CLV interval, P(alive), stage, tags and reasons of a member."""
    cards, _ = await scores_json([member_id], context)
    if not cards:
        raise MemberNotFound(f"member {member_id} is not known to the feature store")
    return Response(cards[member_id], media_type="application/json")


@router.post("/scores", response_model=ScoresOut, responses=BODY_RESPONSES)
async def batch_scores(body: MembersIn, context: ContextDep) -> Response:
    """Scores of up to 1,000 members; unknown ids are listed in `not_found`."""
    cards, not_found = await scores_json(body.member_ids, context)
    return Response(scores_body(cards, not_found), media_type="application/json")
