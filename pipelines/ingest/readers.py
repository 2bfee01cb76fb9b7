"""Chunked readers of raw inputs: CSV, Parquet and PostgreSQL tables.

Each reader yields `Chunk`s of at most `chunk_rows` rows, so memory stays flat whatever the input
size. CSV cells stay text (empty cells are "", not NaN, a NUL stays a NUL) so the contract
validator sees exactly what the file holds; Parquet and PostgreSQL keep their own types.
`Chunk.first_row` is the 1-based number of the chunk's first data row in the source (row 1 is the
first row after a CSV header). A CSV line with more or fewer fields than the header is set aside
in `Chunk.rejected` with its reason, so it is quarantined instead of aborting the file. A file
that cannot be read at all (not UTF-8, no header, not Parquet, truncated) is a ContractError
naming the file and what to do.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from memberscore.contract import REASON, ROW
from memberscore.errors import ContractError, DataNotFound, StoreUnavailable

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
_URL = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")
CSV_BLOCK_BYTES = 16 << 20  # Arrow parses the CSV this many bytes at a time
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Chunk:
    """Raw rows of one input slice and the source row number of the first of them.

    `rows` holds the source row number of every row of `frame` when they are not consecutive
    (malformed lines were set aside in between); `rejected` holds those lines already in the
    validator's rejected shape (`_row`, raw fields, `_reason`).
    """

    frame: pd.DataFrame
    first_row: int
    rows: np.ndarray | None = None
    rejected: pd.DataFrame | None = None


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
        total = _parquet_file(path).metadata.num_rows
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
    """Chunks of a UTF-8 CSV file read as text; nothing for an empty file, one empty chunk for a
    header-only file (so its columns are still checked)."""
    if path.stat().st_size == 0:
        return
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    names = _csv_header(path, sep)
    malformed = _MalformedLines(names, sep)
    with _csv_errors(path, malformed):
        reader = _open_csv(path, sep, names, malformed)
    pending: list[pa.RecordBatch] = []
    buffered = 0
    yielded = False
    while True:
        with _csv_errors(path, malformed):
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
        pending.append(batch)
        buffered += batch.num_rows
        while buffered >= chunk_rows:
            table = pa.Table.from_batches(pending, reader.schema)
            yield malformed.chunk(table.slice(0, chunk_rows).to_pandas(), final=False)
            yielded = True
            pending, buffered = table.slice(chunk_rows).to_batches(), buffered - chunk_rows
    if buffered or not yielded or malformed.waiting():
        table = pa.Table.from_batches(pending, reader.schema)
        yield malformed.chunk(table.to_pandas(), final=True)


class _MalformedLines:
    """Lines Arrow set aside for a wrong field count, and the source row numbers of good rows.

    Arrow calls `__call__` for each malformed line while parsing, before it returns the batch
    that follows the line, so every set-aside line before a good row is known when that row
    arrives: good row k (1-based) is source row k + (set-aside lines before it).
    """

    def __init__(self, names: list[str], sep: str) -> None:
        self.names = names
        self.sep = sep
        self.lines: list[tuple[int, int, str]] = []  # (source row, fields, text)
        self.good = 0
        self.emitted = 0

    def __call__(self, row: pacsv.InvalidRow) -> str:
        # use_threads=False makes Arrow number rows; row 1 is the header line
        self.lines.append((int(row.number or 0) - 1, row.actual_columns, row.text))
        return "skip"

    def waiting(self) -> bool:
        """True while some set-aside line has not been handed out in a chunk yet."""
        return self.emitted < len(self.lines)

    def chunk(self, frame: pd.DataFrame, *, final: bool) -> Chunk:
        """`frame` (the next good rows) with their source rows and the lines set aside so far."""
        ordinals = np.arange(self.good + 1, self.good + len(frame) + 1)
        self.good += len(frame)
        if not self.lines:
            return Chunk(frame, int(ordinals[0]) if len(frame) else 1)
        bad_rows = np.array([line[0] for line in self.lines])
        rows = ordinals + np.searchsorted(bad_rows - np.arange(len(bad_rows)), ordinals, "right")
        last = len(self.lines) if final else int(np.searchsorted(bad_rows, rows[-1], "right"))
        rejected = self._rejected(self.lines[self.emitted : max(last, self.emitted)])
        self.emitted = max(last, self.emitted)
        first = int(rows[0]) if len(rows) else 1
        return Chunk(frame, first, rows=rows, rejected=rejected)

    def _rejected(self, lines: list[tuple[int, int, str]]) -> pd.DataFrame:
        records = []
        for row, fields, text in lines:
            values = (next(csv.reader([text], delimiter=self.sep), None) or []) + [""] * len(
                self.names
            )
            hint = f"; quote values that contain {self.sep!r}" if fields > len(self.names) else ""
            shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text[:60])
            reason = f"line has {fields} fields where the header has {len(self.names)}{hint}"
            cells = dict(zip(self.names, values, strict=False))
            records.append({ROW: row, **cells, REASON: f"{reason} (got '{shown}')"})
        frame = pd.DataFrame(records, columns=[ROW, *self.names, REASON])
        return frame.astype({name: "string" for name in self.names})


def _csv_header(path: Path, sep: str) -> list[str]:
    """The column names on the first non-empty line, or a ContractError saying what is wrong."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            names = next((fields for fields in csv.reader(file, delimiter=sep) if fields), [])
    except UnicodeDecodeError as error:
        # the text layer decodes its first block (8 KiB) whole: the byte may lie past the header
        raise _not_utf8(path, f"near byte {error.start:,}") from None
    except csv.Error as error:
        raise ContractError(f"{path}: cannot read the header line ({error}); {_CSV_FIX}") from None
    if not any(name.strip() for name in names):
        raise ContractError(
            f"{path} has no header: it holds only whitespace or its first line is blank; "
            "give a CSV whose first line names the columns (see docs/data-contract.md)"
        )
    return names


