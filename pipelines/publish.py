"""Publish score cards: every member's score API answer computed in advance, written to the online
store together with the member's features (see `serving.scoring.cards` for when the API serves
them). `memberscore publish-scores` runs it after a new snapshot or a promotion.

One pass over the latest snapshot of every member (`features.store.latest_batches`, in member id
order): each part of `chunk_members` members is scored for the whole part at once
(`serving.scoring.cards.card_frame`: the batch scorer's core, the exact answers of a live
request) and written to the online store in one bulk write holding the member's feature views
and its card (`features.store.write_online`), so the store never holds a card beside features
of another snapshot. Parts run in `settings.batch_workers` worker processes, each with its own
store and champions (in this process when one worker or one part is left).

Resumable like `batch-score`: `<data>/published/run/manifest.json` records the inputs (snapshot
checksums, the card key of the champions and settings, the online store, the part size) and
every finished part with the checksum of its Parquet copy; a rerun with the same inputs skips
the parts recorded and intact and redoes the rest. When every part is done the parts are joined
into `<data>/published/scores.parquet` (the cards' offline copy) and removed; a rerun of a
complete run only checks that copy. Until the run has finished for the current champions and
features, members whose card is not current are scored live: a stale card is never served.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from memberscore.contract import TIMESTAMP_DTYPE
from memberscore.errors import ContractError, DataNotFound, ModelNotReady
from memberscore.settings import Settings
from pipelines.batch import manifest as mf
from serving.scoring.cards import COLUMNS, card_frame, card_key, observed_scores
from serving.scoring.context import ScoringContext
from serving.scoring.score import score

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

    from serving.scoring.adapters import LibraryDomain
    from serving.scoring.bundle import ModelBundle

CHUNK_MEMBERS = 50_000
RUN_DIR = "run"  # under the folder of the cards' Parquet copy
ENGINE = "publish"
SCORES_SHA256 = "scores_sha256"  # key in the manifest's outputs: checksum of the Parquet copy


@dataclass(frozen=True)
class PublishReport:
    """What one publish wrote: members and cards, parts (`skipped`: finished by an earlier,
    interrupted run), the card key and model versions, seconds."""

    members: int
    published: int
    key: str
    models: dict[str, str]
    seconds: float
    parts: int = 0
    skipped: int = 0
    already_complete: bool = False

    def describe(self) -> str:
        """One line for the CLI."""
        versions = ", ".join(f"{name} v{v}" for name, v in sorted(self.models.items()))
        if self.already_complete:
            return (
                f"score cards of {self.members:,} members already published for {versions} "
                f"(key {self.key[:12]}; copy verified); use --force to publish again"
            )
        rate = self.published / self.seconds if self.seconds else float("inf")
        return (
            f"published features and score cards of {self.published:,} members in "
            f"{self.parts} parts ({self.skipped} resumed) in {self.seconds:.1f} s "
            f"({rate:,.0f} members/s) for {versions} (key {self.key[:12]})"
        )


def cards_frame(member_ids: list[str], context: ScoringContext) -> pd.DataFrame:
    """The published rows (COLUMNS) of the members among `member_ids` that the context's
    store knows, as a live request computes them (`serving.scoring.score.score` on features
    read from the store): the reference `card_frame` equals, and a way to publish a few."""
    features = context.read(member_ids)
    cards = score(member_ids, features, context.bundle, context.domain, context.settings).scores
    key = card_key(context.bundle, context.settings)
    frame = pd.DataFrame(
        {
            "member_id": [card.member_id for card in cards],
            "as_of": [card.features_as_of for card in cards],
            "card": [card.model_dump_json() for card in cards],
            "models": key,
            "observed": [json.dumps(observed_scores(card)) for card in cards],
        },
        columns=list(COLUMNS),
    )
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True).astype(TIMESTAMP_DTYPE)
    return frame


@dataclass(frozen=True)
class _Job:
    """What every part needs: the open store, the feature views and the cards' view, the
    champions, the domain rules, the settings and the run folder."""

    store: FeatureStore
    views: list[FeatureView]
    bundle: ModelBundle
    domain: LibraryDomain
    settings: Settings
    folder: Path
    write_lock: Any  # one writer at a time for SQLite; Redis takes them in parallel

    def part(self, name: str, batch: pd.DataFrame) -> mf.PartRecord:
        """Score one part, write its features and cards online in one bulk write, then its
        Parquet copy (atomically) and describe it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from features.store import reachable, write_online

        cards = card_frame(batch, self.bundle, self.domain, self.settings)
        rows = pd.concat([batch, cards[["card", "models", "observed"]]], axis=1)
        with self.write_lock, reachable(self.settings):
            write_online(self.store, self.views, rows)
        path = self.folder / name
        temp = path.with_suffix(".parquet.tmp")
        pq.write_table(pa.Table.from_pandas(cards, preserve_index=False), temp)
        os.replace(temp, path)
        return mf.PartRecord(name, len(cards), len(cards), 0, mf.sha256(path))


