"""The `memberscore erase` job: remove members from every store and record it in the erasure log.

First one line per member goes to the erasure log (`memberscore.erasures`: a salted hash, the
time, every store pending), then the stores are erased in this order:
- what the API serves from (`serving.online.erasure.forget_served`): the online store with the
  published cards' view, the cards' Parquet copy, the contact log, the consent register;
- quarantine files (the raw rejected rows), the raw exports under `<data>/raw`, the
  simulator's ground truth under `<data>/truth`, the feature snapshots (each file atomically),
  the parts a stopped `publish-scores` run keeps until it resumes (it then scores them again);
- the lake: every partition file of every table holding the member's rows is rewritten without
  them (a new file renamed over the old one), under the lake's writer lock that ingest takes;
  the ingest log's examples naming the member go too;
- batch runs under `<data>/outputs`: parts (and their CSV copies), the unscorable list, the
  manifest's checksums, counts and run key, campaign lists and their summary, the HTML report.
Then a second line records the rows removed per store and nothing pending. Ingest skips the
member's rows from the first line on. A run stopped half way leaves the request pending, and
the id still in the lake or the outputs (erased last), where `finish_pending` finds it again by
its hash. The API's `DELETE /v1/members/{member_id}` erases what serving owns and records the
rest as pending; `finish_pending` (run by `memberscore erase --pending` and at the start of
every job that reads the lake, snapshots or batch runs: ingest, import, features build and
materialize, publish-scores, batch-score, campaign build, train, train-btyd, nba train, stages)
erases it here.

Not handled: batch runs written with `--out` outside `<data>/outputs`, lines the order-lines
importer itself rejects for an erased member after the erasure (`memberscore erase` again
removes them), copies outside the data dir (backups, MLflow, exports sent to a CRM).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from memberscore import contract, erasures, lake
from memberscore.settings import Settings
from serving.online.erasure import PIPELINE_STORES, SERVED_STORES

LAKE_STORE = "lake {table}"
# The canonical tables and the member updates (consent changes): every lake table of members.
LAKE_TABLES = (*contract.TABLES.values(), *contract.UPDATES.values())
STORE_ORDER = (
    "lake members",
    "lake orders",
    "lake events",
    "lake contacts",
    "lake consents",
    "ingest log",
    "quarantine",
    "raw exports",
    "simulator truth",
    "feature snapshots",
    "online store",
    "published cards",
    "publish run parts",
    "contact log",
    "consent register",
    "batch outputs",
    "campaign lists",
)
UNITS = {
    "ingest log": "example",
    "online store": "member",
    "contact log": "contact",
    "consent register": "entry",
}


@dataclass
class ErasureReport:
    """Rows removed per store and member, where each store is, and the members found nowhere."""

    member_ids: list[str]
    removed: dict[str, Counter] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def add(self, store: str, counts: Counter | dict[str, int], where: str = "") -> None:
        """Count rows removed from `store`, per member id."""
        self.removed.setdefault(store, Counter()).update(counts)
        if where:
            self.where[store] = where

    def member_stores(self, member_id: str) -> dict[str, int]:
        """Rows removed per store for one member (stores without any left out)."""
        return {s: c[member_id] for s, c in self.removed.items() if c.get(member_id)}

    @property
    def unknown(self) -> list[str]:
        """Members no store held anything of."""
        return [m for m in self.member_ids if not self.member_stores(m)]

    def describe(self) -> str:
        """Per store what was removed, then the members found nowhere, for people."""
        if not self.member_ids:
            return "the pending erasures had nothing left in the lake, snapshots or outputs: closed"
        lines = [f"erased {len(self.member_ids)} member(s): {', '.join(self.member_ids)}"]
        stores = [s for s in STORE_ORDER if s in self.removed] + sorted(
            set(self.removed) - set(STORE_ORDER)
        )
        for store in stores:
            count = sum(self.removed[store].values())
            unit = UNITS.get(store, "row")
            where = f"  ({self.where[store]})" if store in self.where else ""
            lines.append(f"  {store:<18} {count:>8,} {_plural(unit, count)}{where}")
        for member_id in self.unknown:
            lines.append(
                f"  {member_id}: not found in any store (nothing to erase); recorded, so a "
                "later ingest skips its rows"
            )
        if self.log is not None:
            lines.append(f"erasure log: {self.log} (salted hashes, no ids)")
        return "\n".join(lines)


def _plural(unit: str, count: int) -> str:
    if count == 1:
        return unit
    return unit[:-1] + "ies" if unit.endswith("y") else unit + "s"


def erase(
    settings: Settings, member_ids: Sequence[str], *, by: str = "cli", contacts: Any = None
) -> ErasureReport:
    """Remove `member_ids` from every store (see the module docstring) and append one
    erasure-log line per member. `contacts` is an open contact log (default: opened here)."""
    ids = list(dict.fromkeys(m.strip() for m in member_ids if m.strip()))
    if not ids:
        raise ValueError("give at least one member id to erase")
    key = erasures.salt(settings.data_dir, create=True)
    assert key is not None
    report = ErasureReport(ids)
    everything = [*SERVED_STORES, *PIPELINE_STORES]
    _record(settings, key, ids, by, report, pending=everything)  # a crash leaves it pending
    # Served stores first, the lake and batch runs last: a run stopped half way leaves the id
    # in the lake or the outputs, where `finish_pending` finds it again by its hash.
    _erase_served(settings, ids, report, contacts)
    _erase_files(settings, ids, report)
    _erase_lake(settings, ids, report)
    _erase_batch_runs(settings, ids, report)
    report.log = _record(settings, key, ids, by, report, pending=[])
    return report


def _record(
    settings: Settings,
    key: bytes,
    ids: list[str],
    by: str,
    report: ErasureReport,
    *,
    pending: list[str],
) -> Path:
    """One erasure-log line per member: its hash, the time, the rows removed so far per store
    and the stores still `pending`."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    entries = (
        {
            "member": erasures.member_hash(key, m),
            "at": at,
            "by": by,
            "stores": report.member_stores(m),
            "pending": pending,
        }
        for m in ids
    )
    return erasures.append(settings.data_dir, entries)


