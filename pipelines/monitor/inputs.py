"""What the monitor reads: feature snapshots (only the columns the models use; a seeded sample
of a population, checked), the lake's members and orders for the labels, and the predictions of
earlier batch runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.store import SNAPSHOT_PREFIX, snapshot_files
from memberscore.contract import MEMBERS, ORDERS
from memberscore.errors import DataNotFound
from memberscore.settings import Settings
from training.core.labels import MEMBER_COLUMNS, MEMBER_ID, ORDER_COLUMNS, as_cutoff

HAS_ORDERED = "has_ordered"


def snapshot_cutoffs(settings: Settings) -> list[pd.Timestamp]:
    """Cutoffs (00:00 UTC) of the built feature snapshots, oldest first; DataNotFound when
    there are none."""
    files = snapshot_files(settings)
    if not files:
        raise DataNotFound(
            f"no feature snapshots in {settings.snapshots_dir}; run "
            "`memberscore features build --as-of YYYY-MM-DD` first"
        )
    return [as_cutoff(f.stem.removeprefix(SNAPSHOT_PREFIX)) for f in files]


@dataclass(frozen=True)
class RawSnapshot:
    """A snapshot file's columns as read (Arrow), not yet checked: rows are drawn first and
    only the drawn rows are converted and checked, which keeps a million-row file cheap."""

    path: Path
    cutoff: pd.Timestamp
    table: pa.Table

    def samples(self, rows: Mapping[str, int], seed: int) -> dict[str, pd.DataFrame]:
        """For each task of `rows`, a seeded sample of at most that many rows of its
        population (members with an order for churn and clv, without for activation; a
        missing has_ordered counts as none, as scoring does), member ids checked; the caller
        checks the features (`check_rows`, the costly part, once per model). Tasks of one
        population (churn and clv) share one draw, the smaller sample the start of the
        larger."""
        buyers = self._buyers()
        draws: dict[bool, np.ndarray] = {}
        for task, size in rows.items():
            key = task != "activation"
            if key not in draws or len(draws[key]) < size:
                members = np.flatnonzero(buyers if key else ~buyers)
                rng = np.random.default_rng(seed + int(key))
                draws[key] = rng.permutation(members)[:size]
        order = np.concatenate(list(draws.values()))
        frame = self.table.take(pa.array(order)).to_pandas()
        check_rows(frame[[MEMBER_ID]], str(self.path), self.cutoff)
        starts = dict(zip(draws, np.cumsum([0, *map(len, draws.values())]), strict=False))
        out = {}
        for task, size in rows.items():
            key = task != "activation"
            first = int(starts[key])
            count = min(size, len(draws[key]))  # never past its population's rows
            out[task] = frame.iloc[first : first + count].reset_index(drop=True)
        return out

    def _buyers(self) -> np.ndarray:
        """has_ordered as a bool array (missing counts as no order)."""
        if HAS_ORDERED not in self.table.column_names:
            return np.zeros(self.table.num_rows, dtype=bool)
        flags = self.table[HAS_ORDERED].to_numpy(zero_copy_only=False)
        return pd.array(flags, dtype="boolean").fillna(False).to_numpy(dtype=bool)


def check_rows(frame: pd.DataFrame, source: str, cutoff: pd.Timestamp | None) -> None:
    """`features.schema.check_frame` of rows read from the snapshot files `source` (of
    `cutoff`, when they are of one), every column read required. Rows of several cutoffs are
    checked without member_id (a member has a row at each; `RawSnapshot.samples` checks the
    ids of each file)."""
    from features.schema import check_frame

    if cutoff is None:
        frame = frame.drop(columns=[MEMBER_ID], errors="ignore")
    check_frame(frame, source, required=list(frame.columns), cutoff=cutoff)


def read_raw(settings: Settings, cutoff: pd.Timestamp, columns: Sequence[str]) -> RawSnapshot:
    """member_id, has_ordered and those of `columns` the snapshot of `cutoff` holds, unchecked
    (`RawSnapshot.sample` checks what it returns); DataNotFound when it is not built."""
    from features.reader import require_file

    path = require_file(settings, cutoff.date())
    present = set(pq.read_schema(path).names)
    wanted = [c for c in dict.fromkeys([MEMBER_ID, HAS_ORDERED, *columns]) if c in present]
    return RawSnapshot(path, cutoff, pq.read_table(path, columns=wanted))


def seed_of(settings: Settings, cutoff: pd.Timestamp, task: str) -> int:
    """The sampling seed of one population: the settings' seed, the cutoff and the task."""
    return settings.seed * 1_000_003 + cutoff.toordinal() * 7 + len(task)


def lake_tables(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(members, orders) from the lake, with the columns the labels need."""
    from memberscore import lake

    lake.require(settings.lake_dir, ORDERS)
    members = lake.read(settings.lake_dir, MEMBERS, columns=list(MEMBER_COLUMNS))
    orders = lake.read(settings.lake_dir, ORDERS, columns=list(ORDER_COLUMNS))
    return members, orders


def batch_predictions(
    settings: Settings, cutoff: date, model: str, version: str, column: str
) -> pd.Series | None:
    """The `column` a complete batch run of `cutoff` (`<outputs>/batch-<date>`) scored with
    `model` at `version`, by member id; None when there is no such run."""
    from pipelines.batch import manifest as mf
    from pipelines.batch.job import default_out

    out = default_out(settings, cutoff)
    found = mf.read(out)
    if found is None or found.status != mf.COMPLETE:
        return None
    if str(found.models.get(model, {}).get("version")) != version:
        return None
    rows = mf.read_scores(out, [MEMBER_ID, column])
    values = rows.set_index(rows[MEMBER_ID].astype(str))[column].astype(float)
    return values.dropna()
