"""Ingest: validate a canonical table chunk by chunk and append its new rows to the lake.

Every input row ends in exactly one bucket, so read = stored + quarantined + duplicates skipped
(+ erased members skipped):
- erased members skipped: its member was erased (`memberscore erase`; the erasure log of
  `memberscore.erasures`): dropped before any check, so it reaches neither lake nor quarantine;
- quarantined: the contract rejects it; written with the reason to `<quarantine>/<table>/<run>.csv`;
- duplicates skipped: its primary key is already in the lake or earlier in this input (the first
  occurrence wins, even when later ones differ);
- stored: appended to the lake as `part-<run>-<chunk>` files.
Only the primary keys (and, for orders, events and contacts, the member ids of the lake) are held
in memory. Orders, events and contacts of members absent from the lake are stored and reported.
Consent changes (`consents`) are also copied, each member's latest, into the consent register
the decisions read (`pipelines.ingest.consents`), so the next decision honours them.

A run commits whole or not at all: its parts are staged out of the readers' sight, then one JSON
line naming them is appended to `<lake>/_ingest_log.jsonl` (the commit point), then they are
moved into the table. A run that fails stages nothing lasting; one killed before its log line
leaves staged parts that the next ingest deletes, one killed after it leaves parts the next
ingest moves in. Ingests into one lake take turns (`lake.writing`). The log names no member:
the report's examples (ids, rejected values) are printed, not logged.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from tqdm import tqdm

from memberscore import contract, journal, lake
from memberscore.erasures import ErasedIds
from memberscore.errors import ContractError
from memberscore.settings import Settings
from pipelines.ingest import readers
from pipelines.ingest.quarantine import PARTIAL, QuarantineWriter

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
    erased: int = 0

    def describe(self) -> str:
        """A few lines for people: the counts, the first rejected rows, unknown members."""
        erased = f" + erased members skipped {self.erased:,}" if self.erased else ""
        lines = [
            f"{self.table}: read {self.read:,} = stored {self.stored:,} + quarantined "
            f"{self.quarantined:,} + duplicates skipped {self.duplicates:,}{erased}  "
            f"({self.source})"
        ]
        if self.read == 0:
            lines.append("  the input holds no rows; nothing was stored")
        if self.table == contract.MEMBERS.name and self.duplicates:
            lines.append(
                "  members already in the lake are not updated: send consent changes with "
                "`memberscore ingest consents <file>`"
            )
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
    window: contract.DateWindow
    erased_ids: ErasedIds | None = None
    read: int = 0
    erased: int = 0
    stored: int = 0
    duplicates: int = 0
    unknown: int = 0
    unknown_examples: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def add(self, chunk: readers.Chunk, number: int, *, timezone: str | None, loose: bool) -> None:
        """Validate one chunk, quarantine its rejects, stage its new rows."""
        self.read += len(chunk.frame) + (0 if chunk.rejected is None else len(chunk.rejected))
        chunk = self._without_erased(chunk)
        checked = contract.validate(
            chunk.frame,
            self.spec,
            first_row=chunk.first_row,
            rows=chunk.rows,
            assume_timezone=timezone,
            ignore_unknown=loose,
            window=self.window,
        )
        rejected = checked.rejected
        if chunk.rejected is not None and not chunk.rejected.empty:  # malformed lines
            rejected = pd.concat([rejected, chunk.rejected]).sort_values(contract.ROW)
        self.quarantine.write(rejected)
        accepted = contract.with_change_ids(self.spec, checked.accepted)
        keys = accepted[self.spec.key].astype(str)
        repeated = duplicate_mask(keys, self.seen)
        fresh = accepted.loc[~repeated]
        self.seen.update(keys[~repeated])
        self.duplicates += int(repeated.sum())
        part = f"{self.run_id}-{number:05d}"
        self.parts += lake.stage(fresh, self.spec, self.settings.lake_dir, self.run_id, part)
        self.stored += len(fresh)
        if self.members is not None:
            self._note_unknown(fresh["member_id"].astype(str))

    def _without_erased(self, chunk: readers.Chunk) -> readers.Chunk:
        """The chunk without the rows (and malformed lines) of erased members, counted."""
        if self.erased_ids is None or "member_id" not in chunk.frame.columns:
            return chunk
        lines = chunk.rejected
        if lines is not None and "member_id" in lines.columns:
            dropped = self.erased_ids.mask(lines["member_id"])
            lines, self.erased = lines.loc[~dropped], self.erased + int(dropped.sum())
        hit = self.erased_ids.mask(chunk.frame["member_id"])
        if not hit.any():
            return readers.Chunk(chunk.frame, chunk.first_row, rows=chunk.rows, rejected=lines)
        self.erased += int(hit.sum())
        rows = chunk.rows
        if rows is None:
            rows = np.arange(chunk.first_row, chunk.first_row + len(chunk.frame))
        frame = chunk.frame.loc[~hit].reset_index(drop=True)
        return readers.Chunk(frame, chunk.first_row, rows=np.asarray(rows)[~hit], rejected=lines)

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
    check_timezone(assume_timezone)
    run_id = run_id or new_run_id()
    with lake.writing(settings.lake_dir):
        recover(settings)
        check_currency(settings.lake_dir, spec, currency)
        run = _Run(
            settings,
            spec,
            run_id,
            QuarantineWriter(settings.quarantine_dir / spec.name / f"{run_id}.csv", source.name),
            seen=set(lake.keys(settings.lake_dir, spec)),
            members=_member_index(settings.lake_dir, spec),
            window=plausible_window(settings),
            erased_ids=ErasedIds.of(settings.data_dir),
        )
        try:
            _read_all(run, source, timezone=assume_timezone, loose=ignore_unknown)
            report = _report(run, source.name, time.perf_counter() - started)
            run.quarantine.finish()
            _append_log(  # the commit point: from here on the run counts
                settings.lake_dir,
                report,
                parts=run.parts,
                currency=currency,
                timezone=assume_timezone,
            )
        except BaseException:
            lake.discard(settings.lake_dir, run_id, spec)
            run.quarantine.discard()
            raise
        lake.publish(settings.lake_dir, run_id, spec)
    if spec.name == contract.CONSENTS.name:  # decisions read the register, not the lake
        from pipelines.ingest.consents import sync_register

        sync_register(settings)
    return report


def _read_all(run: _Run, source: readers.Source, *, timezone: str | None, loose: bool) -> None:
    with _progress(run.spec.name, source.total_rows) as bar:
        for number, chunk in enumerate(source.chunks):
            run.add(chunk, number, timezone=timezone, loose=loose)
            bar.update(len(chunk.frame))
            if bar.disable and (number + 1) % LOG_EVERY_CHUNKS == 0:
                logger.info("%s: %s rows read from %s", run.spec.name, f"{run.read:,}", source.name)


def plausible_window(settings: Settings, now: datetime | None = None) -> contract.DateWindow:
    """Timestamps from `settings.earliest_date` (00:00 UTC) to `now` + `future_tolerance_days`."""
    now = now or datetime.now(UTC)
    return contract.DateWindow(
        earliest=pd.Timestamp(settings.earliest_date, tz="UTC"),
        latest=pd.Timestamp(now + timedelta(days=settings.future_tolerance_days)),
    )


def check_timezone(zone: str | None) -> None:
    """Refuse a --timezone that is not an IANA zone name, before any row is read."""
    if zone is None:
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContractError(
            f"unknown time zone {zone!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None


def recover(settings: Settings) -> None:
    """Finish or undo runs a killed process left behind (call with `lake.writing` held): staged
    parts of a run with a log line are published, the others deleted with their quarantine."""
    committed = {(entry.get("run_id"), entry.get("table")) for entry in read_log(settings.lake_dir)}
    for run_id, table in lake.pending(settings.lake_dir):
        spec = contract.table(table)
        if (run_id, table) in committed:
            logger.info(
                "completing ingest run %s (%s) that was stopped after its log line", run_id, table
            )
            lake.publish(settings.lake_dir, run_id, spec)
        else:
            logger.info(
                "dropping the parts of ingest run %s (%s) that never finished", run_id, table
            )
            lake.discard(settings.lake_dir, run_id, spec)
    for partial in settings.quarantine_dir.glob(f"*/*{PARTIAL}"):
        partial.unlink(missing_ok=True)


def read_log(lake_dir: Path) -> list[dict]:
    """The entries of `_ingest_log.jsonl`; a line cut short by a killed write is skipped."""
    path = lake_dir / LOG_FILE
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [entry for entry in entries if isinstance(entry, dict)]


def check_currency(lake_dir: Path, spec: contract.Table, currency: str) -> None:
    """Refuse a malformed currency code or one that differs from the lake's; record it.

    Members and consent changes carry no amounts: ingesting them neither checks nor records a
    currency.
    """
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ContractError(f"currency {currency!r} is not an ISO 4217 code such as USD or EUR")
    if spec.name not in (contract.MEMBERS.name, contract.CONSENTS.name):
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
        erased=run.erased,
    )


def _append_log(lake_dir: Path, report: IngestReport, **extra: object) -> None:
    entry = asdict(report) | extra
    for examples in ("rejected_examples", "unknown_member_examples"):  # ids and raw values
        entry.pop(examples)
    entry["quarantine_file"] = str(report.quarantine_file) if report.quarantine_file else None
    entry["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    journal.append_lines(lake_dir / LOG_FILE, json.dumps(entry) + "\n")
