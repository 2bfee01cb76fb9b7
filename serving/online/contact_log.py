"""The contact log: an append-only record of actions sent to members and their responses.

Guardrails read it for cooldowns. One SQL table behind one class: a SQLite file under
`<data>/serving/` in the local profile, a PostgreSQL table in production. Rows are never updated:
a response is a second row carrying the contact id, and `history` folds the two into the
contract's `contacts` columns (contact_id, member_id, sent_at, action_id, channel, group,
responded_at, response_value). All timestamps are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from memberscore.contract import CONTACTS, TIMESTAMP_DTYPE
from memberscore.errors import DataNotFound, MemberscoreError, StoreUnavailable
from memberscore.settings import Settings, psycopg_url

TABLE_NAME = "memberscore_contact_log"


class DuplicateContact(MemberscoreError):
    """A contact with this id was already recorded as sent."""


class UnknownContact(DataNotFound):
    """A response names a contact id that was never recorded as sent."""


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


def _table(metadata: sa.MetaData) -> sa.Table:
    """The event table: one row per 'sent' or 'response' event, never updated."""
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


class ContactLog:
    """Append-only contact log over a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._table = _table(sa.MetaData())

    def create(self) -> ContactLog:
        """Create the table if needed; returns self."""
        with _reachable():
            self._table.metadata.create_all(self._engine)
        return self

    def record_sent(self, sent: Sent) -> None:
        """Append a 'sent' event; raises DuplicateContact if the contact id is already there."""
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
        query = sa.select(self._table.c.member_id).where(
            self._table.c.contact_id == response.contact_id, self._table.c.event == "sent"
        )
        with _reachable(), self._engine.connect() as connection:
            member_id = connection.execute(query).scalar_one_or_none()
        if member_id is None:
            raise UnknownContact(f"contact {response.contact_id} was never recorded as sent")
        row = {
            "event": "response",
            "contact_id": response.contact_id,
            "member_id": member_id,
            "at": _naive_utc(response.responded_at),
            "response_value": response.value,
        }
        self._append(row)
        return str(member_id)

    def history(self, member_ids: Sequence[str]) -> pd.DataFrame:
        """Contacts of these members in the contract's `contacts` columns, latest response kept."""
        t = self._table
        query = sa.select(t).where(t.c.member_id.in_(list(member_ids))).order_by(t.c.seq)
        with _reachable(), self._engine.connect() as connection:
            events = pd.DataFrame(connection.execute(query).mappings().all(), columns=t.c.keys())
        return _fold(events)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        with _reachable(), self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()

    def _append(self, row: dict[str, object]) -> None:
        """Insert one event row stamped with the time it was recorded."""
        row = {**row, "recorded_at": _naive_utc(datetime.now(UTC))}
        with _reachable(), self._engine.begin() as connection:
            connection.execute(self._table.insert().values(**row))


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn database connection failures into StoreUnavailable."""
    try:
        yield
    except OperationalError as error:
        raise StoreUnavailable("the contact log database cannot be reached") from error


def _fold(events: pd.DataFrame) -> pd.DataFrame:
    """Join each 'sent' event with its latest 'response' event; contract column names and dtypes."""
    sent = events[events["event"] == "sent"].rename(columns={"at": "sent_at"})
    responses = (
        events[events["event"] == "response"]
        .drop_duplicates("contact_id", keep="last")
        .rename(columns={"at": "responded_at"})[["contact_id", "responded_at", "response_value"]]
    )
    frame = sent.drop(columns=["response_value"]).merge(responses, on="contact_id", how="left")
    for column in ("sent_at", "responded_at"):
        frame[column] = pd.to_datetime(frame[column]).dt.tz_localize("UTC").astype(TIMESTAMP_DTYPE)  # type: ignore[call-overload]
    frame["response_value"] = frame["response_value"].astype("float64")
    return frame[CONTACTS.names].reset_index(drop=True)


def database_url(settings: Settings) -> str:
    """SQLAlchemy URL of the contact log for the settings' profile."""
    if settings.profile == "production":
        return psycopg_url(settings.postgres_url)
    return f"sqlite:///{settings.data_dir / 'serving' / 'contact_log.sqlite'}"


def open_contact_log(settings: Settings) -> ContactLog:
    """Open (and create if needed) the contact log of the settings' profile."""
    url = database_url(settings)
    if url.startswith("sqlite:///"):
        (settings.data_dir / "serving").mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 3})
    return ContactLog(engine).create()
