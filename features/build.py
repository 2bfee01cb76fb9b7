"""Job: compute per-member feature snapshots from the lake and store them as Parquet.

A cutoff DATE means 00:00 UTC of that day: a snapshot holds the features of every member as of
that instant (computed from data strictly before it by `features.snapshot.compute_snapshot`).
Each cutoff is one file (`features.store.snapshot_path`); rebuilding a cutoff replaces its file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import PANDAS_DTYPES
from features.store import AS_OF, JOIN_KEY, snapshot_path
from memberscore import lake
from memberscore.contract import CONSENTS, MEMBERS, ORDERS, TABLES, TIMESTAMP_DTYPE, empty
from memberscore.errors import ContractError
from memberscore.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from features.catalog import Feature


def parse_every(text: str) -> int:
    """Days between cutoffs from '7d', '2w' or '7'."""
    match = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"--every must look like 7d or 2w, got {text!r}")
    return int(match.group(1)) * (7 if match.group(2) == "w" else 1)


def cutoffs(as_of: date, start: date | None = None, every_days: int = 7) -> list[date]:
    """`as_of` alone, or every `every_days` from `start` up to and including `as_of`."""
    if start is None:
        return [as_of]
    if start > as_of:
        raise ValueError(f"--from {start} is after --as-of {as_of}")
    count = (as_of - start).days // every_days + 1
    return [start + timedelta(days=every_days * i) for i in range(count)]


def open_lake(settings: Settings) -> duckdb.DuckDBPyConnection:
    """DuckDB with one view per canonical table (and the consent changes) over the lake;
    absent tables are empty."""
    import duckdb

    lake.require(settings.lake_dir, MEMBERS)
    lake.require(settings.lake_dir, ORDERS)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, spec in (TABLES | {CONSENTS.name: CONSENTS}).items():
        if lake.has_table(settings.lake_dir, spec):
            path = lake.glob(settings.lake_dir, spec).replace("'", "''")
            columns = ", ".join(f'"{c}"' for c in spec.names)  # not the month= partition key
            con.execute(
                f"CREATE VIEW {name} AS SELECT {columns} FROM "
                f"read_parquet('{path}', hive_partitioning = false, union_by_name = true)"
            )
        else:
            con.register(f"_{name}_empty", empty(spec))
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")
    return con


def conform(frame: pd.DataFrame, families: Mapping[str, Sequence[Feature]]) -> pd.DataFrame:
    """Snapshot columns in catalog order with catalog dtypes, so every file has one schema."""
    features = [f for family in families.values() for f in family]
    wanted = [JOIN_KEY, AS_OF, *(f.name for f in features)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ContractError(f"snapshot lacks column(s) {', '.join(missing)} of the catalog")
    out = frame[wanted].copy()
    out[JOIN_KEY] = out[JOIN_KEY].astype("string")
    out[AS_OF] = pd.to_datetime(out[AS_OF], utc=True).astype(TIMESTAMP_DTYPE)
    for feature in features:
        out[feature.name] = out[feature.name].astype(PANDAS_DTYPES[feature.dtype])
    if out[JOIN_KEY].isna().any() or out[JOIN_KEY].duplicated().any():
        raise ContractError("snapshot member_id values must be present and unique")
    return out.sort_values(JOIN_KEY, ignore_index=True)


def write_snapshot(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to `path` atomically: a rebuilt cutoff replaces the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial)
    os.replace(partial, path)


def run(
    settings: Settings,
    cutoff_dates: Sequence[date],
    *,
    echo: Callable[[str], None] = print,
) -> list[Path]:
    """Compute and store the snapshot of every cutoff; returns the files written."""
    written = []
    with open_lake(settings) as con:
        from features.catalog import FAMILIES
        from features.snapshot import compute_snapshot

        for day in cutoff_dates:
            started = perf_counter()
            as_of = pd.Timestamp(day, tz="UTC")
            raw = compute_snapshot(con, as_of, tier_thresholds=settings.tier_thresholds)
            frame = conform(raw, FAMILIES)
            path = snapshot_path(settings, day)
            write_snapshot(frame, path)
            written.append(path)
            echo(f"{day}: {len(frame):,} members -> {path} ({perf_counter() - started:.1f} s)")
    return written
