"""Erasure of what the score API serves from: the online store (every feature view and the
published cards' view), the Parquet copy of the published cards, the contact log and the
consent register.

`forget_served` is the one function both callers use: `DELETE /v1/members/{member_id}` (which
then records the rest as pending in the erasure log) and `memberscore erase`
(`pipelines.erase`, which also erases the lake, the snapshots and the files of the pipelines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from memberscore.erasures import without_members
from memberscore.settings import Settings
from serving.online.contact_log import ContactLog

# The stores `forget_served` erases, by the names the erasure log and the reports use.
SERVED_STORES = ("online store", "published cards", "contact log", "consent register")
# The stores the pipelines erase (`pipelines.erase`): the API leaves them pending.
PIPELINE_STORES = (
    "lake",
    "ingest log",
    "quarantine",
    "raw exports",
    "simulator truth",
    "feature snapshots",
    "publish run parts",
    "batch outputs",
    "campaign lists",
)
OnlineEraser = Callable[[Settings, Sequence[str]], tuple[int, int]]


@dataclass(frozen=True)
class Removed:
    """What erasure removed from one store for one member: `count` things called `unit`."""

    store: str
    count: int
    unit: str
    where: str = ""


def forget_served(
    settings: Settings,
    member_id: str,
    contacts: ContactLog,
    consent: object | None = None,
    online: OnlineEraser | None = None,
) -> list[Removed]:
    """Remove `member_id` from the stores the API serves from (SERVED_STORES), in that order.

    `contacts` is the open contact log; `consent` the consent register when one is open (any
    object with `forget(member_ids) -> int`). StoreUnavailable when a store is away: the stores
    after it are not touched, and calling again is safe (every step is idempotent). `online`
    deletes from the online store (default `features.store.forget_online`; tests pass a fake).
    """
    from features.store import forget_online, published_path

    members, _ = (online or forget_online)(settings, [member_id])
    path = published_path(settings)
    cards = sum(without_members(path, [member_id]).values()) if path.is_file() else 0
    results = [
        Removed("online store", members, "member", f"{settings.profile} profile"),
        Removed("published cards", cards, "row", str(path)),
        Removed("contact log", contacts.forget([member_id]), "contact"),
    ]
    if consent is not None:
        forget = consent.forget  # type: ignore[attr-defined]
        results.append(Removed("consent register", int(forget([member_id])), "entry"))
    return results