def finish_pending(settings: Settings, *, contacts: Any = None) -> ErasureReport | None:
    """Finish the erasures left pending (by the API, or by an erasure stopped half way): their
    ids are found by hashing the member ids of the lake, the snapshots and the outputs; None
    when nothing is pending. A member found nowhere there has nothing left to erase: its
    request is closed as it is."""
    pending = erasures.pending(settings.data_dir)
    if not pending:
        return None
    key = erasures.salt(settings.data_dir)
    assert key is not None  # `pending` found a log, and a log without its salt is an error
    found = erasures.ErasedIds(key, frozenset(pending)).known(_stored_member_ids(settings))
    report = (
        erase(settings, sorted(found.values()), by="pending", contacts=contacts) if found else None
    )
    at = datetime.now(UTC).isoformat(timespec="seconds")
    closed = [h for h in pending if h not in found]
    erasures.append(
        settings.data_dir,
        ({"member": h, "at": at, "by": "pending", "stores": {}, "pending": []} for h in closed),
    )
    return report or ErasureReport([], log=erasures.log_path(settings.data_dir))


def finish_pending_quietly(settings: Settings, echo: Callable[[str], None]) -> None:
    """`finish_pending` before a job that reads the lake or the snapshots; says what it did."""
    report = finish_pending(settings)
    if report is not None and report.member_ids:
        echo("finished erasures requested through the API first:\n" + report.describe())


def _stored_member_ids(settings: Settings) -> set[str]:
    """Every member id in the lake's tables, the feature snapshots and the outputs (batch
    parts, unscorable lists, campaign lists): `erase` clears the outputs last, so an erasure
    stopped half way still has the id in one of them."""
    from features.store import snapshot_files

    ids: set[str] = set()
    for spec in LAKE_TABLES:
        if "member_id" in spec.names and lake.has_table(settings.lake_dir, spec):
            ids.update(lake.read(settings.lake_dir, spec, ["member_id"])["member_id"].unique())
    outputs = settings.outputs_dir
    parquet = sorted(outputs.rglob("*.parquet")) if outputs.is_dir() else []
    for path in [*snapshot_files(settings), *parquet]:
        if "member_id" in pq.read_schema(path).names:
            column = pq.read_table(path, columns=["member_id"]).column(0)
            ids.update(column.unique().to_pylist())
    for path in sorted(outputs.rglob("*.csv")) if outputs.is_dir() else []:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=0)
        if "member_id" in frame.columns:
            ids.update(pd.read_csv(path, dtype=str, usecols=["member_id"])["member_id"])
    return {str(m) for m in ids if m is not None}


