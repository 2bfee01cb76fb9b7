"""Reading the CDNOW purchase log (the only I/O of the benchmark besides writing results)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from features.btyd import holdout_summary, rfm_summary

DEFAULT_DATA_DIR = Path(os.environ.get("MEMBERSCORE_CDNOW_DIR", "/work/shared/data/cdnow"))
CALIBRATION_END = pd.Timestamp("1997-09-30")
HOLDOUT_START = pd.Timestamp("1997-10-01")
HOLDOUT_END = pd.Timestamp("1998-06-30")
HOLDOUT_WEEKS = (HOLDOUT_END - CALIBRATION_END).days / 7.0  # 39 weeks
COLUMNS = {"customer_col": "customer_id", "time_col": "date", "value_col": "dollar_value"}


def read_master(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """CDNOW_master.txt as (customer_id, date, number_of_cds, dollar_value), checked."""
    path = data_dir / "CDNOW_master.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; pass --data-dir or set MEMBERSCORE_CDNOW_DIR")
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": int, "date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    expected = {"customer_id", "date", "number_of_cds", "dollar_value"}
    if set(raw.columns) != expected or raw["dollar_value"].lt(0).any():
        raise ValueError(f"{path} does not look like CDNOW_master: columns {list(raw.columns)}")
    return raw


def split(transactions: pd.DataFrame, as_of: pd.Timestamp, horizon_end: pd.Timestamp) -> tuple:
    """(RFM summary in weeks as of `as_of` inclusive, holdout counts/$ in (as_of, horizon_end])."""
    summary = rfm_summary(transactions, observation_end=as_of, **COLUMNS)
    holdout = holdout_summary(
        transactions,
        start=as_of + pd.Timedelta(days=1),
        end=horizon_end,
        customers=summary.index,
        **COLUMNS,
    )
    return summary, holdout
