"""Batch scoring job: every member of a feature snapshot scored, staged and given an action.

`run(settings, as_of, out)` reads the snapshot of cutoff `as_of` in chunks of
`settings.chunk_rows` rows, scores each chunk with `pipelines.batch.chunk.score_chunk` and
writes it as `part-NNNNN.parquet` (memory stays bounded by the chunk size). The manifest records
inputs, model versions, finished parts with checksums and, at the end, the counts; a killed run
resumes at the first unfinished part and a finished one is not redone unless `force=True`. Every
rerun rechecks the checksums first: a part that is missing or changed is rescored and rewritten
(a warning names it), so a damaged finished run is repaired; `verify(out)` only checks.
Output rows equal member rows: members that cannot be scored keep a row (`scored` false) and are
listed in `unscorable.parquet` with the reason. The columns do not depend on the models served:
without the optional activation model the `activation` column is there, all null.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ThreadPoolExecutor,
    as_completed,
    wait,
)
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from decisions.catalogue import Catalogue
from memberscore.errors import ContractError, DataNotFound
from memberscore.settings import Settings
from pipelines.batch import manifest as mf
from pipelines.batch.chunk import (
    CONTACT_COLUMNS,
    REASON_SCOPES,
    Decider,
    recent_contacts,
    score_chunk,
)
from serving.scoring.bundle import ModelBundle
from training.core.reasons import MAX_REASONS

ENGINES = ("local", "spark")
UNSCORABLE = "unscorable.parquet"
PART_GLOB = "part-*.parquet"
EXPECTED = ("orders_mean", "spend_mean", "clv_mean")  # summed over the members in the manifest
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Summary:
    """What a batch run did; `skipped` parts were finished by an earlier, interrupted run;
    `repaired` files were found missing or changed (checksum) and written again."""

    out: Path
    as_of: date
    members: int
    scored: int
    unscorable: int
    parts: int
    skipped: int
    seconds: float
    already_complete: bool = False
    actions: dict[str, int] = field(default_factory=dict)
    report: Path | None = None
    expected: dict[str, float | None] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_served: dict[str, str] = field(default_factory=dict)
    repaired: tuple[str, ...] = ()

    def describe(self) -> str:
        """A few lines for the CLI and the demo."""
        if self.already_complete:
            head = (
                f"batch {self.as_of} already complete in {self.out} ({self.parts} parts, "
                "checksums verified; use --force to redo)"
            )
        else:
            rate = self.members / self.seconds if self.seconds else 0.0
            head = (
                f"scored {self.members:,} members as of {self.as_of} in {self.parts} parts "
                f"({self.skipped} resumed) in {self.seconds:.1f} s ({rate:,.0f} members/s)"
            )
        sent = ", ".join(f"{a} {n:,}" for a, n in self.actions.items())
        lines = [
            head,
            f"  scored {self.scored:,}, unscorable {self.unscorable:,} (see {UNSCORABLE})",
            f"  actions: {sent}",
            f"  {expected_line(self.expected, self.models)}",
            *(f"  not served: {name} ({why})" for name, why in self.not_served.items()),
            *(f"  repaired: {name} (missing or changed; written again)" for name in self.repaired),
            f"  output:   {self.out}",
        ]
        if self.report is not None:
            lines.append(f"  report:   {self.report}")
        return "\n".join(lines)


def expected_line(expected: Mapping[str, float | None], models: Mapping[str, Any]) -> str:
    """Totals of the expected values over the clv model's horizon, and the models' grades."""
    horizon = models.get("clv", {}).get("horizon_days")
    window = f"next {horizon} days" if horizon else "clv horizon"

    def total(name: str) -> str:
        value = expected.get(name)
        return "n/a" if value is None else f"{value:,.2f}"

    grades = ", ".join(f"{n} {m.get('grade') or '-'}" for n, m in models.items())
    return (
        f"expected ({window}): orders {total('orders_mean')}, spend {total('spend_mean')}, "
        f"CLV {total('clv_mean')}; grades: {grades or 'none'}"
    )


def model_quality(bundle: ModelBundle) -> dict[str, dict[str, Any]]:
    """Registry name → version and recorded quality (grade, notes, horizon_days,
    label_horizon_days; None where untagged) of every model in `bundle`, by name."""
    return {
        name: {"version": ref.version, **asdict(ref.quality)}
        for name, ref in sorted(bundle.refs().items())
    }


def default_out(settings: Settings, as_of: date) -> Path:
    """Where a run of cutoff `as_of` writes when no folder is given."""
    return settings.outputs_dir / f"batch-{as_of:%Y-%m-%d}"


def run(
    settings: Settings,
    as_of: date,
    out: Path | None = None,
    *,
    segments: Sequence[str] = (),
    csv: bool = False,
    force: bool = False,
    engine: str = "local",
    catalogue: Catalogue | None = None,
    bundle: ModelBundle | None = None,
    reasons: int = MAX_REASONS,
    reasons_for: str = "actioned",
    progress: bool = True,
    report: bool = True,
) -> Summary:
    """Score the snapshot of cutoff `as_of` (00:00 UTC) into `out` (default
    `default_out`); `segments` keeps only members of those RFM segments. Models come from the
    registry (alias champion) unless `bundle` is given. `reasons` reason codes (0: none) are
    computed for members given an action (`reasons_for="actioned"`) or for all members."""
    if engine not in ENGINES:
        raise ContractError(f"unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    started = time.perf_counter()
    out = out or default_out(settings, as_of)
    snapshot = _snapshot(settings, as_of)
    bundle = bundle or _load_bundle(settings)
    when = pd.Timestamp(as_of, tz="UTC")
    decider = _decider(settings, catalogue, bundle, when)
    if reasons_for not in REASON_SCOPES:
        raise ContractError(f"reasons_for must be one of {', '.join(REASON_SCOPES)}")
    inputs = _inputs(settings, snapshot, bundle, decider, segments)
    inputs["reasons"] = {"count": reasons, "for": reasons_for}
    manifest, done, repaired = _open(
        out, inputs, as_of, engine, force, _parts_total(snapshot, settings)
    )
    if manifest.status == mf.COMPLETE:
        return _summary(out, manifest, 0.0, already=True)
    manifest.models, manifest.not_served = model_quality(bundle), bundle.not_served()

    def score(chunk: pd.DataFrame) -> pd.DataFrame:
        return score_chunk(chunk, when, bundle, decider, settings, reasons, reasons_for)

    def write(name: str, rows: pd.DataFrame | None) -> mf.PartRecord:
        if rows is None:  # no member left to score: nothing is written
            return mf.PartRecord(name, 0, 0, 0, mf.EMPTY)
        return _write_part(out, name, rows, csv)

    records = _records(engine, settings, snapshot, done, segments, score, write)
    for record in _progress(records, manifest.parts_total, len(done), progress):
        manifest.parts.append(record)
        mf.write(out, manifest)
    _finish(out, manifest)
    path = _report(settings, out) if report else None
    seconds = time.perf_counter() - started
    summary = _summary(out, manifest, seconds, skipped=len(done), report=path)
    return replace(summary, repaired=repaired)


@dataclass(frozen=True)
class Verification:
    """The recheck of a batch run folder: its status, parts, and the damaged files (name →
    what is wrong)."""

    out: Path
    status: str
    parts: int
    parts_total: int
    damaged: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when the run is complete and every recorded file has its checksum."""
        return self.status == mf.COMPLETE and not self.damaged

    def describe(self) -> str:
        """One line when intact; otherwise what is wrong and the command that repairs it."""
        if self.ok:
            return f"batch run in {self.out}: complete, {self.parts} parts, checksums verified"
        state = [f"{len(self.damaged)} damaged file(s)"] if self.damaged else []
        if self.status != mf.COMPLETE:
            state.insert(0, f"not finished ({self.parts} of {self.parts_total} parts recorded)")
        return "\n".join(
            [
                f"batch run in {self.out}: {'; '.join(state)}",
                *(f"  {problem}" for problem in self.damaged.values()),
                "  rerun the same `memberscore batch-score` command without --verify: it "
                "rescores only the missing or damaged parts",
            ]
        )


