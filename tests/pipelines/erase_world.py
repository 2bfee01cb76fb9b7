"""A small programme in every store, for the erasure tests: simulated, ingested (with a
quarantined row), two feature snapshots, the online store, published cards, contacts in the
contact log, a batch run with its report and campaign lists. The models are the score API
tests' tiny boosters (`tests.serving.conftest.FakeSource`) standing in for the registry."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from memberscore.contract import TABLES
from memberscore.settings import Settings
from tests.serving.conftest import FakeSource

START = date(2024, 1, 1)
DAYS = 364
AS_OF = START + timedelta(days=DAYS)
TABLE_NAMES = ("members", "orders", "events", "contacts")


@dataclass(frozen=True)
class World:
    """The settings, the untouched copy of the export (outside the data dir) and the batch run."""

    settings: Settings
    export: Path
    batch_out: Path


def build_world(settings: Settings, export: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Every store filled from a 300-member simulation (about 20 s)."""
    from features import build, store
    from pipelines import campaign, publish, simulate
    from pipelines.batch import job
    from pipelines.ingest import tables as ingest
    from serving.scoring import registry

    monkeypatch.setattr(registry.RegistrySource, "load", lambda self: FakeSource().load())
    simulate.run(settings, members=300, days=DAYS, seed=7, start=START)
    shutil.copytree(settings.raw_dir, export)
    for name in TABLE_NAMES:
        ingest.ingest(settings, name, str(settings.raw_dir / f"{name}.parquet"), currency="USD")
    build.run(settings, [AS_OF - timedelta(days=7), AS_OF], echo=lambda _: None)
    store.apply(settings)
    store.materialize(settings)
    publish.run(settings, progress=lambda _: None)
    summary = job.run(settings, AS_OF, bundle=FakeSource().load(), progress=False)
    campaign.build(settings, summary.out)
    return World(settings, export, summary.out)


def listed_members(world: World) -> list[str]:
    """Members on a campaign list, in list order (they are in every store)."""
    lists = sorted((world.batch_out / "campaign").glob("*.csv"))
    return [str(m) for path in lists for m in pd.read_csv(path)["member_id"]]


def add_contacts_and_quarantine(world: World, members: list[str]) -> None:
    """Given contacts of `members` in the contact log, their consent changes in the consent
    register and, for each, a rejected order row in quarantine (a CSV ingest with a negative
    amount)."""
    from pipelines.ingest import tables as ingest
    from serving.online.consent import ConsentChange, open_consent_register
    from serving.online.contact_log import Sent, open_contact_log

    register = open_consent_register(world.settings)
    for member_id in members:
        when = datetime(2024, 12, 2, tzinfo=UTC)
        register.record(ConsentChange(member_id, True, False, when, "api", ("sms",)))
    register.close()
    log = open_contact_log(world.settings)
    for i, member_id in enumerate(members):
        sent = datetime(2024, 12, 1, tzinfo=UTC)
        log.record_sent(
            Sent(f"c-erase-{i}", member_id, "benefit_reminder", "email", "treatment", sent)
        )
    log.close()
    rows = pd.DataFrame(
        {
            "order_id": [f"bad-{i}" for i in range(len(members))],
            "member_id": members,
            "ordered_at": "2024-06-01T10:00:00Z",
            "amount": -5,
            "discount": 0,
            "items": 1,
            "channel": "online",
            "is_return": False,
        }
    )
    path = world.export.parent / "bad_orders.csv"
    rows.to_csv(path, index=False)
    ingest.ingest(world.settings, "orders", str(path), currency="USD")


def files_naming(data_dir: Path, member_id: str) -> list[str]:
    """Files under `data_dir` whose bytes hold the id, or whose Parquet columns or SQLite
    tables hold it as a value (compression can hide an id from a byte scan)."""
    needle = member_id.encode()
    found = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        if needle in path.read_bytes():
            found.append(f"{path} (bytes)")
        elif path.suffix == ".parquet" and member_id in _parquet_values(path):
            found.append(f"{path} (values)")
        elif _is_sqlite(path) and _sqlite_holds(path, member_id):
            found.append(f"{path} (rows)")
    return found


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(16) == b"SQLite format 3\x00"


def _parquet_values(path: Path) -> set[str]:
    table = pq.read_table(path)
    return {
        str(v)
        for name in table.column_names
        if str(table.schema.field(name).type) in ("string", "large_string")
        or str(table.schema.field(name).type).startswith("dictionary")
        for v in table.column(name).to_pylist()
    }


def _sqlite_holds(path: Path, member_id: str) -> bool:
    """True when any text or blob cell of any table holds the id (Feast's entity keys are
    blobs spelling it)."""
    needle = member_id.encode()
    with sqlite3.connect(path) as con:
        tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in con.execute(f'SELECT * FROM "{table}"'):
                if any(isinstance(c, str | bytes) and needle in _bytes(c) for c in row):
                    return True
    return False


def _bytes(cell: str | bytes) -> bytes:
    return cell if isinstance(cell, bytes) else cell.encode()


def lake_members(settings: Settings) -> set[str]:
    """Every member id of every lake table."""
    from memberscore import lake

    ids: set[str] = set()
    for spec in TABLES.values():
        if "member_id" in spec.names:
            ids |= set(lake.read(settings.lake_dir, spec, ["member_id"])["member_id"])
    return ids
