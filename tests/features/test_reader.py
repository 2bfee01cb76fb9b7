"""Snapshot files read and checked where they enter a job: what the build job writes passes,
a broken file fails naming itself, and chunked checks see duplicates across chunks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from features import build, reader, store
from memberscore.errors import ContractError, DataNotFound
from memberscore.settings import Settings
from tests.features.test_build import CUTOFFS, write_tiny_lake
from tests.features.test_schema import CUTOFF, valid_snapshot

DAY = CUTOFF.date()


def write(settings: Settings, frame: pd.DataFrame, day: date = DAY) -> Path:
    path = store.snapshot_path(settings, day)
    build.write_snapshot(frame, path)
    return path


def test_snapshots_the_build_job_writes_pass(tmp_path: Path) -> None:
    """Given the tiny lake of the build tests, when its weekly snapshots are built, then every
    file fits the schema (real feature code, not hand-made values)."""
    settings = Settings(data_dir=tmp_path / "data", feast_repo=tmp_path / "repo")
    write_tiny_lake(settings.lake_dir)
    build.run(settings, CUTOFFS, echo=lambda _: None)

    checked = reader.check_snapshots(settings, chunk_rows=2)

    assert checked == [store.snapshot_path(settings, day) for day in CUTOFFS]
    frame = reader.read_snapshot(settings, CUTOFFS[-1])
    pd.testing.assert_frame_equal(frame, pd.read_parquet(checked[-1]), obj="read as stored")


def test_read_snapshot_checks_the_columns_it_reads(settings: Settings) -> None:
    frame = valid_snapshot()
    frame.loc[1, "btyd_p_alive"] = 3.0
    path = write(settings, frame)

    with pytest.raises(ContractError) as caught:
        reader.read_snapshot(settings, DAY)
    assert str(path) in str(caught.value), "the message names the file"
    assert "'btyd_p_alive' fails check 'in [0, 1]'" in str(caught.value)
    assert "member_id 'm2'" in str(caught.value)

    some = reader.read_snapshot(settings, DAY, ["member_id", "frequency"])
    assert list(some.columns) == ["member_id", "frequency"], "only the columns asked for"


def test_read_snapshot_names_a_missing_column_or_file(settings: Settings) -> None:
    with pytest.raises(DataNotFound, match="memberscore features build --as-of 2026-06-01"):
        reader.read_snapshot(settings, DAY)
    write(settings, valid_snapshot().drop(columns="last_gap_days"))

    with pytest.raises(ContractError, match="column 'last_gap_days' is missing"):
        reader.read_snapshot(settings, DAY, ["member_id", "last_gap_days"])


def test_chunked_check_finds_a_duplicate_in_another_chunk(settings: Settings) -> None:
    frame = valid_snapshot()
    frame.loc[2, "member_id"] = "m1"  # chunks of one row: never twice in one chunk
    path = write(settings, frame)

    with pytest.raises(ContractError, match="column 'member_id' is not unique"):
        reader.check_snapshot_file(path, DAY, chunk_rows=1)


def test_chunked_check_reads_the_schema_of_an_empty_file(settings: Settings) -> None:
    path = write(settings, valid_snapshot().iloc[:0].drop(columns="tier"))

    with pytest.raises(ContractError, match="column 'tier' is missing"):
        reader.check_snapshot_file(path, DAY)
    reader.check_snapshot_file(path, DAY, required=["member_id", "as_of"])