def verify(out: Path) -> Verification:
    """Recheck the run in `out` against its manifest without scoring anything."""
    manifest = mf.read(out) if out.is_dir() else None
    if manifest is None:
        raise DataNotFound(f"no batch run in {out}; run `memberscore batch-score` first")
    damaged = manifest.damage(out)
    return Verification(out, manifest.status, len(manifest.parts), manifest.parts_total, damaged)


def _records(
    engine: str,
    settings: Settings,
    snapshot: Path,
    done: Mapping[str, mf.PartRecord],
    segments: Sequence[str],
    score: Callable[[pd.DataFrame], pd.DataFrame],
    write: Callable[[str, pd.DataFrame | None], mf.PartRecord],
) -> Iterator[mf.PartRecord]:
    """The parts of `snapshot` not in `done`, filtered to `segments`, scored by `score` and
    written by `write` (rows None: no member left): locally, each part on one of
    `settings.batch_workers` threads, records in completion order; or on Spark executors,
    written here in part order."""
    if engine == "spark":
        from pipelines.spark.scoring import scored_parts

        scored = scored_parts(settings, snapshot, done, segments, score)
        return (write(name, rows) for name, rows in scored)

    def part(name: str, batch: pa.RecordBatch) -> mf.PartRecord:
        chunk = _frame(batch, segments)
        # None: every member of this chunk filtered out by `segments`
        return write(name, None if chunk.empty else score(chunk))

    todo = (
        (f"part-{n:05d}.parquet", b)
        for n, b in enumerate(pq.ParquetFile(snapshot).iter_batches(settings.chunk_rows))
        if f"part-{n:05d}.parquet" not in done
    )
    return _parallel(part, todo, settings.batch_workers)


