"""The local lake: canonical tables as Parquet, partitioned by month of their time column.

Layout: `<lake>/<table>/month=YYYY-MM/part-<run>-<chunk>.parquet`, plus `<lake>/_dataset.json`
holding dataset metadata (the currency). Every other module reads the lake through here or
through `glob()` in DuckDB, never by building paths itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from memberscore.contract import Table, empty
from memberscore.errors import ContractError, DataNotFound

METADATA_FILE = "_dataset.json"


def table_dir(lake: Path, spec: Table) -> Path:
    """Folder holding all partitions of `spec`."""
    return lake / spec.name


def glob(lake: Path, spec: Table) -> str:
    """A glob matching every Parquet file of `spec`, for DuckDB's `read_parquet`."""
    return str(table_dir(lake, spec) / "month=*" / "*.parquet")


def has_table(lake: Path, spec: Table) -> bool:
    """True when at least one partition file of `spec` exists."""
    return any(table_dir(lake, spec).glob("month=*/*.parquet"))


def write(frame: pd.DataFrame, spec: Table, lake: Path, part: str) -> int:
    """Append canonical rows to the lake, one file per month touched; returns rows written.

    `part` names the files (e.g. "<run id>-<chunk number>") so that reruns never overwrite.
    """
    if frame.empty:
        return 0
    stamps = frame[spec.time_column].dt
    months = stamps.year * 100 + stamps.month  # strftime costs seconds per million rows
    for key, rows in frame.groupby(months, sort=True):
        folder = table_dir(lake, spec) / f"month={key // 100:04d}-{key % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        arrow = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
        pq.write_table(arrow, folder / f"part-{part}.parquet")
    return len(frame)


def read(lake: Path, spec: Table, columns: list[str] | None = None) -> pd.DataFrame:
    """The whole table as canonical pandas dtypes; an empty frame if nothing is stored yet."""
    if not has_table(lake, spec):
        frame = empty(spec)
        return frame if columns is None else frame[columns]
    dataset = ds.dataset(table_dir(lake, spec), format="parquet", partitioning="hive")
    wanted = columns or spec.names
    frame = dataset.to_table(columns=wanted).to_pandas()
    for name, dtype in empty(spec)[wanted].dtypes.items():
        frame[name] = frame[name].astype(dtype)
    return frame


def keys(lake: Path, spec: Table) -> pd.Index:
    """Every primary key already stored for `spec` (loaded in memory: ~60 bytes a key)."""
    return pd.Index(read(lake, spec, columns=[spec.key])[spec.key].astype(str), dtype=object)


def require(lake: Path, spec: Table) -> None:
    """Raise DataNotFound with the next step if `spec` has nothing stored."""
    if not has_table(lake, spec):
        raise DataNotFound(
            f"the lake at {lake} has no {spec.name} yet; run `memberscore ingest` "
            "(or `memberscore simulate` then `memberscore ingest`) first"
        )


def dataset_currency(lake: Path) -> str | None:
    """The currency recorded for the data in this lake, or None for a new lake."""
    path = lake / METADATA_FILE
    return json.loads(path.read_text())["currency"] if path.exists() else None


def record_currency(lake: Path, currency: str) -> None:
    """Record the dataset currency, refusing a second, different one."""
    known = dataset_currency(lake)
    if known is not None and known != currency:
        raise ContractError(
            f"the lake at {lake} holds amounts in {known}, not {currency}; one currency per "
            "dataset: convert the input or ingest it into another data dir (MEMBERSCORE_DATA_DIR)"
        )
    lake.mkdir(parents=True, exist_ok=True)
    (lake / METADATA_FILE).write_text(json.dumps({"currency": currency}, indent=2) + "\n")
