"""Batch scoring on Spark (`memberscore batch-score --engine spark`).

The batch job (`pipelines.batch.job`) keeps its manifest, parts, resume and report; Spark only
computes the rows. The snapshot is read by Spark, split by range of `member_id` over the
cluster, and each batch of members runs the job's own scoring function (`score_chunk` with the
models, catalogue and contact log captured in it, shipped once per executor) in mapInPandas.
Every row carries the number of the part the local engine would put it in (chunks of
`settings.chunk_rows` snapshot rows, cut by member id since the snapshot is sorted), so the
driver writes the same part files as the local engine; parts finished by an earlier run are
not computed again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memberscore.contract import TIMESTAMP_DTYPE
from memberscore.settings import Settings
from pipelines.spark.collect import arrow_batches
from pipelines.spark.session import spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MEMBER_ID = "member_id"
PART = "_part"
SAMPLE_ROWS = 64
Score = Callable[[pd.DataFrame], pd.DataFrame]


def part_name(number: int) -> str:
    """The file name of part `number`, as the local engine names it."""
    return f"part-{number:05d}.parquet"


def part_bounds(snapshot: Path, chunk_rows: int) -> np.ndarray:
    """The first member id of every `chunk_rows`-row part of a member-sorted snapshot."""
    ids = pq.read_table(snapshot, columns=[MEMBER_ID])[MEMBER_ID].to_numpy(zero_copy_only=False)
    if len(ids) and not (ids[1:] > ids[:-1]).all():
        raise ValueError(f"{snapshot} is not sorted by unique {MEMBER_ID}")
    return np.asarray(ids[::chunk_rows], dtype=str)


def conform(frame: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    """`frame` with the pandas `dtypes` it had in its Parquet file (Spark and Arrow hand
    nullable integers back as floats, text as objects, UTC times as naive)."""
    out = {}
    for column, dtype in dtypes.items():
        values = frame[column]
        if str(dtype) == TIMESTAMP_DTYPE:
            values = pd.to_datetime(values, utc=True)
        out[column] = values.astype(dtype)
    return pd.DataFrame(out)


def part_scorer(
    score: Score, inputs: pd.Series, outputs: pd.Series, bounds: np.ndarray, todo: Sequence[int]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function: snapshot rows of the `todo` parts in, scored rows out, each
    with its part number (`PART`) first."""
    wanted = np.asarray(todo)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            frame = conform(batch, inputs)
            part = np.searchsorted(bounds, frame[MEMBER_ID].to_numpy(dtype=str), "right") - 1
            keep = np.isin(part, wanted)
            if keep.any():
                rows = conform(score(frame[keep].reset_index(drop=True)), outputs)
                rows.insert(0, PART, part[keep])
                yield rows

    return run


def scored_parts(
    settings: Settings,
    snapshot: Path,
    done: Collection[str],
    segments: Sequence[str],
    score: Score,
) -> Iterator[tuple[str, pd.DataFrame | None]]:
    """(part file name, its scored rows, or None when `segments` left no member in it) for
    every part of `snapshot` not in `done`, in part order."""
    bounds = part_bounds(snapshot, settings.chunk_rows)
    todo = [n for n in range(len(bounds)) if part_name(n) not in done]
    if not todo:
        return
    inputs = pq.read_schema(snapshot).empty_table().to_pandas().dtypes
    sample = next(pq.ParquetFile(snapshot).iter_batches(SAMPLE_ROWS)).to_pandas()
    outputs = score(sample).dtypes
    frame = _scored_frame(
        settings, snapshot, segments, part_scorer(score, inputs, outputs, bounds, todo), outputs
    )
    seen = yield from _by_part(frame, outputs)
    for number in todo:
        if number not in seen:
            yield part_name(number), None


def _scored_frame(
    settings: Settings,
    snapshot: Path,
    segments: Sequence[str],
    scorer: Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]],
    outputs: pd.Series,
) -> DataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    spark = spark_session(settings)
    rows = spark.read.parquet(str(snapshot.resolve()))
    if segments:
        rows = rows.where(F.col("segment").isin(list(segments)))
    rows = rows.repartitionByRange(settings.spark_shuffle_partitions, MEMBER_ID)
    empty = pd.DataFrame(
        {PART: pd.Series(dtype="int64")} | {c: pd.Series(dtype=d) for c, d in outputs.items()}
    )
    schema = from_arrow_schema(pa.Schema.from_pandas(empty, preserve_index=False))
    return rows.mapInPandas(scorer, schema)


def _by_part(
    frame: DataFrame, outputs: pd.Series
) -> Generator[tuple[str, pd.DataFrame | None], None, set[int]]:
    """Consecutive rows of one part gathered into one frame (rows arrive in member order);
    returns the part numbers seen."""
    seen: set[int] = set()
    current, pending = -1, list[pd.DataFrame]()
    for batch in arrow_batches(frame):
        rows = batch.to_pandas()
        for number, group in rows.groupby(PART, sort=False):
            if number != current and pending:
                yield part_name(current), _part_frame(pending, outputs)
                pending = []
            current = int(number)
            seen.add(current)
            pending.append(group)
    if pending:
        yield part_name(current), _part_frame(pending, outputs)
    return seen


def _part_frame(groups: list[pd.DataFrame], outputs: pd.Series) -> pd.DataFrame:
    return conform(pd.concat(groups, ignore_index=True).drop(columns=PART), outputs)