def _erase_lake(settings: Settings, ids: list[str], report: ErasureReport) -> None:
    """The lake's tables and the ingest log, under the writer lock; runs a killed ingest left
    staged are settled first (published or dropped), so no staged part keeps the rows."""
    from pipelines.ingest.tables import recover

    with lake.writing(settings.lake_dir):
        recover(settings)
        for spec in LAKE_TABLES:
            counts = lake.erase(settings.lake_dir, spec, ids)
            report.add(LAKE_STORE.format(table=spec.name), counts, str(settings.lake_dir))
        report.add("ingest log", _scrub_ingest_log(settings.lake_dir, ids))


def _pattern(member_id: str) -> re.Pattern[str]:
    """The id as a whole token in free text (not inside a longer id)."""
    return re.compile(rf"(?<![\w-]){re.escape(member_id)}(?![\w-])")


def _scrub_ingest_log(lake_dir: Path, ids: list[str]) -> Counter:
    """Drop the examples naming the members from the ingest log (older runs logged unknown
    member ids and rejected rows); a line cut short that names them is dropped."""
    from pipelines.ingest.tables import LOG_FILE

    path = lake_dir / LOG_FILE
    removed: Counter = Counter()
    if not path.is_file():
        return removed
    patterns = {m: _pattern(m) for m in ids}
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            named = [m for m, p in patterns.items() if p.search(line)]
            removed.update(named)
            lines += [] if named else [line]
            continue
        for name in ("unknown_member_examples", "rejected_examples"):
            kept = []
            for example in entry.get(name) or []:
                named = [m for m, p in patterns.items() if p.search(str(example))]
                removed.update(named)
                kept += [] if named else [example]
            if name in entry:
                entry[name] = kept
        lines.append(json.dumps(entry))
    if removed:
        _replace_text(path, "".join(line + "\n" for line in lines))
    return removed


def _replace_text(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".erasing")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def _erase_files(settings: Settings, ids: list[str], report: ErasureReport) -> None:
    """Quarantine files, raw exports, the simulator's truth, the feature snapshots and the
    parts of a stopped publish run."""
    from features.store import snapshot_files
    from pipelines import publish

    quarantine: Counter = Counter()
    for path in sorted(settings.quarantine_dir.glob("*/*.csv")):
        quarantine += _csv_without(path, ids, column=None)
    report.add("quarantine", quarantine, str(settings.quarantine_dir))
    for store, folder in (
        ("raw exports", settings.raw_dir),
        ("simulator truth", settings.truth_dir),
    ):
        counts: Counter = Counter()
        for path in sorted(folder.rglob("*.parquet")) if folder.is_dir() else []:
            counts += erasures.without_members(path, ids)
        for path in sorted(folder.rglob("*.csv")) if folder.is_dir() else []:
            counts += _csv_without(path, ids, column="member_id")
        report.add(store, counts, str(folder))
    snapshots: Counter = Counter()
    for path in snapshot_files(settings):
        snapshots += erasures.without_members(path, ids)
    report.add("feature snapshots", snapshots, str(settings.snapshots_dir))
    # A stopped `publish-scores` keeps its finished parts until it resumes; a part rewritten
    # here no longer matches its checksum in the run's manifest, so the resumed run scores it
    # again from the (erased) snapshot.
    parts: Counter = Counter()
    folder = publish.run_folder(settings)
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        parts += erasures.without_members(path, ids)
    report.add("publish run parts", parts, str(folder))


