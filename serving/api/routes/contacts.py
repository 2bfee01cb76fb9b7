"""Record contacts sent to members and their responses, and correct or delete them (write scope).

Input is checked as ingest checks it: the member must be known to the online feature store,
the action to the catalogue, times must carry a zone and fall inside the plausibility window
(`earliest_date` to now + `future_tolerance_days`), and a response may not precede its send.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.exceptions import RequestValidationError

from decisions.catalogue import NO_ACTION, load_catalogue
from memberscore.errors import MemberNotFound
from memberscore.settings import Settings
from serving.api.deps import ContactLogDep, FeaturesDep, SettingsDep, WriteAccess
from serving.api.errors import BODY_RESPONSES, ERROR_RESPONSES, error_responses
from serving.online.contact_log import Contact, Sent
from serving.online.contact_log import Response as ContactResponse
from serving.schemas import (
    ContactIn,
    ContactOut,
    ContactPatch,
    ContactRecordOut,
    MemberId,
    ResponseIn,
)
from serving.scoring.context import NBA_SERVICE
from serving.scoring.sources import FeatureReader

router = APIRouter(prefix="/v1/contacts", tags=["contacts"], dependencies=[WriteAccess])
ContactIdPath = Annotated[MemberId, Path()]


@cache
def _shipped_action_ids() -> frozenset[str]:
    return frozenset(load_catalogue().ids) - {NO_ACTION}


async def get_action_ids() -> frozenset[str]:
    """Ids a contact may name: the shipped catalogue's actions (no_action is never sent; a
    member held out is recorded with the action held back and group 'control')."""
    return _shipped_action_ids()


ActionIdsDep = Annotated[frozenset[str], Depends(get_action_ids)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactOut,
    responses=BODY_RESPONSES | error_responses(404, 409),
)
def record_contact(
    body: ContactIn,
    log: ContactLogDep,
    reader: FeaturesDep,
    settings: SettingsDep,
    actions: ActionIdsDep,
) -> ContactOut:
    """Append a sent action to the contact log, so cooldowns apply from now on. 422 for an
    unknown action or an implausible time, 404 for a member the feature store does not know."""
    now = datetime.now(UTC)
    sent_at = body.sent_at or now
    _refuse(
        _action_problems(body.action_id, actions)
        + _time_problems("sent_at", sent_at, settings, now)
    )
    _known_member(body.member_id, reader)
    sent = Sent(
        contact_id=body.contact_id or uuid.uuid4().hex,
        member_id=body.member_id,
        action_id=body.action_id,
        channel=body.channel,
        group=body.group,
        sent_at=sent_at,
    )
    log.record_sent(sent)
    return ContactOut(
        contact_id=sent.contact_id, member_id=sent.member_id, event="sent", at=sent.sent_at
    )


@router.get("/{contact_id}", response_model=ContactRecordOut, responses=ERROR_RESPONSES)
def read_contact(contact_id: ContactIdPath, log: ContactLogDep) -> ContactRecordOut:
    """The contact as the log holds it, with its latest response; 404 when unknown."""
    return _record_out(log.contact(contact_id))


@router.patch(
    "/{contact_id}",
    response_model=ContactRecordOut,
    responses=ERROR_RESPONSES | BODY_RESPONSES,
)
def correct_contact(
    contact_id: ContactIdPath,
    body: ContactPatch,
    log: ContactLogDep,
    settings: SettingsDep,
    actions: ActionIdsDep,
) -> ContactRecordOut:
    """Correct the action, channel, group or send time of a recorded contact (checked as a new
    contact is); 404 when unknown. To move a contact to another member, delete and record it."""
    stored = log.contact(contact_id)
    changes = body.model_dump(exclude_none=True)
    problems = [] if body.action_id is None else _action_problems(body.action_id, actions)
    if body.sent_at is not None:
        problems += _time_problems("sent_at", body.sent_at, settings, datetime.now(UTC))
        if stored.responded_at is not None and stored.responded_at < body.sent_at:
            problems.append(
                _problem("sent_at", "is after the recorded response", body.sent_at.isoformat())
            )
    _refuse(problems)
    log.correct(contact_id, changes)
    return _record_out(log.contact(contact_id))


@router.delete("/{contact_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERROR_RESPONSES)
def delete_contact(contact_id: ContactIdPath, log: ContactLogDep) -> Response:
    """Remove a contact and its responses from the log (its cooldown no longer applies); 404
    when unknown. The contact id may then be recorded again."""
    log.delete(contact_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{contact_id}/responses",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactOut,
    responses=ERROR_RESPONSES | BODY_RESPONSES,
)
def record_response(
    contact_id: ContactIdPath, body: ResponseIn, log: ContactLogDep, settings: SettingsDep
) -> ContactOut:
    """Append a member's response (e.g. an order and its value) to an earlier contact; 422 when
    it is dated before the send or outside the plausibility window."""
    now = datetime.now(UTC)
    responded_at = body.responded_at or now
    sent_at = log.contact(contact_id).sent.sent_at
    problems = _time_problems("responded_at", responded_at, settings, now)
    if responded_at < sent_at:
        problems.append(
            _problem(
                "responded_at",
                f"is before the contact was sent ({sent_at.isoformat()})",
                responded_at.isoformat(),
            )
        )
    _refuse(problems)
    response = ContactResponse(contact_id=contact_id, responded_at=responded_at, value=body.value)
    member_id = log.record_response(response)
    return ContactOut(
        contact_id=contact_id, member_id=member_id, event="response", at=response.responded_at
    )


def _known_member(member_id: str, reader: FeatureReader) -> None:
    """MemberNotFound (404) unless the online feature store knows `member_id`."""
    if member_id not in reader.read([member_id], [NBA_SERVICE]).rows:
        raise MemberNotFound(
            f"member {member_id} is not known to the feature store: record contacts only for "
            "members ingested and materialized"
        )


def _action_problems(action_id: str, known: frozenset[str]) -> list[dict[str, Any]]:
    if action_id in known:
        return []
    return [
        _problem(
            "action_id", f"is not in the catalogue; known: {', '.join(sorted(known))}", action_id
        )
    ]


def _time_problems(
    field: str, moment: datetime, settings: Settings, now: datetime
) -> list[dict[str, Any]]:
    """A problem when `moment` is before `earliest_date` or after now + future_tolerance_days."""
    earliest = datetime.combine(settings.earliest_date, time(), tzinfo=UTC)
    latest = now + timedelta(days=settings.future_tolerance_days)
    if earliest <= moment <= latest:
        return []
    window = f"{earliest.date().isoformat()} and {latest.isoformat(timespec='seconds')}"
    rule = (
        f"must lie between {window} (settings earliest_date and future_tolerance_days="
        f"{settings.future_tolerance_days})"
    )
    return [_problem(field, rule, moment.isoformat())]


def _problem(field: str, rule: str, got: str) -> dict[str, Any]:
    """One error in the shape of a body validation error, so the 422 names `field`."""
    return {"loc": ("body", field), "msg": f"{field} {rule}", "type": "value_error", "input": got}


def _refuse(problems: list[dict[str, Any]]) -> None:
    if problems:
        raise RequestValidationError(problems)


def _record_out(contact: Contact) -> ContactRecordOut:
    sent, value = contact.sent, contact.response_value
    return ContactRecordOut(
        contact_id=sent.contact_id,
        member_id=sent.member_id,
        action_id=sent.action_id,
        channel=sent.channel,
        group=sent.group,
        sent_at=sent.sent_at,
        responded_at=contact.responded_at,
        response_value=value if value is not None and math.isfinite(value) else None,
    )