def _snapshot(settings: Settings, as_of: date) -> Path:
    """The snapshot file of `as_of`, checked chunk by chunk before any part is scored. Only the
    keys are required and nulls are allowed: members missing values are listed unscorable."""
    from features.reader import check_snapshot_file
    from features.schema import KEYS
    from features.store import snapshot_path

    path = snapshot_path(settings, as_of)
    if not path.is_file():
        raise DataNotFound(
            f"no feature snapshot for {as_of} in {settings.snapshots_dir}; run "
            f"`memberscore features build --as-of {as_of}` first"
        )
    check_snapshot_file(path, as_of, required=KEYS, nulls="any", chunk_rows=settings.chunk_rows)
    return path


def _load_bundle(settings: Settings) -> ModelBundle:
    from serving.scoring.registry import RegistrySource

    return RegistrySource(settings).load()


def _decider(
    settings: Settings, catalogue: Catalogue | None, bundle: ModelBundle, now: pd.Timestamp
) -> Decider:
    """Catalogue, uplift model (the registered one, else catalogue priors), the contacts
    the guardrails need at `now` and the consent register's entries (read once per run)."""
    from decisions.catalogue import load_catalogue
    from decisions.uplift import prior_only_model
    from memberscore import lake
    from memberscore.contract import CONTACTS

    catalogue = catalogue or load_catalogue()
    uplift = prior_only_model(catalogue) if bundle.uplift is None else bundle.uplift
    contacts = (
        lake.read(settings.lake_dir, CONTACTS, columns=CONTACT_COLUMNS)
        if lake.has_table(settings.lake_dir, CONTACTS)
        else pd.DataFrame(columns=CONTACT_COLUMNS)
    )
    recent = recent_contacts(contacts, catalogue, settings, now)
    return Decider(catalogue, uplift, recent, consents=_consents(settings))


