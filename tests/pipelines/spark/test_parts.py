"""The pure pieces of the Spark engine: part numbers, dtype round trips, table split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.contract import TABLES, TIMESTAMP_DTYPE
from pipelines.spark.features import COLUMNS_READ, TABLE_TAG, split_tables
from pipelines.spark.scoring import PART, part_bounds, part_scorer


def _snapshot(tmp_path: Path, ids: list[str]) -> Path:
    path = tmp_path / "snapshot.parquet"
    frame = pd.DataFrame({"member_id": pd.array(ids, dtype="string"), "x": range(len(ids))})
    frame["x"] = frame["x"].astype("Int64")
    frame.to_parquet(path, index=False)
    return path


def test_parts_are_blocks_of_chunk_rows_members(tmp_path: Path) -> None:
    # Given 7 members sorted by id, 3 rows a part
    path = _snapshot(tmp_path, [f"m{i}" for i in range(7)])
    bounds = part_bounds(path, 3)
    assert bounds.tolist() == ["m0", "m3", "m6"], "first member of each part"
    # When Spark hands the scorer a batch (Arrow turned Int64 into float), parts 0 and 2 to do
    score = part_scorer(
        lambda f: f.assign(y=f["x"] * 2),
        pd.read_parquet(path).dtypes,
        pd.Series({"member_id": "string", "x": "Int64", "y": "Int64"}),
        bounds,
        [0, 2],
    )
    batch = pd.DataFrame({"member_id": ["m2", "m3", "m6", "m0"], "x": [2.0, 3.0, 6.0, np.nan]})
    [out] = list(score(iter([batch])))
    # Then only rows of parts 0 and 2, numbered, with the snapshot's dtypes back
    assert out[PART].tolist() == [0, 2, 0]
    assert out["member_id"].tolist() == ["m2", "m6", "m0"]
    assert str(out["x"].dtype) == "Int64" and pd.isna(out["x"].iloc[2])
    assert out["y"].tolist()[:2] == [4, 12]


def test_an_unsorted_snapshot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not sorted"):
        part_bounds(_snapshot(tmp_path, ["m2", "m1"]), 1)


def test_split_tables_restores_canonical_frames_sorted_by_member_and_time() -> None:
    # Given a tagged part as Spark hands it over: naive UTC times, objects, missing columns
    orders = list(TABLES).index("orders")
    part = pd.DataFrame(
        {
            TABLE_TAG: [orders, orders],
            "member_id": ["b", "a"],
            "order_id": ["o2", "o1"],
            "ordered_at": pd.to_datetime(["2024-01-02", "2024-01-01"]),
            "amount": [5.0, 7.0],
            "discount": [0.0, 1.0],
            "channel": ["store", "online"],
            "coupon_id": [None, "c"],
            "is_return": [False, True],
        }
    )
    for columns in COLUMNS_READ.values():
        for column in columns:
            if column not in part.columns:
                part[column] = None
    # When splitting
    tables = split_tables(part)
    # Then every table has its contract columns and dtypes; orders sorted by member
    out = tables["orders"]
    assert list(out.columns) == TABLES["orders"].names
    assert str(out["ordered_at"].dtype) == TIMESTAMP_DTYPE
    assert out["member_id"].tolist() == ["a", "b"] and out["amount"].tolist() == [7.0, 5.0]
    assert out["items"].isna().all(), "a column the features do not read stays null"
    assert all(tables[n].empty for n in ("members", "events", "contacts"))