def _open_csv(
    path: Path, sep: str, names: list[str], malformed: _MalformedLines
) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(
            delimiter=sep, newlines_in_values=True, invalid_row_handler=malformed
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


_CSV_FIX = "check that it is a comma-separated UTF-8 file with a header (see docs/data-contract.md)"


@contextmanager
def _csv_errors(path: Path, malformed: _MalformedLines) -> Iterator[None]:
    """Arrow's read errors as one line naming the file and the fix."""
    try:
        yield
    except (pa.ArrowException, OSError) as error:
        detail = _first_line(error)
        if "UTF8" in detail or "UTF-8" in detail:
            raise _not_utf8(path, f"after data row {malformed.good:,}") from None
        raise ContractError(f"{path}: cannot be read as CSV ({detail}); {_CSV_FIX}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _not_utf8(path: Path, where: str) -> ContractError:
    return ContractError(
        f"{path} is not UTF-8 text ({where}); convert it first, e.g. "
        f"`iconv -f latin1 -t utf-8 {path} > {path.stem}-utf8{path.suffix}`, and ingest that file"
    )


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise _not_parquet(path, error) from None


def _not_parquet(path: Path, error: Exception) -> ContractError:
    return ContractError(
        f"{path} is not a readable Parquet file ({_first_line(error)}); check that the copy is "
        "complete (not truncated or empty) or export it again"
    )


def parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a Parquet file; integer columns stay integers even with nulls."""
    file = _parquet_file(path)
    if file.metadata.num_rows == 0:
        yield Chunk(file.schema_arrow.empty_table().to_pandas(), 1)
        return
    first = 1
    batches = file.iter_batches(batch_size=chunk_rows)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            frame = batch.to_pandas(types_mapper=_nullable_integers)
        except (pa.ArrowException, OSError) as error:
            raise _not_parquet(path, error) from None
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
