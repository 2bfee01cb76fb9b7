"""Next-best action of one member or of up to 1,000 members per call (read scope), within the
cost bounds of `serving.api.limits`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from memberscore.errors import MemberNotFound
from serving.api.deps import BudgetDep, ContextDep, ReadAccess
from serving.api.errors import BODY_RESPONSES, ERROR_RESPONSES, error_responses
from serving.api.responses import ModelJSON
from serving.api.service import decide, decide_json
from serving.schemas import MemberId, MembersIn, NextBestActionOut, NextBestActionsOut

router = APIRouter(prefix="/v1", tags=["next-best-action"], dependencies=[ReadAccess])
LIMITED = error_responses(429)  # serving.decision_members_per_second


@router.get(
    "/members/{member_id}/next-best-action",
    response_model=NextBestActionOut,
    response_class=ModelJSON,
    responses=ERROR_RESPONSES | LIMITED,
)
async def member_next_best_action(
    member_id: Annotated[MemberId, Path()], context: ContextDep, spend: BudgetDep
) -> ModelJSON:
    """The action to send this member now, ranked alternatives, expected value and reasons."""
    spend(1)
    result = await decide([member_id], context)
    if not result.decisions:
        raise MemberNotFound(f"member {member_id} is not known to the feature store")
    return ModelJSON(result.decisions[0])


@router.post(
    "/next-best-action",
    response_model=NextBestActionsOut,
    response_class=ModelJSON,
    responses=BODY_RESPONSES | LIMITED,
)
async def batch_next_best_action(
    body: MembersIn, context: ContextDep, spend: BudgetDep
) -> Response:
    """Next-best actions of up to 1,000 members (`serving.max_decision_members`); unknown ids
    are listed in `not_found`."""
    spend(len(body.member_ids))
    return Response(await decide_json(body.member_ids, context), media_type="application/json")