def run(
    settings: Settings,
    chunk_members: int = CHUNK_MEMBERS,
    progress: Callable[[str], None] = print,
    *,
    force: bool = False,
    bundle: ModelBundle | None = None,
) -> PublishReport:
    """Write the latest features and the card of every member in the feature snapshots with
    the current champions (see the module docstring); `bundle` spares loading them when
    `settings.batch_workers` is 1 (worker processes load their own); `force` starts afresh."""
    from features.store import apply_published, published_path
    from serving.scoring.adapters import open_domain
    from serving.scoring.registry import RegistrySource

    started = time.perf_counter()
    bundle = bundle or RegistrySource(settings).load()
    store = apply_published(settings)
    views = written_views(store)
    folder = run_folder(settings)
    key = card_key(bundle, settings)
    inputs = run_inputs(settings, store, views, key, chunk_members)
    copy = published_path(settings)
    total = _parts_total(settings, chunk_members)
    manifest, done = _open(folder, copy, inputs, force, total)
    if manifest.status == mf.COMPLETE and not _still_served(settings, copy, key):
        manifest, done = _open(folder, copy, inputs, True, total)  # the store lost the cards
    if manifest.status == mf.COMPLETE:
        members = manifest.counts["members"]
        return PublishReport(members, members, key, bundle.fingerprint, 0.0, already_complete=True)
    todo = (
        (name, batch) for name, batch in _named_batches(settings, chunk_members) if name not in done
    )
    sqlite = store.config.online_store.type == "sqlite"
    workers = min(settings.batch_workers, manifest.parts_total - len(done))
    if workers > 1:
        records = _in_processes(settings, workers, bundle.fingerprint, sqlite, todo)
    else:
        lock = threading.Lock() if sqlite else nullcontext()
        job = _Job(store, views, bundle, open_domain(settings), settings, folder, lock)
        records = (job.part(name, batch) for name, batch in todo)
    published = sum(p.rows for p in manifest.parts)
    for record in records:
        manifest.parts.append(record)
        mf.write(folder, manifest)
        published += record.rows
        progress(
            f"  part {len(manifest.parts)}/{manifest.parts_total}: {published:,} members "
            f"({time.perf_counter() - started:.0f} s)"
        )
    members = _finish(folder, copy, manifest)
    return PublishReport(
        members,
        members,
        key,
        bundle.fingerprint,
        time.perf_counter() - started,
        parts=len(manifest.parts),
        skipped=len(done),
    )


def written_views(store: FeatureStore) -> list[Any]:
    """The feature views a publish writes: every applied one, then the cards' view last.
    DataNotFound when the cards' view is not registered."""
    from features.store import applied_views, published_view

    cards_view = published_view(store)
    if cards_view is None:
        raise DataNotFound("the published scores' view is not registered; run it again")
    return [*applied_views(store), cards_view]


def run_folder(settings: Settings) -> Path:
    """The folder of the publish run in progress (its manifest and parts)."""
    from features.store import published_path

    return published_path(settings).parent / RUN_DIR


def run_inputs(
    settings: Settings,
    store: FeatureStore,
    views: list[FeatureView],
    key: str,
    chunk_members: int,
) -> dict[str, Any]:
    """Everything that decides what a run writes (hashed into the manifest's run key): the
    snapshot files and their checksums, the card key, the online store and its views, the
    part size."""
    import hashlib

    from features.store import snapshot_files

    online = store.config.online_store
    target = getattr(online, "connection_string", None) or getattr(online, "path", "")
    return {
        "snapshots": {path.name: mf.sha256(path) for path in snapshot_files(settings)},
        "card_key": key,
        "online_store": {
            "type": online.type,
            "project": store.project,
            "target_sha256": hashlib.sha256(str(target).encode()).hexdigest()[:16],
        },
        "views": {view.name: sorted(f.name for f in view.features) for view in views},
        "chunk_members": chunk_members,
    }


def _open(
    folder: Path, copy: Path, inputs: dict[str, Any], force: bool, total: int
) -> tuple[mf.Manifest, dict[str, mf.PartRecord]]:
    """The manifest to continue (same inputs, not forced) and its intact parts, or a fresh
    one in a clean folder. A complete run stays complete while its Parquet copy `copy` has
    the recorded checksum."""
    key = mf.run_key(inputs)
    old = mf.read(folder) if folder.is_dir() else None
    if old is not None and not force and old.run_key == key:
        if old.status != mf.COMPLETE:
            damaged = old.damage(folder)
            old.parts = [p for p in old.parts if p.file not in damaged]
            return old, {p.file: p for p in old.parts}
        if copy.is_file() and mf.sha256(copy) == old.outputs.get(SCORES_SHA256):
            return old, {}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    manifest = mf.Manifest(key, "", ENGINE, inputs, total)
    mf.write(folder, manifest)
    return manifest, {}


