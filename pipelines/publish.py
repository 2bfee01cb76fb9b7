"""Publish score cards: every member's score API answer, computed in advance and written to the
online store beside the features (see `serving.scoring.cards` for when the API serves them).

Run it after `features materialize` and after promoting champions:
`memberscore publish-scores`. It reads the features from the online store exactly as the API
does, scores them with the champions with the same code (`serving.scoring.score.score`, reason codes
included), and writes per member the card, the `card_key` it was computed under and the scores
the metrics observe, timestamped with the features' cutoff. A Parquet copy goes to
`<data>/published/scores.parquet`. Until it has run for the current champions and features,
the API scores live: a stale card is never served.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from memberscore.contract import TIMESTAMP_DTYPE
from memberscore.errors import DataNotFound
from memberscore.settings import Settings
from serving.scoring.cards import card_key, observed_scores
from serving.scoring.context import ScoringContext
from serving.scoring.score import score

CHUNK_MEMBERS = 2_000
COLUMNS = ("member_id", "as_of", "card", "models", "observed")


@dataclass(frozen=True)
class PublishReport:
    """What one publish wrote."""

    members: int
    published: int
    key: str
    models: dict[str, str]
    seconds: float

    def describe(self) -> str:
        """One line for the CLI."""
        rate = self.published / self.seconds if self.seconds else float("inf")
        versions = ", ".join(f"{name} v{v}" for name, v in sorted(self.models.items()))
        return (
            f"published {self.published:,} score cards of {self.members:,} members in "
            f"{self.seconds:.1f} s ({rate:,.0f} cards/s) for {versions} (key {self.key[:12]})"
        )


def cards_frame(member_ids: list[str], context: ScoringContext) -> pd.DataFrame:
    """The published rows (COLUMNS) of the members among `member_ids` that the store knows:
    their cards as a live request computes them, under the key of the context's bundle and
    settings."""
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


def run(
    settings: Settings,
    chunk_members: int = CHUNK_MEMBERS,
    progress: Callable[[str], None] = print,
) -> PublishReport:
    """Publish the cards of every member in the feature snapshots with the current champions
    (members the online store does not hold are skipped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from features.store import apply_published, published_path, write_published
    from serving.online.feast_reader import FeastReader
    from serving.scoring.adapters import open_domain
    from serving.scoring.registry import RegistrySource

    started = time.perf_counter()
    bundle = RegistrySource(settings).load()
    context = ScoringContext(
        bundle=bundle, domain=open_domain(settings), reader=FeastReader(settings), settings=settings
    )
    ids = snapshot_members(settings)
    store = apply_published(settings)
    path = published_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    chunks = [ids[start : start + chunk_members] for start in range(0, len(ids), chunk_members)]

    def cards_of(chunk: list[str]) -> pd.DataFrame:
        return cards_frame(chunk, context)

    published, writer = 0, None
    # Chunks are scored on `batch_workers` threads (SHAP releases the GIL) and written here,
    # one at a time and in order.
    with ThreadPoolExecutor(settings.batch_workers) as pool:
        try:
            for frame in pool.map(cards_of, chunks):
                if frame.empty:
                    continue
                write_published(store, settings, frame)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(partial, table.schema)
                writer.write_table(table)
                published += len(frame)
                elapsed = time.perf_counter() - started
                progress(f"  {published:,} / {len(ids):,} cards ({elapsed:.0f} s)")
        finally:
            if writer is not None:
                writer.close()
    if writer is not None:
        os.replace(partial, path)
    key, seconds = card_key(bundle, settings), time.perf_counter() - started
    return PublishReport(len(ids), published, key, bundle.fingerprint, seconds)


def snapshot_members(settings: Settings) -> list[str]:
    """Ids of every member in the feature snapshots (the members the online store serves)."""
    import duckdb

    from features.store import JOIN_KEY, require_snapshots, snapshot_glob

    require_snapshots(settings)
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT DISTINCT {JOIN_KEY} FROM read_parquet(?) ORDER BY {JOIN_KEY}",
            [snapshot_glob(settings)],
        ).fetchall()
    if not rows:
        raise DataNotFound("the feature snapshots hold no members")
    return [str(row[0]) for row in rows]
