"""Reading feature snapshot files, checked against `features.schema` where they enter a job.

I/O only: jobs that predict or train on a snapshot read it through `read_snapshot`, or check the
file with `check_snapshot_file` (in chunks, memory bounded) before streaming it themselves.
A file that does not fit raises ContractError naming the file, the column, the check, a failing
member and the rebuild command; a missing file raises DataNotFound.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.schema import Nulls, check_frame
from features.store import JOIN_KEY, SNAPSHOT_PREFIX, snapshot_files, snapshot_path
from memberscore.errors import DataNotFound
from memberscore.settings import Settings

CHECK_ROWS = 200_000


def read_snapshot(
    settings: Settings, day: date, columns: Sequence[str] | None = None, *, nulls: Nulls = "catalog"
) -> pd.DataFrame:
    """The snapshot of cutoff `day` (features as of 00:00 UTC, from data strictly before it),
    every column or only `columns`, after checking it (`features.schema.check_frame`: the
    columns read must all be there). The frame is returned as stored (no dtype coercion)."""
    path = require_file(settings, day)
    present = set(pq.read_schema(path).names)
    wanted = None if columns is None else [c for c in columns if c in present]
    frame = pd.read_parquet(path, columns=wanted)
    check_frame(frame, str(path), required=columns, cutoff=cutoff_of(day), nulls=nulls)
    return frame


def check_snapshot_file(
    path: Path,
    day: date,
    *,
    required: Sequence[str] | None = None,
    nulls: Nulls = "catalog",
    chunk_rows: int = CHECK_ROWS,
) -> None:
    """Check the snapshot file `path` of cutoff `day` without holding it whole: its Parquet
    schema (as an empty frame), its member ids across the file, then every `chunk_rows` rows.
    `required` columns must be present (default: every catalog column); others are checked
    when present."""
    file = pq.ParquetFile(path)
    source, cutoff = str(path), cutoff_of(day)

    def check(frame: pd.DataFrame, wanted: Sequence[str] | None) -> None:
        check_frame(frame, source, required=wanted, cutoff=cutoff, nulls=nulls)

    check(file.schema_arrow.empty_table().to_pandas(), required)
    if JOIN_KEY in file.schema_arrow.names:
        check(file.read(columns=[JOIN_KEY]).to_pandas(), [JOIN_KEY])
    for batch in file.iter_batches(chunk_rows):
        check(batch.to_pandas(), required)


def check_snapshots(settings: Settings, *, chunk_rows: int = CHECK_ROWS) -> list[Path]:
    """Check every snapshot file (all catalog columns, nulls as the catalog allows); returns
    the files checked, oldest cutoff first."""
    files = snapshot_files(settings)
    for path in files:
        check_snapshot_file(path, snapshot_day(path), chunk_rows=chunk_rows)
    return files


def require_file(settings: Settings, day: date) -> Path:
    """The snapshot file of cutoff `day`, or DataNotFound with the command that builds it."""
    path = snapshot_path(settings, day)
    if not path.is_file():
        raise DataNotFound(
            f"no feature snapshot for {day} at {path}; run "
            f"`memberscore features build --as-of {day}` first"
        )
    return path


def snapshot_day(path: Path) -> date:
    """The cutoff day of a snapshot file, from its name (`features.store.snapshot_path`)."""
    return date.fromisoformat(path.stem.removeprefix(SNAPSHOT_PREFIX))


def cutoff_of(day: date) -> pd.Timestamp:
    """The cutoff instant of `day`: 00:00 UTC."""
    return pd.Timestamp(day, tz="UTC")