def _still_served(settings: Settings, copy: Path, key: str) -> bool:
    """True when the online store still serves the cards of the first and last member of the
    finished run's copy as current (a flushed or replaced store does not)."""
    import pyarrow.parquet as pq

    from serving.online.feast_reader import FeastReader

    ids = pq.read_table(copy, columns=["member_id"])["member_id"]
    ends = [str(ids[0]), str(ids[-1])] if len(ids) else []
    cards = FeastReader(settings).published(ends)
    return all(m in cards and cards[m].current(key) for m in ends)


def _parts_total(settings: Settings, chunk_members: int) -> int:
    """Parts of the coming run: the distinct members of the snapshots over `chunk_members`."""
    import duckdb

    from features.store import JOIN_KEY, require_snapshots, snapshot_glob

    require_snapshots(settings)
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT count(DISTINCT {JOIN_KEY}) FROM read_parquet(?)", [snapshot_glob(settings)]
        ).fetchone()
    members = int(row[0]) if row else 0
    if members == 0:
        raise DataNotFound("the feature snapshots hold no members")
    return -(-members // chunk_members)


def _named_batches(settings: Settings, chunk_members: int) -> Iterator[tuple[str, pd.DataFrame]]:
    from features.store import latest_batches

    for number, batch in enumerate(latest_batches(settings, chunk_members)):
        yield f"part-{number:05d}.parquet", batch


_WORKER: list[_Job] = []  # the job of a worker process, set by `_start_worker`


def _in_processes(
    settings: Settings,
    workers: int,
    fingerprint: dict[str, str],
    sqlite: bool,
    todo: Iterator[tuple[str, pd.DataFrame]],
) -> Iterator[mf.PartRecord]:
    """The parts of `todo` done in `workers` worker processes (scoring and the
    writers' encoding are Python as much as LightGBM, so threads would share one core), at
    most one part per worker plus one waiting in flight (memory stays bounded by the part size,
    and no worker waits for the next part to be read); records in completion order. The
    workers start (imports, champions) while the first part is read. Each worker loads the
    champions itself and refuses other versions than `fingerprint`; SQLite writes take turns
    (one writer at a time)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no forked OpenMP or Feast state
    lock = context.Lock() if sqlite else None
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings, fingerprint, lock),
    ) as pool:
        for _ in range(workers):  # a worker that cannot start breaks the pool: parts raise
            pool.submit(_ready)
        running: set[Future[mf.PartRecord]] = set()
        for name, batch in todo:
            if len(running) > workers:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in finished)
            running.add(pool.submit(_work, name, batch))
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in finished)


def _start_worker(settings: Settings, fingerprint: dict[str, str], lock: Any) -> None:
    """Open the store, load the champions (the versions `fingerprint` names) and the domain
    rules of one worker process."""
    from features.store import feature_store
    from serving.scoring.adapters import open_domain
    from serving.scoring.registry import RegistrySource

    bundle = RegistrySource(settings).load()
    if bundle.fingerprint != fingerprint:
        raise ModelNotReady(
            f"the champions changed while publishing ({fingerprint} when it started, now "
            f"{bundle.fingerprint}); run `memberscore publish-scores` again"
        )
    store = feature_store(settings)
    views = written_views(store)
    folder = run_folder(settings)
    domain = open_domain(settings)
    _WORKER.append(_Job(store, views, bundle, domain, settings, folder, lock or nullcontext()))


def _ready() -> None:
    """Nothing: submitted once per worker so that the workers start at once."""


def _work(name: str, batch: pd.DataFrame) -> mf.PartRecord:
    """One part, in a worker process."""
    return _WORKER[0].part(name, batch)


def _finish(folder: Path, copy: Path, manifest: mf.Manifest) -> int:
    """Join the parts into the cards' Parquet copy `copy`, record its checksum, mark the run
    complete and remove the parts; returns the members published."""
    import pyarrow.parquet as pq

    if len(manifest.parts) != manifest.parts_total:
        raise ContractError(
            f"the publish run in {folder} holds {len(manifest.parts)} of "
            f"{manifest.parts_total} parts; run `memberscore publish-scores` again to finish it"
        )
    names = sorted(p.file for p in manifest.parts if p.rows)
    partial = copy.with_suffix(".partial")
    writer = None
    try:
        for name in names:
            table = pq.read_table(folder / name)
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    os.replace(partial, copy)
    manifest.parts.sort(key=lambda p: p.file)
    members = sum(p.rows for p in manifest.parts)
    manifest.counts = {"members": members}
    manifest.outputs = {"scores": copy.name, SCORES_SHA256: mf.sha256(copy)}
    manifest.status = mf.COMPLETE
    mf.write(folder, manifest)
    for name in names:  # the copy holds them now; erasure edits the copy
        (folder / name).unlink(missing_ok=True)
    return members
