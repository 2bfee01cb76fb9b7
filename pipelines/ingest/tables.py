"""Ingest: validate a canonical table chunk by chunk and append its new rows to the lake.

Every input row ends in exactly one bucket, so read = stored + quarantined + duplicates skipped:
- quarantined: the contract rejects it; written with the reason to `<quarantine>/<table>/<run>.csv`;
- duplicates skipped: its primary key is already in the lake or earlier in this input (the first
  occurrence wins, even when later ones differ);
- stored: appended to the lake as `part-<run>-<chunk>` files.
Only the primary keys (and, for orders, events and contacts, the member ids of the lake) are held
in memory. Orders, events and contacts of members absent from the lake are stored and reported.
Each run appends one JSON line to `<lake>/_ingest_log.jsonl`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from memberscore import contract, lake
from memberscore.errors import ContractError
from memberscore.settings import Settings
from pipelines.ingest import readers
from pipelines.ingest.quarantine import QuarantineWriter

LOG_FILE = "_ingest_log.jsonl"
LOG_EVERY_CHUNKS = 10
EXAMPLES = 5
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run did with every row it read."""

    table: str
    source: str
    read: int
    stored: int
    quarantined: int
    duplicates: int
    unknown_members: int
    quarantine_file: Path | None
    run_id: str = ""
    rejected_examples: tuple[str, ...] = ()
    unknown_member_examples: tuple[str, ...] = ()
    seconds: float = 0.0

    def describe(self) -> str:
        """A few lines for people: the counts, the first rejected rows, unknown members."""
        lines = [
            f"{self.table}: read {self.read:,} = stored {self.stored:,} + quarantined "
            f"{self.quarantined:,} + duplicates skipped {self.duplicates:,}  ({self.source})"
        ]
        if self.read == 0:
            lines.append("  the input holds no rows; nothing was stored")
        if self.quarantined:
            lines.append(
                f"  rejected rows (first {len(self.rejected_examples)} of {self.quarantined:,}; "
                f"all in {self.quarantine_file}):"
            )
            lines += [f"    {example}" for example in self.rejected_examples]
        if self.unknown_members:
            lines.append(
                f"  {self.unknown_members:,} stored rows belong to members not in "
                f"the lake (e.g. {', '.join(self.unknown_member_examples)}); they are kept: "
                "ingest their members with `memberscore ingest members <file>`"
            )
        return "\n".join(lines)


@dataclass
class _Run:
    """Mutable state of one ingest run: the key index, counters and the quarantine writer."""

    settings: Settings
    spec: contract.Table
    run_id: str
    quarantine: QuarantineWriter
    seen: set[str]
    members: set[str] | None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    unknown: int = 0
    unknown_examples: list[str] = field(default_factory=list)

    def add(self, chunk: readers.Chunk, number: int, *, timezone: str | None, loose: bool) -> None:
        """Validate one chunk, quarantine its rejects, store its new rows."""
        checked = contract.validate(
            chunk.frame,
            self.spec,
            first_row=chunk.first_row,
            assume_timezone=timezone,
            ignore_unknown=loose,
        )
        self.read += len(chunk.frame)
        self.quarantine.write(checked.rejected)
        keys = checked.accepted[self.spec.key].astype(str)
        repeated = duplicate_mask(keys, self.seen)
        fresh = checked.accepted.loc[~repeated]
        self.seen.update(keys[~repeated])
        self.duplicates += int(repeated.sum())
        part = f"{self.run_id}-{number:05d}"
        self.stored += lake.write(fresh, self.spec, self.settings.lake_dir, part)
        if self.members is not None:
            self._note_unknown(fresh["member_id"].astype(str))

    def _note_unknown(self, member_ids: pd.Series) -> None:
        members = self.members or set()
        known = np.fromiter((m in members for m in member_ids), dtype=bool, count=len(member_ids))
        unknown = member_ids[~known]
        self.unknown += len(unknown)
        for member_id in unknown.unique()[: EXAMPLES - len(self.unknown_examples)]:
            self.unknown_examples.append(str(member_id))


