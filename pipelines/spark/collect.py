"""Bringing a Spark frame's rows to the driver, in order and one partition at a time.

Executors serialise each Arrow batch of a partition to Arrow IPC bytes; the driver pulls the
partitions one after another (`toLocalIterator`) and writes them to a single Parquet file. Only
the driver writes, so outputs land where the local engine puts them whatever the cluster's
storage, and driver memory holds about one partition.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

IPC_COLUMN = "ipc"
ROW_GROUP_ROWS = 250_000


def _to_ipc(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Each Arrow batch as one row of IPC stream bytes (runs on the executors)."""
    for batch in batches:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        yield pa.RecordBatch.from_pydict({IPC_COLUMN: [sink.getvalue()]})


def arrow_batches(frame: DataFrame) -> Iterator[pa.RecordBatch]:
    """The rows of `frame` as Arrow batches, in the frame's order (partition by partition)."""
    packed = frame.mapInArrow(_to_ipc, f"{IPC_COLUMN} binary")
    for row in packed.toLocalIterator(prefetchPartitions=True):
        yield from pa.ipc.open_stream(row[IPC_COLUMN])


def write_parquet(frame: DataFrame, path: Path, schema: pa.Schema) -> int:
    """Write `frame` in its order to one Parquet file with `schema`, atomically (the file is
    replaced whole); returns the rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    rows, pending = 0, []
    with pq.ParquetWriter(partial, schema) as writer:
        for batch in arrow_batches(frame):
            pending.append(pa.Table.from_batches([batch]).cast(schema))
            if sum(len(t) for t in pending) >= ROW_GROUP_ROWS:
                rows += _flush(writer, pending)
        rows += _flush(writer, pending)
    os.replace(partial, path)
    return rows


def _flush(writer: pq.ParquetWriter, pending: list[pa.Table]) -> int:
    if not pending:
        return 0
    table = pa.concat_tables(pending)
    writer.write_table(table)
    pending.clear()
    return len(table)