def _csv_without(path: Path, ids: list[str], *, column: str | None) -> Counter:
    """Rewrite a CSV without the rows naming the members: in `column` (stripped), or, when
    None (quarantine files: raw rows and reasons), in any field as a whole token."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if column is not None and column not in frame.columns:
        return Counter()
    removed: Counter = Counter()
    drop = pd.Series(False, index=frame.index)
    for member_id in ids:
        if column is not None:
            hit = frame[column].str.strip() == member_id
        else:
            pattern = _pattern(member_id)
            hit = frame.apply(lambda col, p=pattern: col.str.contains(p, regex=True)).any(axis=1)
        removed[member_id] += int(hit.sum())
        drop |= hit
    if drop.any():
        temp = path.with_name(path.name + ".erasing")
        frame.loc[~drop].to_csv(temp, index=False)
        os.replace(temp, path)
    return +removed


def _erase_served(settings: Settings, ids: list[str], report: ErasureReport, contacts: Any) -> None:
    """The online store, published cards, contact log and consent register (one member at a
    time through the function the API calls)."""
    from serving.online.contact_log import open_contact_log
    from serving.online.erasure import forget_served

    log = contacts or open_contact_log(settings)
    consent = _open_consent(settings)
    try:
        for member_id in ids:
            for removed in forget_served(settings, member_id, log, consent):
                report.add(removed.store, {member_id: removed.count}, removed.where)
    finally:
        if contacts is None:
            log.close()
        if consent is not None:
            consent.close()
    _vacuum_sqlite(settings)


def _vacuum_sqlite(settings: Settings) -> None:
    """Rebuild the local contact-log database: deleted rows (the consent register's too) may
    otherwise linger in its free pages. PostgreSQL frees them at its next (auto)vacuum."""
    import sqlite3

    from serving.online.contact_log import database_url

    url = database_url(settings)
    path = Path(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite:///") and path.is_file():
        with sqlite3.connect(path, timeout=10) as con:  # waits for a writer, e.g. the API
            con.execute("VACUUM")
        con.close()


def _open_consent(settings: Settings) -> Any:
    """The consent register (in the contact log's database)."""
    from serving.online.consent import open_consent_register

    return open_consent_register(settings)


def _erase_batch_runs(settings: Settings, ids: list[str], report: ErasureReport) -> None:
    """Every batch run under the outputs folder (a folder holding a manifest)."""
    from pipelines.batch.manifest import MANIFEST

    parts: Counter = Counter()
    lists: Counter = Counter()
    runs = (
        sorted(p.parent for p in settings.outputs_dir.rglob(MANIFEST))
        if settings.outputs_dir.is_dir()
        else []
    )
    for folder in runs:
        removed, listed = erase_batch_run(settings, folder, ids)
        parts += removed
        lists += listed
    report.add("batch outputs", parts, f"{len(runs)} run(s) in {settings.outputs_dir}")
    report.add("campaign lists", lists)


def erase_batch_run(settings: Settings, folder: Path, ids: list[str]) -> tuple[Counter, Counter]:
    """Remove the members from one batch run: its parts (and CSV copies), the unscorable list,
    the campaign lists; the manifest's checksums, counts and totals follow, so
    `batch-score --verify` passes and the report is rewritten. Returns the rows removed from
    the parts and from the campaign lists, per member."""
    from pipelines.batch import manifest as mf

    manifest = mf.read(folder)
    assert manifest is not None
    gone = _member_rows(folder, manifest, ids)
    if gone.empty:
        return Counter(), Counter()
    for i, part in enumerate(manifest.parts):
        path = folder / part.file
        if part.sha256 == mf.EMPTY or not path.is_file():
            continue
        rows = gone[gone["_part"] == part.file]
        if rows.empty:
            continue
        erasures.without_members(path, ids, drop_empty=True)
        if path.with_suffix(".csv").is_file():
            _csv_without(path.with_suffix(".csv"), ids, column="member_id")
        scored = int(rows["scored"].sum())
        left = part.rows - len(rows)
        manifest.parts[i] = mf.PartRecord(
            part.file,
            left,
            part.scored - scored,
            part.unscorable - (len(rows) - scored),
            mf.sha256(path) if path.is_file() else mf.EMPTY,
        )
    listed = _erase_campaign(folder, ids, gone)
    if manifest.status == mf.COMPLETE:
        _adjust_totals(settings, folder, manifest, gone, ids)
    mf.write(folder, manifest)
    _rewrite_report(settings, folder, manifest)
    return Counter(gone["member_id"].astype(str)), listed


def _member_rows(folder: Path, manifest: Any, ids: list[str]) -> pd.DataFrame:
    """The members' rows in the run's parts, with the part file they are in (`_part`)."""
    import pyarrow.compute as pc

    frames = []
    for part in manifest.parts:
        path = folder / part.file
        if part.rows and path.is_file() and erasures.member_counts(path, ids):
            table = pq.read_table(path)
            hit = pc.is_in(table.column("member_id").cast("string"), value_set=_array(ids))
            frames.append(table.filter(hit).to_pandas().assign(_part=part.file))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _array(ids: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(ids, pa.string())


def _adjust_totals(
    settings: Settings, folder: Path, manifest: Any, gone: pd.DataFrame, ids: list[str]
) -> None:
    """Counts, stage and action tallies, expected totals and the unscorable list of a
    complete run, without the erased members' rows."""
    from pipelines.batch import manifest as mf
    from pipelines.batch.job import EXPECTED

    counts = manifest.counts
    scored = int(gone["scored"].sum())
    counts["members"] -= len(gone)
    counts["scored"] -= scored
    counts["unscorable"] -= len(gone) - scored
    counts["control_group"] -= int(gone["control_group"].sum())
    outputs = manifest.outputs
    for name, column in (("stages", "stage"), ("actions", "action_id")):
        tally = Counter(outputs.get(name, {}))
        tally.subtract(Counter(gone[column].astype(str)))
        outputs[name] = {k: v for k, v in sorted(tally.items()) if v > 0}
    for name in EXPECTED:
        total = outputs.get("expected", {}).get(name)
        if total is not None and name in gone.columns:
            outputs["expected"][name] = float(total - gone[name].dropna().sum())
    outputs["parts"] = sorted(p.file for p in manifest.parts if p.rows)
    unscorable = folder / outputs.get("unscorable", "unscorable.parquet")
    if unscorable.is_file():
        erasures.without_members(unscorable, ids)
        outputs[mf.UNSCORABLE_SHA256] = mf.sha256(unscorable)
    _refresh_inputs(settings, manifest)


def _refresh_inputs(settings: Settings, manifest: Any) -> None:
    """The snapshot checksum, the recent contacts and the consent entries the run key hashes,
    as they are now that the member is gone, so rerunning the same `batch-score` finds the run
    complete instead of refusing a run with other inputs."""
    from decisions.catalogue import Catalogue
    from pipelines.batch import manifest as mf
    from pipelines.batch.chunk import CONTACT_COLUMNS, recent_contacts

    inputs = manifest.inputs
    snapshot = Path(inputs.get("snapshot", ""))
    if snapshot.is_file():
        inputs["snapshot_sha256"] = mf.sha256(snapshot)
    if "recent_contacts" in inputs and "catalogue" in inputs:
        contacts = (
            lake.read(settings.lake_dir, contract.CONTACTS, columns=CONTACT_COLUMNS)
            if lake.has_table(settings.lake_dir, contract.CONTACTS)
            else pd.DataFrame(columns=CONTACT_COLUMNS)
        )
        when = pd.Timestamp(manifest.as_of, tz="UTC")
        catalogue = Catalogue.model_validate(inputs["catalogue"])
        recent = recent_contacts(contacts, catalogue, settings, when)
        digest = pd.util.hash_pandas_object(recent, index=False).sum()
        inputs["recent_contacts"] = {"rows": len(recent), "hash": int(digest)}
    if "consents" in inputs:  # the consent register lost the member's entry: key it as the job does
        from pipelines.batch.job import _consent_key, _consents

        inputs["consents"] = _consent_key(_consents(settings))
    manifest.run_key = mf.run_key(inputs)


def _erase_campaign(folder: Path, ids: list[str], gone: pd.DataFrame) -> Counter:
    """Remove the members from the run's campaign lists; the summary's sizes, cost and
    expected value follow (cost and value count treatment contacts only)."""
    from pipelines.campaign import FOLDER, SUMMARY

    lists = folder / FOLDER
    removed: Counter = Counter()
    if not lists.is_dir():
        return removed
    summary_path = lists / SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    for path in sorted(lists.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        hit = frame["member_id"].isin(ids) if "member_id" in frame.columns else frame.index < 0
        if not hit.any():
            continue
        removed.update(frame.loc[hit, "member_id"])
        _write_csv(path, frame.loc[~hit])
        if summary is not None:
            _shrink_summary(summary, path.stem, frame.loc[hit], gone)
    if summary is not None and removed:
        summary_path.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return removed


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    temp = path.with_name(path.name + ".erasing")
    frame.to_csv(temp, index=False)
    os.replace(temp, path)


def _shrink_summary(summary: dict, action: str, listed: pd.DataFrame, gone: pd.DataFrame) -> None:
    """Take the erased members of one list out of the campaign summary's row for `action`."""
    from decisions.campaigns import TREATMENT

    row = next((r for r in summary.get("lists", []) if r.get("action_id") == action), None)
    if row is None:
        return
    treated = listed[listed["group"] == TREATMENT]["member_id"]
    costs = gone.set_index("member_id")
    row["members"] -= len(listed)
    row["treatment"] -= len(treated)
    row["control"] -= len(listed) - len(treated)
    cost = float(costs.loc[costs.index.isin(treated), "unit_cost"].sum())
    row["cost"] -= cost
    row["expected_value"] -= float(costs.loc[costs.index.isin(treated), "expected_value"].sum())
    summary["spent"] -= cost


def _rewrite_report(settings: Settings, folder: Path, manifest: Any) -> None:
    """Write the run's HTML report again from what is left, if it had one."""
    from pipelines.batch import manifest as mf
    from pipelines.batch.report import REPORT, write

    if (folder / REPORT).is_file() and manifest.status == mf.COMPLETE:
        write(settings, folder)
