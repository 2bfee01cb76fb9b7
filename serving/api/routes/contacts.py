"""Record contacts sent to members and their responses (write scope)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, status

from serving.api.deps import ContactLogDep, WriteAccess
from serving.api.errors import ERROR_RESPONSES
from serving.online.contact_log import Response, Sent
from serving.schemas import ContactIn, ContactOut, MemberId, ResponseIn

router = APIRouter(prefix="/v1/contacts", tags=["contacts"], dependencies=[WriteAccess])


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ContactOut, responses=ERROR_RESPONSES
)
def record_contact(body: ContactIn, log: ContactLogDep) -> ContactOut:
    """Append a sent action to the contact log, so cooldowns apply from now on."""
    sent = Sent(
        contact_id=body.contact_id or uuid.uuid4().hex,
        member_id=body.member_id,
        action_id=body.action_id,
        channel=body.channel,
        group=body.group,
        sent_at=body.sent_at or datetime.now(UTC),
    )
    log.record_sent(sent)
    return ContactOut(
        contact_id=sent.contact_id, member_id=sent.member_id, event="sent", at=sent.sent_at
    )


@router.post(
    "/{contact_id}/responses",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactOut,
    responses=ERROR_RESPONSES,
)
def record_response(
    contact_id: Annotated[MemberId, Path()], body: ResponseIn, log: ContactLogDep
) -> ContactOut:
    """Append a member's response (e.g. an order and its value) to an earlier contact."""
    response = Response(
        contact_id=contact_id,
        responded_at=body.responded_at or datetime.now(UTC),
        value=body.value,
    )
    member_id = log.record_response(response)
    return ContactOut(
        contact_id=contact_id, member_id=member_id, event="response", at=response.responded_at
    )
