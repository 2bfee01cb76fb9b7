"""Erase a member (write scope): `DELETE /v1/members/{member_id}`.

The API erases at once what it serves from (`serving.online.erasure.forget_served`: the online
store with the published cards, the cards' Parquet copy, the contact log, the consent
register), so the member is no longer scored, decided on or contacted. The lake, the feature
snapshots and the pipelines' files are rewritten by the pipelines: the request goes to the
erasure log first as pending for every store, then with what was removed and what is left,
and the next `memberscore erase --pending` (which ingest, features build and materialize,
publish-scores and batch-score also run first) finishes it. The API must see the same data dir
as the pipelines (`MEMBERSCORE_DATA_DIR`), where the erasure log lives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from memberscore import erasures
from memberscore.settings import Settings
from serving.api.deps import ConsentDep, ContactLogDep, SettingsDep, WriteAccess
from serving.api.errors import KEYED_RESPONSES, error_responses
from serving.online.erasure import PIPELINE_STORES, SERVED_STORES, OnlineEraser, forget_served
from serving.schemas import MemberId

router = APIRouter(prefix="/v1/members", tags=["members"], dependencies=[WriteAccess])
MemberPath = Annotated[MemberId, Path()]
FINISH = "memberscore erase --pending"


class ErasureOut(BaseModel):
    """What the erasure removed now, per store, and what the pipelines still have to erase."""

    member_id: str
    found: bool = Field(description="False when no store the API erases held the member.")
    removed: dict[str, int] = Field(
        description="Per store: members (online store), rows (published cards), contacts "
        "(contact log) or entries (consent register) removed."
    )
    pending: list[str] = Field(description="Stores the pipelines erase next.")
    detail: str


async def get_online_eraser() -> OnlineEraser:
    """Deletes members from the online store (tests replace it)."""
    from features.store import forget_online

    return forget_online


OnlineEraserDep = Annotated[OnlineEraser, Depends(get_online_eraser)]


@router.delete(
    "/{member_id}",
    response_model=ErasureOut,
    responses=KEYED_RESPONSES | error_responses(422),
)
def erase_member(
    member_id: MemberPath,
    settings: SettingsDep,
    contacts: ContactLogDep,
    consent: ConsentDep,
    online: OnlineEraserDep,
) -> ErasureOut:
    """Erase the member from what the API serves from and record the erasure (a salted hash,
    never the id) so the lake and the files are erased by the next pipeline run and ingest
    skips the member's rows. An unknown member is not an error: nothing is removed, the
    erasure is recorded. 503 when a store is away: retry (the request stays on record)."""
    member_hash = erasures.member_hash(_salt(settings), member_id)
    _record(settings, member_hash, {}, [*SERVED_STORES, *PIPELINE_STORES])
    removed = forget_served(settings, member_id, contacts, consent, online)
    counts = {r.store: r.count for r in removed}
    _record(settings, member_hash, {s: n for s, n in counts.items() if n}, list(PIPELINE_STORES))
    found = any(counts.values())
    what = "erased from the online store, published cards, contact log and consent register"
    detail = (
        f"{what}; " if found else "not found in the stores the API erases (nothing removed); "
    ) + f"the lake and the pipelines' files follow with the next `{FINISH}`"
    return ErasureOut(
        member_id=member_id,
        found=found,
        removed=counts,
        pending=list(PIPELINE_STORES),
        detail=detail,
    )


def _salt(settings: Settings) -> bytes:
    key = erasures.salt(settings.data_dir, create=True)
    assert key is not None  # create=True makes one or raises
    return key


def _record(
    settings: Settings, member_hash: str, stores: dict[str, int], pending: list[str]
) -> None:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    entry = {"member": member_hash, "at": at, "by": "api", "stores": stores, "pending": pending}
    erasures.append(settings.data_dir, [entry])
