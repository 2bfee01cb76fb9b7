"""The contact log: a record of actions sent to members and their responses.

Guardrails read it for cooldowns. One SQL table behind one class: a SQLite file under
`<data>/serving/` in the local profile, a PostgreSQL table in production. A response is a second
row carrying the contact id, and `history` folds the two into the contract's `contacts` columns
(contact_id, member_id, sent_at, action_id, channel, group, responded_at, response_value). All
timestamps are UTC. Rows are appended; only an explicit correction (`correct`) rewrites a 'sent'
row and `delete` removes a contact with its responses (the API's write-scope PATCH and DELETE);
`forget` removes every contact of erased members.

Reading never fails on a row stored badly before the API validated its input (a time pandas
cannot hold, an infinite value): `history` skips it with a warning naming the contact id, so a
decision is still made; `contact` returns it as stored, so it can be corrected.

Every call is time-bound by `serving.store_timeout_seconds`: the connect timeout and
`statement_timeout` in PostgreSQL, the busy timeout in SQLite. A database that does not answer in
time gives StoreUnavailable.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from memberscore.contract import CONTACTS, TIMESTAMP_DTYPE
from memberscore.errors import DataNotFound, MemberscoreError, StoreUnavailable
from memberscore.settings import Settings, psycopg_url

TABLE_NAME = "memberscore_contact_log"
LOG = logging.getLogger("memberscore.serving.contact_log")
CORRECTABLE = ("action_id", "channel", "group", "sent_at")


class DuplicateContact(MemberscoreError):
    """A contact with this id was already recorded as sent."""


class UnknownContact(DataNotFound):
    """A response, correction or deletion names a contact id that was never recorded as sent."""


@dataclass(frozen=True)
class Sent:
    """An action sent to a member; `group` is 'treatment' or 'control' (held out, not sent)."""

    contact_id: str
    member_id: str
    action_id: str
    channel: str
    group: str
    sent_at: datetime


@dataclass(frozen=True)
class Response:
    """A member's response to a contact; `value` in the dataset currency (0 for a click)."""

    contact_id: str
    responded_at: datetime
    value: float


@dataclass(frozen=True)
class Contact:
    """One contact as stored: its 'sent' row and its latest response (None without one).
    Times are UTC; they are shown as stored, even when implausible."""

    sent: Sent
    responded_at: datetime | None
    response_value: float | None


def _table(metadata: sa.MetaData) -> sa.Table:
    """The event table: one row per 'sent' or 'response' event."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("contact_id", sa.String(128), nullable=False, index=True),
        sa.Column("member_id", sa.String(128), nullable=False, index=True),
        sa.Column("action_id", sa.String(128)),
        sa.Column("channel", sa.String(32)),
        sa.Column("group", sa.String(16)),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("response_value", sa.Float),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Index(
            f"{TABLE_NAME}_sent_once",
            "contact_id",
            "event",
            unique=True,
            postgresql_where=sa.text("event = 'sent'"),
            sqlite_where=sa.text("event = 'sent'"),
        ),
    )


def _naive_utc(moment: datetime) -> datetime:
    """`moment` in UTC without tzinfo, the way both databases store it."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware UTC datetime."""
    return None if moment is None else moment.replace(tzinfo=UTC)