def duplicate_mask(keys: pd.Series, seen: set[str]) -> np.ndarray:
    """True for keys already in `seen` or repeated earlier in `keys` (first occurrence wins)."""
    known = np.fromiter((key in seen for key in keys), dtype=bool, count=len(keys))
    return known | keys.duplicated(keep="first").to_numpy()


def new_run_id() -> str:
    """A run id that sorts by start time and is unique: UTC timestamp + 6 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def ingest(
    settings: Settings,
    table: str,
    source: str,
    *,
    pg_table: str | None = None,
    assume_timezone: str | None = None,
    currency: str,
    ignore_unknown: bool = False,
) -> IngestReport:
    """Validate `source` (CSV, Parquet or postgresql:// URL + `pg_table`) as canonical `table`
    and append its new rows to the lake. `currency` (ISO 4217) is the currency of its amounts;
    naive timestamps are read in `assume_timezone` or rejected when it is None."""
    spec = contract.table(table)
    opened = readers.open_source(source, chunk_rows=settings.chunk_rows, pg_table=pg_table)
    return ingest_chunks(
        settings,
        spec,
        opened,
        assume_timezone=assume_timezone,
        currency=currency,
        ignore_unknown=ignore_unknown,
    )


def ingest_chunks(
    settings: Settings,
    spec: contract.Table,
    source: readers.Source,
    *,
    assume_timezone: str | None,
    currency: str,
    ignore_unknown: bool = False,
    run_id: str | None = None,
) -> IngestReport:
    """The ingest path shared by `ingest` and the importers: any iterator of raw chunks in."""
    started = time.perf_counter()
    check_currency(settings.lake_dir, spec, currency)
    run_id = run_id or new_run_id()
    run = _Run(
        settings,
        spec,
        run_id,
        QuarantineWriter(settings.quarantine_dir / spec.name / f"{run_id}.csv", source.name),
        seen=set(lake.keys(settings.lake_dir, spec)),
        members=_member_index(settings.lake_dir, spec),
    )
    with _progress(spec.name, source.total_rows) as bar:
        for number, chunk in enumerate(source.chunks):
            run.add(chunk, number, timezone=assume_timezone, loose=ignore_unknown)
            bar.update(len(chunk.frame))
            if bar.disable and (number + 1) % LOG_EVERY_CHUNKS == 0:
                logger.info("%s: %s rows read from %s", spec.name, f"{run.read:,}", source.name)
    report = _report(run, source.name, time.perf_counter() - started)
    _append_log(settings.lake_dir, report, currency=currency, timezone=assume_timezone)
    return report


def check_currency(lake_dir: Path, spec: contract.Table, currency: str) -> None:
    """Refuse a malformed currency code or one that differs from the lake's; record it.

    Members carry no amounts, so ingesting them neither checks nor records a currency.
    """
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ContractError(f"currency {currency!r} is not an ISO 4217 code such as USD or EUR")
    if spec.name != contract.MEMBERS.name:
        lake.record_currency(lake_dir, currency)


def _member_index(lake_dir: Path, spec: contract.Table) -> set[str] | None:
    if "member_id" not in spec.names or spec.key == "member_id":
        return None
    return set(lake.keys(lake_dir, contract.MEMBERS))


def _progress(table: str, total: int | None) -> tqdm:
    return tqdm(
        total=total,
        desc=f"ingest {table}",
        unit="rows",
        unit_scale=True,
        disable=not sys.stderr.isatty(),
        leave=False,
    )


def _report(run: _Run, source: str, seconds: float) -> IngestReport:
    return IngestReport(
        table=run.spec.name,
        source=source,
        read=run.read,
        stored=run.stored,
        quarantined=run.quarantine.count,
        duplicates=run.duplicates,
        unknown_members=run.unknown,
        quarantine_file=run.quarantine.file,
        run_id=run.run_id,
        rejected_examples=tuple(run.quarantine.examples),
        unknown_member_examples=tuple(run.unknown_examples),
        seconds=round(seconds, 3),
    )


def _append_log(lake_dir: Path, report: IngestReport, **extra: str | None) -> None:
    entry = asdict(report) | extra
    entry["quarantine_file"] = str(report.quarantine_file) if report.quarantine_file else None
    entry["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    lake_dir.mkdir(parents=True, exist_ok=True)
    with (lake_dir / LOG_FILE).open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
