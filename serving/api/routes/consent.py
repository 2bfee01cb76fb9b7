"""A member's consent: change it (write scope) and read the effective one (read scope).

A change is stored in the consent register (`serving.online.consent`) and honoured by the next
decision of the API, of batch scoring and of campaign lists: personalisation off leaves only
generic actions, marketing withdrawn no marketing action, and a channel opted out of is never
used. Input is checked as the contact routes check theirs: the member must be known to the
online feature store, `changed_at` must carry a zone and fall inside the plausibility window.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from memberscore.errors import MemberNotFound
from serving.api.deps import ConsentDep, FeaturesDep, ReadAccess, SettingsDep, WriteAccess
from serving.api.errors import BODY_RESPONSES, ERROR_RESPONSES, error_responses
from serving.api.routes.contacts import _known_member, _refuse, _time_problems
from serving.online.consent import ConsentChange
from serving.schemas import ConsentIn, ConsentOut, MemberId
from serving.scoring.context import NBA_SERVICE

router = APIRouter(prefix="/v1/members", tags=["consent"])
MemberPath = Annotated[MemberId, Path()]


@router.put(
    "/{member_id}/consent",
    response_model=ConsentOut,
    responses=BODY_RESPONSES | error_responses(404, 409),
    dependencies=[WriteAccess],
)
def change_consent(
    member_id: MemberPath,
    body: ConsentIn,
    register: ConsentDep,
    reader: FeaturesDep,
    settings: SettingsDep,
) -> ConsentOut:
    """Record the member's consent as of `changed_at` (default now); the next decision
    honours it. 422 for an implausible time, 404 for a member the feature store does not
    know, 409 when a later change is already recorded (it stays in force)."""
    now = datetime.now(UTC)
    changed_at = body.changed_at or now
    _refuse(_time_problems("changed_at", changed_at, settings, now))
    _known_member(member_id, reader)
    change = ConsentChange(
        member_id=member_id,
        consent_marketing=body.consent_marketing,
        consent_personalization=body.consent_personalization,
        changed_at=changed_at,
        source="api",
        channels_opted_out=tuple(body.channels_opted_out),
    )
    if not register.record(change):
        later = register.get(member_id)
        when = later.changed_at.isoformat() if later else "a later time"
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"a later consent change of member {member_id} (at {when}) is recorded and stays "
            "in force; send the change with a later changed_at to replace it",
        )
    return _out(change)


@router.get(
    "/{member_id}/consent",
    response_model=ConsentOut,
    responses=ERROR_RESPONSES,
    dependencies=[ReadAccess],
)
def read_consent(member_id: MemberPath, register: ConsentDep, reader: FeaturesDep) -> ConsentOut:
    """The consent decisions use now: the member's latest recorded change, else the feature
    store's flags (source 'snapshot'); 404 when neither knows the member."""
    change = register.get(member_id)
    if change is not None:
        return _out(change)
    row = reader.read([member_id], [NBA_SERVICE]).rows.get(member_id)
    if row is None:
        raise MemberNotFound(f"member {member_id} is not known to the feature store")
    return ConsentOut(
        member_id=member_id,
        consent_marketing=_flag(row.get("consent_marketing")),
        consent_personalization=_flag(row.get("consent_personalization")),
        channels_opted_out=[],
        changed_at=None,
        source="snapshot",
    )


def _flag(value: object) -> bool | None:
    return None if value is None or value != value else bool(value)  # NaN: not known


def _out(change: ConsentChange) -> ConsentOut:
    return ConsentOut(
        member_id=change.member_id,
        consent_marketing=change.consent_marketing,
        consent_personalization=change.consent_personalization,
        channels_opted_out=list(change.channels_opted_out),  # type: ignore[arg-type]
        changed_at=change.changed_at,
        source=change.source,
    )
