"""Chunked readers: CSV as text, Parquet with its types, PostgreSQL through a server-side cursor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from memberscore.errors import ContractError, DataNotFound, StoreUnavailable
from pipelines.ingest import readers

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_chunks_keep_text_and_number_their_rows(tmp_path: Path) -> None:
    # given a CSV of five rows with an empty cell and a leading-zero id
    path = _csv(tmp_path / "m.csv", "id,n\n007,1\n2,\n3,3\n4,4\n5,5\n")

    # when it is read two rows at a time
    chunks = list(readers.open_source(str(path), chunk_rows=2).chunks)

    # then three chunks start at rows 1, 3, 5 and cells stay exactly as written
    assert [c.first_row for c in chunks] == [1, 3, 5], "first_row counts data rows from 1"
    assert [len(c.frame) for c in chunks] == [2, 2, 1]
    assert chunks[0].frame["id"][0] == "007", "ids are text: leading zeros survive"
    assert chunks[0].frame["n"][1] == "", "empty cells are empty strings, not NaN"


def test_empty_csv_yields_nothing_and_header_only_yields_its_columns(tmp_path: Path) -> None:
    # given an empty file and a header-only file
    empty = _csv(tmp_path / "empty.csv", "")
    header = _csv(tmp_path / "header.csv", "order_id,member_id\n")

    # when both are read
    empty_chunks = list(readers.open_source(str(empty), chunk_rows=10).chunks)
    header_chunks = list(readers.open_source(str(header), chunk_rows=10).chunks)

    # then the empty file has no chunk, the header-only file one empty chunk with its columns
    assert empty_chunks == [], "an empty file holds no rows"
    assert len(header_chunks) == 1 and header_chunks[0].frame.empty
    assert list(header_chunks[0].frame.columns) == ["order_id", "member_id"], (
        "the columns of a header-only file are kept so they can still be checked"
    )


def test_parquet_chunks_keep_nullable_integers(tmp_path: Path) -> None:
    # given a Parquet file whose integer column has a null
    path = tmp_path / "m.parquet"
    frame = pd.DataFrame({"id": pd.array([1, None, 3], dtype="Int64"), "x": ["a", "b", "c"]})
    frame.to_parquet(path)

    # when it is read two rows at a time
    source = readers.open_source(str(path), chunk_rows=2)
    chunks = list(source.chunks)

    # then the total is known up front and integers are not turned into floats
    assert source.total_rows == 3
    assert [c.first_row for c in chunks] == [1, 3]
    assert str(chunks[0].frame["id"].dtype) == "Int64", "a null must not make ids floats"


def test_missing_file_and_unsupported_type_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound, match="does not exist"):
        readers.open_source(str(tmp_path / "nope.csv"), chunk_rows=10)
    odd = _csv(tmp_path / "data.xlsx", "x")
    with pytest.raises(ContractError, match=r"unsupported file type '\.xlsx'"):
        readers.open_source(str(odd), chunk_rows=10)
    with pytest.raises(ContractError, match="--pg-table"):
        readers.open_source(PG_URL, chunk_rows=10)


def test_redact_hides_passwords() -> None:
    assert readers.redact("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert readers.redact(PG_URL) == PG_URL, "a URL without password is left alone"


def test_unreachable_database_says_what_to_check() -> None:
    source = readers.open_source(
        "postgresql://postgres@127.0.0.1:1/test", chunk_rows=10, pg_table="t"
    )
    with pytest.raises(StoreUnavailable, match="check that the server runs"):
        next(source.chunks)


def test_postgres_table_is_read_in_chunks(pg_url: str, pg_table: str) -> None:
    # when the table is read two rows at a time
    chunks = list(readers.open_source(pg_url, chunk_rows=2, pg_table=pg_table).chunks)

    # then three chunks arrive with their row numbers and all columns
    assert [c.first_row for c in chunks] == [1, 3, 5]
    assert sum(len(c.frame) for c in chunks) == 5
    assert list(chunks[0].frame.columns)[:3] == ["order_id", "member_id", "ordered_at"]


def test_missing_postgres_table_is_data_not_found(pg_url: str, pg_table: str) -> None:
    source = readers.open_source(pg_url, chunk_rows=2, pg_table=pg_table + "_missing")
    with pytest.raises(DataNotFound, match="not found"):
        next(source.chunks)


def test_csv_cells_keep_nul_bytes(tmp_path: Path) -> None:
    """Issue 14 finding 6: pandas' C parser cut 'm1\\x00x' to 'm1'; the validator must see it."""
    path = tmp_path / "o.csv"
    path.write_bytes(b"order_id,member_id\no1,m1\x00x\no2,m1\n")

    (chunk,) = readers.open_source(str(path), chunk_rows=10).chunks

    assert chunk.frame["member_id"].tolist() == ["m1\x00x", "m1"], "the NUL and what follows stay"