def _consents(settings: Settings) -> pd.DataFrame:
    """Every entry of the consent register (members who changed consent), read in bulk."""
    from serving.online.consent import open_consent_register

    register = open_consent_register(settings)
    try:
        return register.entries()
    finally:
        register.close()


def _consent_key(consents: pd.DataFrame | None) -> dict[str, int]:
    """Rows and hash of the consent entries: a change makes a new run, never a resumed one."""
    if consents is None or consents.empty:
        return {"rows": 0, "hash": 0}
    ordered = consents.sort_values("member_id").astype(str)
    return {
        "rows": len(ordered),
        "hash": int(pd.util.hash_pandas_object(ordered, index=False).sum()),
    }


def _inputs(
    settings: Settings,
    snapshot: Path,
    bundle: ModelBundle,
    decider: Decider,
    segments: Sequence[str],
) -> dict[str, Any]:
    """Everything that decides the output rows (hashed into the manifest's run key)."""
    contacts = pd.util.hash_pandas_object(decider.contacts, index=False).sum()
    return {
        "snapshot": str(snapshot.resolve()),
        "snapshot_sha256": mf.sha256(snapshot),
        "models": dict(sorted(bundle.fingerprint.items())),
        "catalogue": decider.catalogue.model_dump(mode="json"),
        "recent_contacts": {"rows": len(decider.contacts), "hash": int(contacts)},
        "consents": _consent_key(decider.consents),
        "segments": sorted(segments),
        "chunk_rows": settings.chunk_rows,
        "scoring": {
            "churn_horizons_days": list(settings.churn_horizons_days),
            "monthly_discount_rate": settings.monthly_discount_rate,
            "currency": settings.currency,
            "tier_period_days": settings.tier_period_days,
        },
        "decisions": settings.decisions.model_dump(mode="json"),
    }


def _parts_total(snapshot: Path, settings: Settings) -> int:
    rows = pq.ParquetFile(snapshot).metadata.num_rows
    return max(1, -(-rows // settings.chunk_rows))


def _open(
    out: Path, inputs: dict[str, Any], as_of: date, engine: str, force: bool, total: int
) -> tuple[mf.Manifest, dict[str, mf.PartRecord], tuple[str, ...]]:
    """The manifest to continue (same inputs, not forced), its intact parts and the damaged
    files to redo; or a fresh one in a clean folder. Refuses to mix runs: another run's folder
    needs `force`. A complete run with damaged files is reopened (status running)."""
    key = mf.run_key(inputs)
    old = mf.read(out) if out.is_dir() else None
    if old is not None and not force:
        if old.run_key != key:
            raise ContractError(
                f"{out} holds a batch run with other inputs (run key {old.run_key}, now {key}); "
                "pass --force to replace it or choose another --out"
            )
        damaged = old.damage(out)
        for problem in damaged.values():
            logger.warning("batch run in %s: %s; writing it again", out, problem)
        done = {p.file: p for p in old.parts if p.file not in damaged}
        old.parts = list(done.values())
        if damaged and old.status == mf.COMPLETE:
            old.status = mf.RUNNING
            mf.write(out, old)
        return old, done, tuple(sorted(damaged))
    if out.exists() and (old is not None or any(out.glob(PART_GLOB))):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = mf.Manifest(key, f"{as_of:%Y-%m-%d}", engine, inputs, total)
    mf.write(out, manifest)
    return manifest, {}, ()


def _frame(batch: pa.RecordBatch, segments: Sequence[str]) -> pd.DataFrame:
    """One chunk of snapshot rows as pandas, filtered to `segments` if given."""
    frame = batch.to_pandas()
    if segments:
        frame = frame[frame["segment"].isin(list(segments)).to_numpy()]
    return frame.reset_index(drop=True)


def _parallel(
    work: Callable[[str, pa.RecordBatch], mf.PartRecord],
    todo: Iterator[tuple[str, pa.RecordBatch]],
    workers: int,
) -> Iterator[mf.PartRecord]:
    """`work` over `todo` on `workers` threads (LightGBM and Arrow release the GIL), at most
    `workers` chunks in flight so memory stays bounded; records in completion order."""
    if workers <= 1:
        yield from (work(name, batch) for name, batch in todo)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="batch") as pool:
        running: set[Future[mf.PartRecord]] = set()
        for name, batch in todo:
            if len(running) >= workers:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in finished)
            running.add(pool.submit(work, name, batch))
        for future in as_completed(running):
            yield future.result()


