"""The consent register: each member's latest consent change, read by every decision.

A member who withdraws marketing consent, turns personalisation off ("关闭个性化推荐") or opts
out of a channel must be honoured by the next decision, not the next feature snapshot. Changes
arrive through the API (`PUT /v1/members/{member_id}/consent`, source 'api') and through ingest
of a consent-change file (source 'ingest'); the register keeps one row per member who changed
consent: the change with the latest `changed_at` (an older change arriving later is ignored).
Decisions take the register's entry over the snapshot's consent flags
(`decisions.guardrails.effective_consent`).

It lives beside the contact log, in the same database (a SQLite file under `<data>/serving/`
locally, PostgreSQL in production), in its own table, and every call is bound by
`serving.store_timeout_seconds` as the contact log's are: StoreUnavailable when the database
does not answer in time. `forget` removes members (erasure).
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from decisions.guardrails import REGISTER_COLUMNS, channel_list, channel_text
from memberscore.contract import CONTACT_CHANNELS, TIMESTAMP_DTYPE
from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.online.contact_log import ContactLog, _reachable, bounded_engine

TABLE_NAME = "memberscore_consent"
LOG = logging.getLogger("memberscore.serving.consent")
Source = Literal["api", "ingest"]


@dataclass(frozen=True)
class ConsentChange:
    """A member's consent as of `changed_at` (aware); `channels_opted_out` are contact
    channels (`memberscore.contract.CONTACT_CHANNELS`) the member refuses whatever the flags."""

    member_id: str
    consent_marketing: bool
    consent_personalization: bool
    changed_at: datetime
    source: Source
    channels_opted_out: tuple[str, ...] = ()


def _table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("member_id", sa.String(128), primary_key=True),
        sa.Column("consent_marketing", sa.Boolean, nullable=False),
        sa.Column("consent_personalization", sa.Boolean, nullable=False),
        sa.Column("channels_opted_out", sa.String(64), nullable=False, default=""),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("changed_at must carry a time zone")
    return moment.astimezone(UTC).replace(tzinfo=None)


class ConsentRegister:
    """The register over a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._table = _table(sa.MetaData())
        self._created = False
        self._creating = threading.Lock()

    def create(self) -> ConsentRegister:
        """Create the table if needed (once per process); StoreUnavailable while the database
        is away (every call tries again first)."""
        if not self._created:
            with self._creating, _reachable():
                if not self._created:
                    self._table.metadata.create_all(self._engine)
                    self._created = True
        return self

    def record(self, change: ConsentChange) -> bool:
        """Store `change` unless the member's stored change is later; True when stored."""
        return self.record_many([change]) == 1

    def record_many(self, changes: Iterable[ConsentChange]) -> int:
        """Store each change unless a later one of its member is stored; how many were stored.
        One transaction: all or none."""
        self.create()
        stored = 0
        with _reachable(), self._engine.begin() as connection:
            for change in changes:
                stored += self._upsert(connection, change)
        return stored

    def _upsert(self, connection: sa.Connection, change: ConsentChange) -> int:
        unknown = set(change.channels_opted_out) - set(CONTACT_CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s) {sorted(unknown)}; known: {CONTACT_CHANNELS}")
        t = self._table
        values = {
            "consent_marketing": bool(change.consent_marketing),
            "consent_personalization": bool(change.consent_personalization),
            "channels_opted_out": channel_text(change.channels_opted_out),
            "changed_at": _naive_utc(change.changed_at),
            "source": change.source,
            "recorded_at": datetime.now(UTC).replace(tzinfo=None),
        }
        newer = t.c.member_id == change.member_id, t.c.changed_at <= values["changed_at"]
        if connection.execute(t.update().where(*newer).values(**values)).rowcount:
            return 1
        exists = sa.select(t.c.member_id).where(t.c.member_id == change.member_id)
        if connection.execute(exists).first() is not None:
            return 0  # a later change is stored: this one is history
        try:
            with connection.begin_nested():
                connection.execute(t.insert().values(member_id=change.member_id, **values))
        except IntegrityError:  # another writer inserted it meanwhile: its time decides
            return int(bool(connection.execute(t.update().where(*newer).values(**values)).rowcount))
        return 1

    def get(self, member_id: str) -> ConsentChange | None:
        """The member's latest change, None when the member never changed consent."""
        frame = self.entries([member_id])
        if frame.empty:
            return None
        row = frame.iloc[0]
        return ConsentChange(
            member_id=str(row["member_id"]),
            consent_marketing=bool(row["consent_marketing"]),
            consent_personalization=bool(row["consent_personalization"]),
            changed_at=row["changed_at"].to_pydatetime(),
            source=row["source"],
            channels_opted_out=channel_list(row["channels_opted_out"]),
        )

    def entries(self, member_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Entries of `member_ids` (every entry when None) as `REGISTER_COLUMNS` plus source;
        `changed_at` in UTC."""
        self.create()
        t = self._table
        query = sa.select(t)
        if member_ids is not None:
            query = query.where(t.c.member_id.in_(list(member_ids)))
        with _reachable(), self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:  # most members of a decision: the same frame, built once
            return _no_entries().copy()
        return _entries_frame(rows)

    def forget(self, member_ids: Sequence[str]) -> int:
        """Remove the entries of `member_ids` (erasure); how many were removed."""
        self.create()
        t = self._table
        with _reachable(), self._engine.begin() as connection:
            result = connection.execute(t.delete().where(t.c.member_id.in_(list(member_ids))))
        return int(result.rowcount)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        self.create()
        with _reachable(), self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()


def _entries_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """Register rows as `ConsentRegister.entries` answers them."""
    columns = [*REGISTER_COLUMNS, "source"]
    frame = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
    frame["changed_at"] = pd.to_datetime(frame["changed_at"], utc=True).astype(TIMESTAMP_DTYPE)
    return frame.astype(
        {"member_id": "string", "consent_marketing": bool, "consent_personalization": bool}
    )


@functools.cache
def _no_entries() -> pd.DataFrame:
    """`_entries_frame` of no rows (copy it before use)."""
    return _entries_frame([])


def open_consent_register(settings: Settings) -> ConsentRegister:
    """Open (and create if needed) the register of the settings' profile, in the contact log's
    database, every call bound by `serving.store_timeout_seconds`. A database that is away
    does not stop the opening: calls answer StoreUnavailable until it is back."""
    register = ConsentRegister(bounded_engine(settings))
    try:
        register.create()
    except StoreUnavailable as error:
        LOG.warning(
            "consent register not reachable yet; its table is created on first use: %s", error
        )
    return register


_BESIDE: weakref.WeakKeyDictionary[ContactLog, ConsentRegister] = weakref.WeakKeyDictionary()
_BESIDE_LOCK = threading.Lock()


def register_beside(log: ContactLog) -> ConsentRegister:
    """The register in the database of the contact log `log` (one per log and process), so
    whatever contact log a process serves with, its consent register sits beside it."""
    with _BESIDE_LOCK:
        register = _BESIDE.get(log)
        if register is None:
            register = _BESIDE[log] = ConsentRegister(log._engine)  # same package: shared engine
        return register
