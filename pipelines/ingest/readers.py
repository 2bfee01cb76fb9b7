"""Chunked readers of raw inputs: CSV, Parquet and PostgreSQL tables.

Each reader yields `Chunk`s of at most `chunk_rows` rows, so memory stays flat whatever the input
size. CSV cells stay text (empty cells are "", not NaN) so the contract validator sees exactly
what the file holds; Parquet and PostgreSQL keep their own types. `Chunk.first_row` is the 1-based
number of the chunk's first data row in the source (row 1 is the first row after a CSV header).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memberscore.errors import ContractError, DataNotFound, StoreUnavailable

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
_URL = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


@dataclass(frozen=True)
class Chunk:
    """Raw rows of one input slice and the source row number of the first of them."""

    frame: pd.DataFrame
    first_row: int


@dataclass(frozen=True)
class Source:
    """An opened input: a printable name (no password), its row count if known, its chunks."""

    name: str
    total_rows: int | None
    chunks: Iterator[Chunk]


def is_url(source: str) -> bool:
    """True when `source` is a PostgreSQL connection URL rather than a file path."""
    return bool(_URL.match(source))


def redact(url: str) -> str:
    """`url` with any password replaced by ***, for logs and reports."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_source(source: str, *, chunk_rows: int, pg_table: str | None = None) -> Source:
    """Open a CSV/Parquet path or a postgresql:// URL (with `pg_table`) for chunked reading."""
    if is_url(source):
        if not pg_table:
            raise ContractError(
                f"{redact(source)} is a database URL: name the table to read with --pg-table"
            )
        return Source(
            f"{redact(source)}#{pg_table}", None, postgres_chunks(source, pg_table, chunk_rows)
        )
    path = existing_file(source)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        total = pq.ParquetFile(path).metadata.num_rows
        return Source(str(path), total, parquet_chunks(path, chunk_rows))
    return Source(str(path), None, csv_chunks(path, chunk_rows))


def existing_file(source: str | Path) -> Path:
    """`source` as a Path, or a clear error if it is missing or of an unsupported kind."""
    path = Path(source)
    if not path.is_file():
        raise DataNotFound(f"{path} does not exist or is not a file; check the path")
    if path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise ContractError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
            "give a .csv or .parquet file, or a postgresql:// URL with --pg-table"
        )
    return path


def csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a CSV file read as text; nothing for an empty file, one empty chunk for a
    header-only file (so its columns are still checked)."""
    if path.stat().st_size == 0:
        return
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = pd.read_csv(
        path,
        sep=sep,
        dtype=str,
        keep_default_na=False,
        chunksize=chunk_rows,
        encoding="utf-8-sig",
    )
    first = 1
    with reader:
        for frame in reader:
            yield Chunk(frame.reset_index(drop=True), first)
            first += len(frame)


def parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a Parquet file; integer columns stay integers even with nulls."""
    file = pq.ParquetFile(path)
    if file.metadata.num_rows == 0:
        yield Chunk(file.schema_arrow.empty_table().to_pandas(), 1)
        return
    first = 1
    for batch in file.iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas(types_mapper=_nullable_integers)
        yield Chunk(frame, first)
        first += len(frame)


def _nullable_integers(arrow_type: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    # without this an integer id column with one null arrives as float and fails "must be text"
    return pd.Int64Dtype() if pa.types.is_integer(arrow_type) else None


def postgres_chunks(url: str, table: str, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a PostgreSQL table through a server-side (named) cursor."""
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(_libpq_url(url), connect_timeout=5)
    except psycopg.OperationalError as error:
        raise StoreUnavailable(
            f"cannot connect to {redact(url)} ({str(error).strip().splitlines()[0]}); "
            "check that the server runs and the URL (host, port, user, database) is right"
        ) from None
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*table.split(".")))
    with conn, conn.cursor(name="memberscore_ingest") as cursor:
        try:
            cursor.execute(query)
            rows = cursor.fetchmany(chunk_rows)
        except psycopg.errors.UndefinedTable:
            raise DataNotFound(f"table {table!r} not found in {redact(url)}") from None
        columns = [d.name for d in cursor.description or []]
        first = 1
        while True:  # the first chunk is yielded even when empty, so columns are checked
            yield Chunk(pd.DataFrame(rows, columns=columns, dtype=object), first)
            first += len(rows)
            rows = cursor.fetchmany(chunk_rows)
            if not rows:
                return


def _libpq_url(url: str) -> str:
    # accept SQLAlchemy-style URLs (postgresql+psycopg://) as well as plain libpq ones
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)