class ContactLog:
    """Contact log over a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._table = _table(sa.MetaData())
        self._created = False
        self._creating = threading.Lock()

    def create(self) -> ContactLog:
        """Create the table if needed (once per process); returns self. StoreUnavailable while
        the database is away: every call of the log tries again first, so a log opened during
        an outage works once the database is back."""
        if not self._created:
            with self._creating, _reachable():
                if not self._created:
                    self._table.metadata.create_all(self._engine)
                    self._created = True
        return self

    def record_sent(self, sent: Sent) -> None:
        """Append a 'sent' event; raises DuplicateContact if the contact id is already there."""
        _printable(contact_id=sent.contact_id, member_id=sent.member_id, action_id=sent.action_id)
        row = {
            "event": "sent",
            "contact_id": sent.contact_id,
            "member_id": sent.member_id,
            "action_id": sent.action_id,
            "channel": sent.channel,
            "group": sent.group,
            "at": _naive_utc(sent.sent_at),
        }
        try:
            self._append(row)
        except IntegrityError as error:
            raise DuplicateContact(f"contact {sent.contact_id} is already recorded") from error

    def record_response(self, response: Response) -> str:
        """Append a 'response' event to a known contact; returns the contact's member id."""
        self.create()
        query = sa.select(self._table.c.member_id).where(
            self._table.c.contact_id == response.contact_id, self._table.c.event == "sent"
        )
        with _reachable(), self._engine.connect() as connection:
            member_id = connection.execute(query).scalar_one_or_none()
        if member_id is None:
            raise _unknown(response.contact_id)
        row = {
            "event": "response",
            "contact_id": response.contact_id,
            "member_id": member_id,
            "at": _naive_utc(response.responded_at),
            "response_value": response.value,
        }
        self._append(row)
        return str(member_id)

    def contact(self, contact_id: str) -> Contact:
        """The contact `contact_id` as stored; UnknownContact when it was never recorded."""
        self.create()
        t = self._table
        query = sa.select(t).where(t.c.contact_id == contact_id).order_by(t.c.seq)
        with _reachable(), self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        sent = next((r for r in rows if r["event"] == "sent"), None)
        if sent is None:
            raise _unknown(contact_id)
        latest = next((r for r in reversed(rows) if r["event"] == "response"), None)
        return Contact(
            sent=Sent(
                contact_id=contact_id,
                member_id=sent["member_id"],
                action_id=sent["action_id"],
                channel=sent["channel"],
                group=sent["group"],
                sent_at=_aware(sent["at"]),  # type: ignore[arg-type]
            ),
            responded_at=None if latest is None else _aware(latest["at"]),
            response_value=None if latest is None else latest["response_value"],
        )

    def correct(self, contact_id: str, changes: Mapping[str, Any]) -> None:
        """Rewrite fields of the 'sent' row of `contact_id` (any of CORRECTABLE; `sent_at` a
        datetime); UnknownContact when it was never recorded."""
        self.create()
        unknown = set(changes) - set(CORRECTABLE)
        if unknown:
            raise ValueError(f"only {', '.join(CORRECTABLE)} can be corrected, not {unknown}")
        _printable(**{k: v for k, v in changes.items() if isinstance(v, str)})
        values = {("at" if k == "sent_at" else k): v for k, v in changes.items()}
        if "at" in values:
            values["at"] = _naive_utc(values["at"])
        t = self._table
        statement = (
            t.update().where(t.c.contact_id == contact_id, t.c.event == "sent").values(**values)
        )
        with _reachable(), self._engine.begin() as connection:
            if connection.execute(statement).rowcount == 0:
                raise _unknown(contact_id)

    def delete(self, contact_id: str) -> None:
        """Remove the contact `contact_id` and its responses; UnknownContact when unknown."""
        self.create()
        t = self._table
        sent = sa.select(t.c.seq).where(t.c.contact_id == contact_id, t.c.event == "sent")
        with _reachable(), self._engine.begin() as connection:
            if connection.execute(sent).first() is None:
                raise _unknown(contact_id)
            connection.execute(t.delete().where(t.c.contact_id == contact_id))

    def forget(self, member_ids: Sequence[str]) -> int:
        """Remove every contact and response of `member_ids` (erasure); returns the contacts
        removed. SQLite overwrites the freed bytes (`secure_delete`); PostgreSQL frees the rows
        at its next (auto)vacuum."""
        self.create()
        t = self._table
        ids = list(member_ids)
        sent = sa.select(sa.func.count()).where(t.c.member_id.in_(ids), t.c.event == "sent")
        with _reachable(), self._engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA secure_delete = ON")
            contacts = int(connection.execute(sent).scalar_one())
            connection.execute(t.delete().where(t.c.member_id.in_(ids)))
        return contacts

    def history(self, member_ids: Sequence[str]) -> pd.DataFrame:
        """Contacts of these members in the contract's `contacts` columns, latest response kept;
        rows stored unreadably are skipped with a warning (see the module docstring)."""
        self.create()
        t = self._table
        query = sa.select(t).where(t.c.member_id.in_(list(member_ids))).order_by(t.c.seq)
        with _reachable(), self._engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:  # most members of a decision: the same frame, built once
            return _no_contacts(tuple(t.c.keys())).copy()
        return _fold(pd.DataFrame(rows, columns=t.c.keys()))

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        self.create()
        with _reachable(), self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()

    def _append(self, row: dict[str, object]) -> None:
        """Insert one event row stamped with the time it was recorded."""
        self.create()
        row = {**row, "recorded_at": _naive_utc(datetime.now(UTC))}
        with _reachable(), self._engine.begin() as connection:
            connection.execute(self._table.insert().values(**row))


def _printable(**ids: str) -> None:
    """ValueError naming the field when an id holds a NUL or another control character, which
    PostgreSQL cannot store and no id needs (the API refuses them with 422 before this)."""
    for field, value in ids.items():
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"{field} holds a NUL or control character; ids must be printable")