def _progress(
    records: Iterator[mf.PartRecord], total: int, done: int, show: bool
) -> Iterator[mf.PartRecord]:
    from tqdm import tqdm

    with tqdm(total=total, initial=done, unit="part", disable=not show, desc="batch") as bar:
        for record in records:
            yield record
            bar.update(1)


def _write_part(out: Path, name: str, rows: pd.DataFrame, csv: bool) -> mf.PartRecord:
    """Write one part atomically (temp file, then rename) and describe it."""
    path = out / name
    temp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), temp)
    os.replace(temp, path)
    if csv:
        rows.to_csv(path.with_suffix(".csv"), index=False)
    scored = int(rows["scored"].sum())
    return mf.PartRecord(name, len(rows), scored, len(rows) - scored, mf.sha256(path))


def _finish(out: Path, manifest: mf.Manifest) -> None:
    """List the unscorable members, add the counts and mark the run complete."""
    columns = ["member_id", "scored", "unscored_reason", "stage", "action_id", "control_group"]
    table = mf.read_parts(out, manifest, columns, optional=EXPECTED)
    bad = table.loc[~table["scored"], ["member_id", "unscored_reason"]]
    bad.rename(columns={"unscored_reason": "reason"}).to_parquet(out / UNSCORABLE, index=False)
    manifest.counts = {
        "members": len(table),
        "scored": int(table["scored"].sum()),
        "unscorable": len(bad),
        "control_group": int(table["control_group"].sum()),
    }
    manifest.outputs = {
        "parts": sorted(p.file for p in manifest.parts if p.rows),
        "unscorable": UNSCORABLE,
        mf.UNSCORABLE_SHA256: mf.sha256(out / UNSCORABLE),
        "stages": _counts(table["stage"]),
        "actions": _counts(table["action_id"]),
        "expected": expected_totals(table),
    }
    manifest.parts.sort(key=lambda p: p.file)
    manifest.status = mf.COMPLETE
    mf.write(out, manifest)


def expected_totals(table: pd.DataFrame) -> dict[str, float | None]:
    """Sum over the members of each EXPECTED column (orders, spend and CLV, currency); None
    for a column absent or empty (a spend model without expected values)."""
    totals: dict[str, float | None] = {}
    for name in EXPECTED:
        values = table[name].dropna() if name in table.columns else pd.Series(dtype=float)
        totals[name] = float(values.sum()) if len(values) else None
    return totals


def _counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.value_counts().sort_index().items()}


def _report(settings: Settings, out: Path) -> Path:
    from pipelines.batch import report

    return report.write(settings, out)


def _summary(
    out: Path,
    manifest: mf.Manifest,
    seconds: float,
    *,
    already: bool = False,
    skipped: int = 0,
    report: Path | None = None,
) -> Summary:
    counts = manifest.counts
    return Summary(
        out=out,
        as_of=date.fromisoformat(manifest.as_of),
        members=counts["members"],
        scored=counts["scored"],
        unscorable=counts["unscorable"],
        parts=len(manifest.parts),
        skipped=skipped,
        seconds=seconds,
        already_complete=already,
        actions=dict(manifest.outputs.get("actions", {})),
        report=report or _existing_report(out),
        expected=dict(manifest.outputs.get("expected", {})),
        models=dict(manifest.models),
        not_served=dict(manifest.not_served),
    )


def _existing_report(out: Path) -> Path | None:
    from pipelines.batch.report import REPORT

    return out / REPORT if (out / REPORT).is_file() else None
