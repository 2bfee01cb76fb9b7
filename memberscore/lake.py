"""The local lake: canonical tables as Parquet, partitioned by month of their time column.

Layout: `<lake>/<table>/month=YYYY-MM/part-<run>-<chunk>.parquet`, plus `<lake>/_dataset.json`
holding dataset metadata (the currency). Every other module reads the lake through here or
through `glob()` in DuckDB, never by building paths itself.

A run that must appear whole or not at all (an ingest) stages its parts under
`<lake>/_pending/<run>/<table>/`, where no reader looks, and `publish`es them (one rename per
file) once its log line is written; `discard` drops them. `writing()` serialises such runs.
`erase` rewrites the partition files holding an erased member's rows (under `writing()` too).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from memberscore.contract import Table, empty
from memberscore.erasures import without_members
from memberscore.errors import ContractError, DataNotFound

METADATA_FILE = "_dataset.json"
PENDING_DIR = "_pending"
LOCK_FILE = "_writing.lock"
logger = logging.getLogger(__name__)


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
    The rows are visible at once: runs that must land whole use `stage` and `publish` instead.
    """
    _write_months(frame, spec, lake, part)
    return len(frame)


def stage(frame: pd.DataFrame, spec: Table, lake: Path, run_id: str, part: str) -> list[str]:
    """Write canonical rows under `<lake>/_pending/<run id>/`, invisible to readers until
    `publish`; returns the paths (relative to the lake) the files will have once published."""
    return _write_months(frame, spec, _pending(lake, run_id), part)


def publish(lake: Path, run_id: str, spec: Table) -> None:
    """Move the parts `stage`d by `run_id` for `spec` into the table. Safe to repeat after a
    crash half way: files already moved are simply no longer pending."""
    staged = _pending(lake, run_id) / spec.name
    for file in sorted(staged.glob("month=*/*.parquet")):
        target = lake / file.relative_to(_pending(lake, run_id))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
    discard(lake, run_id, spec)


def discard(lake: Path, run_id: str, spec: Table) -> None:
    """Delete the parts `stage`d by `run_id` for `spec` (nothing of them was published)."""
    shutil.rmtree(_pending(lake, run_id) / spec.name, ignore_errors=True)
    try:
        _pending(lake, run_id).rmdir()  # the run's folder goes once its last table is gone
        (lake / PENDING_DIR).rmdir()
    except OSError:
        pass  # other tables or runs are still pending


def pending(lake: Path) -> list[tuple[str, str]]:
    """(run id, table name) of every staged run that was neither published nor discarded."""
    root = lake / PENDING_DIR
    if not root.is_dir():
        return []
    return sorted((run.name, table.name) for run in root.iterdir() for table in run.iterdir())


@contextmanager
def writing(lake: Path) -> Iterator[None]:
    """Hold the lake's writer lock (released by the OS even if the process is killed)."""
    lake.mkdir(parents=True, exist_ok=True)
    with (lake / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another ingest into %s to finish", lake)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def erase(lake: Path, spec: Table, member_ids: Collection[str]) -> Counter:
    """Rewrite the partition files of `spec` that hold rows of `member_ids` without them, each
    atomically (a new file renamed over the old one; a file left empty is deleted); rows removed
    per member id. Call it with `writing(lake)` held, after `pending` runs are settled."""
    removed: Counter = Counter()
    if "member_id" not in spec.names:
        return removed
    for file in sorted(table_dir(lake, spec).glob("month=*/*.parquet")):
        removed += without_members(file, member_ids, drop_empty=True)
    return removed


def _pending(lake: Path, run_id: str) -> Path:
    return lake / PENDING_DIR / run_id


def _write_months(frame: pd.DataFrame, spec: Table, root: Path, part: str) -> list[str]:
    """One Parquet file per month of `frame` under `root`; their paths relative to `root`."""
    if frame.empty:
        return []
    stamps = frame[spec.time_column].dt
    months = stamps.year * 100 + stamps.month  # strftime costs seconds per million rows
    written = []
    for key, rows in frame.groupby(months, sort=True):
        relative = (
            Path(spec.name) / f"month={key // 100:04d}-{key % 100:02d}" / f"part-{part}.parquet"
        )
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        arrow = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
        pq.write_table(arrow, root / relative)
        written.append(str(relative))
    return written


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