def test_lines_with_a_wrong_field_count_are_set_aside_with_their_rows(tmp_path: Path) -> None:
    """Issue 14 finding 6: a row with an extra field aborted the whole file with a traceback."""
    # given 6 data rows: row 2 has an extra field, row 4 one field too few, row 5 a quoted comma
    path = _csv(tmp_path / "o.csv", 'id,n\na,1\nb,2,x\nc,3\nd\n"e,e",5\nf,6\n')

    # when read two rows at a time
    chunks = list(readers.open_source(str(path), chunk_rows=2).chunks)

    # then the good rows keep their source row numbers and the bad lines come with a reason
    consecutive = [range(c.first_row, c.first_row + len(c.frame)) for c in chunks]
    numbered = [
        (c.rows if c.rows is not None else r, c.frame["id"])
        for c, r in zip(chunks, consecutive, strict=True)
    ]
    good = [(int(r), i) for rows, ids in numbered for r, i in zip(rows, ids, strict=True)]
    assert good == [(1, "a"), (3, "c"), (5, "e,e"), (6, "f")], "row numbers skip the bad lines"
    bad = pd.concat([c.rejected for c in chunks if c.rejected is not None])
    assert bad["_row"].tolist() == [2, 4], "each bad line is reported once, at its data row"
    assert bad["_reason"].tolist() == [
        "line has 3 fields where the header has 2; quote values that contain ',' (got 'b,2,x')",
        "line has 1 fields where the header has 2 (got 'd')",
    ]
    assert bad["id"].tolist() == ["b", "d"], "the fields of a bad line are kept for the quarantine"


def _parquet_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "whole.parquet"
    pd.DataFrame({"order_id": [f"o{i}" for i in range(5000)]}).to_parquet(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin1.csv", "order_id,region\no1,München\n".encode("latin-1"), "is not UTF-8 text"),
        ("blank.csv", b"  \n \t \n", "has no header: it holds only whitespace"),
        ("empty.parquet", b"", "is not a readable Parquet file"),
        ("garbage.parquet", b"not parquet at all\n" * 20, "is not a readable Parquet file"),
        ("truncated.parquet", None, "is not a readable Parquet file"),
    ],
)
def test_unreadable_files_are_one_contract_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    """Issue 14 finding 6: these files ended in tracebacks instead of a one-line error."""
    path = tmp_path / name
    path.write_bytes(content if content is not None else _parquet_bytes(tmp_path)[:-200])

    with pytest.raises(ContractError) as caught:
        list(readers.open_source(str(path), chunk_rows=2).chunks)

    text = str(caught.value)
    assert str(path) in text and message in text, text
    assert "\n" not in text, "one line"


def test_a_late_non_utf8_byte_names_the_rows_read_before_it(tmp_path: Path) -> None:
    rows = "".join(f"o{i},north\n" for i in range(20_000))
    path = tmp_path / "late.csv"
    path.write_bytes(("order_id,region\n" + rows).encode() + "o,Köln\n".encode("latin-1"))

    with pytest.raises(ContractError, match=r"is not UTF-8 text \(after data row [\d,]+\)"):
        list(readers.open_source(str(path), chunk_rows=5_000).chunks)


@pytest.mark.parametrize(("block_bytes", "chunk_rows"), [(64, 1), (100, 7), (1 << 20, 50)])
def test_row_numbers_stay_right_across_blocks_and_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int, chunk_rows: int
) -> None:
    """Issue 14 finding 6: set-aside lines must not shift the row numbers of later rows."""
    # given 300 rows where every 7th has an extra field, parsed in small blocks
    bad_rows = [r for r in range(1, 301) if r % 7 == 0]
    lines = [f"b{r},1,2" if r in bad_rows else f"g{r},{r}" for r in range(1, 301)]
    path = _csv(tmp_path / "rows.csv", "\n".join(["id,n", *lines]) + "\n")
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", block_bytes)

    # when read
    chunks = list(readers.open_source(str(path), chunk_rows=chunk_rows).chunks)

    # then every good row carries its own number and every bad line is reported once
    for chunk in chunks:
        consecutive = range(chunk.first_row, chunk.first_row + len(chunk.frame))
        rows = chunk.rows if chunk.rows is not None else consecutive
        expected = [f"g{r}" for r in rows]
        assert chunk.frame["id"].tolist() == expected, "a row's number names its own line"
    reported = [r for c in chunks if c.rejected is not None for r in c.rejected["_row"]]
    assert reported == bad_rows
    assert sum(len(c.frame) for c in chunks) == 300 - len(bad_rows)
