"""Consent changes from the lake into the consent register, so decisions honour them at once.

Ingest of a consent-change file (`memberscore ingest consents <file>`) stores the changes in the
lake, where the next snapshot's profile features read them point in time, and then calls
`sync_register`: each member's latest change in the lake goes to the register
(`serving.online.consent`) unless the register holds a later one (e.g. from the API). Syncing
the whole table each time makes it repair itself: a sync stopped by an unreachable database is
completed by the next ingest of any consent file (the same file again stores nothing twice).
"""

from __future__ import annotations

import pandas as pd

from memberscore import lake
from memberscore.contract import CONSENTS, CONTACT_CHANNELS
from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.online.consent import ConsentChange, open_consent_register


def latest_changes(changes: pd.DataFrame) -> list[ConsentChange]:
    """Each member's latest change (by changed_at, then change_id) of CONSENTS rows."""
    if changes.empty:
        return []
    last = changes.sort_values(["changed_at", "change_id"]).drop_duplicates(
        "member_id", keep="last"
    )
    return [
        ConsentChange(
            member_id=str(row.member_id),
            consent_marketing=bool(row.consent_marketing),
            consent_personalization=bool(row.consent_personalization),
            changed_at=changed_at.to_pydatetime(),
            source="ingest",
            channels_opted_out=tuple(c for c in CONTACT_CHANNELS if getattr(row, f"opted_out_{c}")),
        )
        for row, changed_at in zip(last.itertuples(index=False), last["changed_at"], strict=True)
    ]


def sync_register(settings: Settings) -> int:
    """Bring the register up to date with the lake's consent changes; how many members'
    entries changed. StoreUnavailable, saying how to finish, when the database is away."""
    changes = latest_changes(lake.read(settings.lake_dir, CONSENTS))
    register = open_consent_register(settings)
    try:
        return register.record_many(changes)
    except StoreUnavailable as error:
        raise StoreUnavailable(
            "the consent changes are in the lake, but the consent register could not be "
            "updated, so decisions do not honour them yet: once the database answers, ingest "
            "the file again (nothing is stored twice; the register is brought up to date)"
        ) from error
    finally:
        register.close()