def _unknown(contact_id: str) -> UnknownContact:
    return UnknownContact(
        f"contact {contact_id} was never recorded as sent: record it with POST /v1/contacts"
    )


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn database connection failures and timeouts into StoreUnavailable."""
    try:
        yield
    except (OperationalError, sa.exc.TimeoutError) as error:
        raise StoreUnavailable(
            "the contact log database cannot be reached or did not answer in time; retry "
            "later, and check the database if it persists"
        ) from error


@functools.cache
def _no_contacts(columns: tuple[str, ...]) -> pd.DataFrame:
    """`_fold` of no events (copy it before use)."""
    return _fold(pd.DataFrame([], columns=list(columns)))


def _fold(events: pd.DataFrame) -> pd.DataFrame:
    """Join each 'sent' event with its latest 'response' event; contract column names and dtypes.
    Contacts whose sent_at cannot be read are left out, responses that cannot be read are
    dropped; both with a warning."""
    sent = events[events["event"] == "sent"].rename(columns={"at": "sent_at"})
    responses = (
        events[events["event"] == "response"]
        .drop_duplicates("contact_id", keep="last")
        .rename(columns={"at": "responded_at"})[["contact_id", "responded_at", "response_value"]]
    )
    frame = sent.drop(columns=["response_value"]).merge(responses, on="contact_id", how="left")
    for column in ("sent_at", "responded_at"):
        frame[column] = _timestamps(frame[column])
    frame["response_value"] = pd.to_numeric(frame["response_value"], errors="coerce")
    frame = _without_unreadable(frame)
    return frame[CONTACTS.names].reset_index(drop=True)


def _timestamps(values: pd.Series) -> pd.Series:
    """Stored (naive UTC) times as the contract's timestamp dtype; NaT where pandas cannot hold
    one (outside 1677-2262)."""
    try:  # the fast path: every time in range
        moments = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        moments = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return moments.astype(TIMESTAMP_DTYPE)  # type: ignore[call-overload]


def _without_unreadable(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop contacts without a readable sent_at, and the response of a contact whose
    responded_at or value is unreadable (a time out of range, a value not finite or negative)."""
    no_sent = frame["sent_at"].isna()
    if no_sent.any():
        _warn("sent_at outside 1677-2262 or unreadable; contact skipped", frame[no_sent])
        frame = frame[~no_sent]
    value = frame["response_value"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        amount = np.isnan(value) | (np.isfinite(value) & (value >= 0))
    time_lost = frame["responded_at"].isna().to_numpy() & ~np.isnan(value)
    bad = pd.Series(time_lost | ~amount, index=frame.index)
    if bad.any():
        _warn("response time unreadable or value not a finite amount; response ignored", frame[bad])
        frame = frame.assign(
            responded_at=frame["responded_at"].mask(bad),
            response_value=frame["response_value"].mask(bad),
        )
    return frame


def _warn(problem: str, rows: pd.DataFrame) -> None:
    """One warning per read naming the contacts (never a member id) and the way to fix them."""
    ids = ", ".join(map(str, rows["contact_id"].head(5)))
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    LOG.warning(
        "contact log: %d stored contact(s) with %s (contact ids %s%s): correct them with "
        "PATCH /v1/contacts/{contact_id} or remove them with DELETE",
        len(rows),
        problem,
        ids,
        more,
    )


def database_url(settings: Settings) -> str:
    """SQLAlchemy URL of the contact log for the settings' profile."""
    if settings.profile == "production":
        return psycopg_url(settings.postgres_url)
    return f"sqlite:///{settings.data_dir / 'serving' / 'contact_log.sqlite'}"


def bounded_engine(settings: Settings) -> sa.Engine:
    """An engine on the contact log's database of the settings' profile (`database_url`; the
    consent register shares it), every call bound by `serving.store_timeout_seconds`."""
    url = database_url(settings)
    timeout = settings.serving.store_timeout_seconds
    if url.startswith("sqlite:///"):
        (settings.data_dir / "serving").mkdir(parents=True, exist_ok=True)
        connect = {"check_same_thread": False, "timeout": timeout}  # timeout: busy wait (s)
        return sa.create_engine(url, connect_args=connect)
    # libpq counts whole seconds (at least 2); statement_timeout bounds every statement once
    # connected, including the wait for a lock another session holds.
    connect = {"connect_timeout": max(2, math.ceil(timeout))}
    engine = sa.create_engine(url, pool_pre_ping=True, pool_timeout=timeout, connect_args=connect)
    _bound_statements(engine, milliseconds=max(1, round(timeout * 1000)))
    return engine


def open_contact_log(settings: Settings) -> ContactLog:
    """Open (and create if needed) the contact log of the settings' profile, every call bound
    by `serving.store_timeout_seconds`. A database that is away does not stop the opening:
    its calls (and /readyz) answer StoreUnavailable until it is back."""
    log = ContactLog(bounded_engine(settings))
    try:
        log.create()
    except StoreUnavailable as error:  # the API starts not-ready rather than not at all
        LOG.warning("contact log not reachable yet; its table is created on first use: %s", error)
    return log


def _bound_statements(engine: sa.Engine, milliseconds: int) -> None:
    """Set `statement_timeout` on every new PostgreSQL connection of `engine` (a listener, so
    options already in the URL, such as a search_path, stay as they are)."""

    @sa.event.listens_for(engine, "connect")
    def _set_timeout(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(milliseconds)}")
        dbapi_connection.commit()
