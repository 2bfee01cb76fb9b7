"""Seasonality of demand and conversions between simulator days and UTC timestamps."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

_US_PER_DAY = 86_400_000_000
_REFERENCE_YEAR = 2023  # the multiplier is scaled so this year's mean is 1


def _bump(dates: pd.DatetimeIndex, month: int, day: int, width: float) -> np.ndarray:
    """A Gaussian bump (height 1) centred on month/day of each date's own year; width in days."""
    centre = pd.to_datetime(
        {"year": dates.year, "month": month, "day": day}, errors="coerce"
    ).to_numpy()
    distance = (dates.to_numpy() - centre) / np.timedelta64(1, "D")
    return np.exp(-0.5 * (distance / width) ** 2)


def _black_friday(dates: pd.DatetimeIndex) -> np.ndarray:
    """Days from each date to the Friday after the fourth Thursday of November of its year."""
    nov1 = pd.to_datetime({"year": dates.year, "month": 11, "day": 1})
    first_thursday = nov1 + pd.to_timedelta((3 - nov1.dt.weekday) % 7, unit="D")
    friday = first_thursday + pd.Timedelta(days=22)
    return ((dates.to_numpy() - friday.to_numpy()) / np.timedelta64(1, "D")).astype(float)


def _raw_multiplier(dates: pd.DatetimeIndex) -> np.ndarray:
    month = dates.month.to_numpy()
    level = np.ones(len(dates))
    level += np.where(month == 11, 0.25, 0.0) + np.where(month == 12, 0.15, 0.0)
    level -= np.where(month <= 3, 0.12, 0.0)
    level += 1.0 * _bump(dates, 6, 18, 3.0) + 0.25 * _bump(dates, 6, 10, 6.0)
    level += 2.0 * _bump(dates, 11, 11, 1.5)
    level += 1.4 * np.exp(-0.5 * (_black_friday(dates) / 2.0) ** 2)
    level += 0.6 * _bump(dates, 12, 19, 6.0)
    weekend = dates.weekday.to_numpy() >= 5
    return level * np.where(weekend, 1.1, 0.96)


_SCALE = float(
    _raw_multiplier(pd.date_range(f"{_REFERENCE_YEAR}-01-01", f"{_REFERENCE_YEAR}-12-31")).mean()
)


def season_multiplier(dates: pd.DatetimeIndex) -> np.ndarray:
    """Demand multiplier per calendar date (mean 1 over a year): June festival around 18 June,
    11/11, Black Friday, year-end, a slow first quarter, busier weekends."""
    return _raw_multiplier(pd.DatetimeIndex(dates).normalize().tz_localize(None)) / _SCALE


def season_curve(start: date, days: int) -> np.ndarray:
    """The multiplier of each simulated day 0..days-1 starting at `start`."""
    return season_multiplier(pd.date_range(start, periods=days, freq="D"))


def to_timestamps(start: date, days: np.ndarray) -> pd.Series:
    """Float days since `start` 00:00 UTC as `datetime64[us, UTC]`; non-finite days become NaT."""
    days = np.asarray(days, dtype=float)
    finite = np.isfinite(days)
    origin = np.datetime64(start, "us").astype(np.int64)
    micros = np.where(finite, np.round(np.where(finite, days, 0.0) * _US_PER_DAY), 0).astype(
        np.int64
    )
    values = (origin + micros).astype("datetime64[us]")
    values[~finite] = np.datetime64("NaT")
    return pd.Series(values).dt.tz_localize("UTC")


def to_days(start: date, stamps: pd.Series | pd.Timestamp) -> np.ndarray:
    """Timestamps (UTC) as float days since `start` 00:00 UTC; NaT becomes +inf."""
    origin = pd.Timestamp(start, tz="UTC")
    if isinstance(stamps, pd.Timestamp):
        stamps = pd.Series([stamps])
    delta = (pd.Series(stamps) - origin) / pd.Timedelta(days=1)
    return delta.fillna(np.inf).to_numpy(dtype=float)
