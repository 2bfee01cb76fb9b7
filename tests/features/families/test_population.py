"""Population statistics: a snapshot computed in parts equals the snapshot computed whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.families.population import population_stats
from features.families.segments import quintile_cuts, quintile_score
from features.snapshot import member_features, population_features, register_frames
from memberscore.contract import TABLES, validate
from memberscore.settings import Settings
from pipelines import simulate

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")
THRESHOLDS = (("basic", 0.0), ("silver", 500.0), ("gold", 2000.0))


def _rank_score(values: pd.Series) -> pd.Series:
    """The definition: 1 + floor(5 × share of present values strictly below)."""
    present = values.dropna()
    below = present.rank(method="min") - 1
    return (1 + (5 * below) // max(len(present), 1)).astype("Int64").reindex(values.index)


def test_cut_scores_equal_the_rank_definition_with_ties_and_gaps() -> None:
    # Given values with many ties and missing values, for several population sizes
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 4, 5, 6, 7, 11, 50, 333):
        values = pd.Series(rng.integers(0, 6, n).astype("float64"))
        values[rng.random(n) < 0.2] = np.nan
        # When scoring through the cuts / Then the score is the rank definition
        pd.testing.assert_series_equal(
            quintile_score(values), _rank_score(values), obj=f"quintile score of {n} values"
        )


def test_a_part_scored_against_the_whole_keeps_its_whole_score() -> None:
    values = pd.Series(np.arange(20, dtype="float64"))
    whole = quintile_score(values)
    part = quintile_score(values.iloc[::3], quintile_cuts(values))
    assert part.tolist() == whole.iloc[::3].tolist(), "scores of a part use the whole's cuts"


def test_snapshot_in_member_parts_equals_the_whole_snapshot(tmp_path: Path) -> None:
    # Given a small simulated programme split into two halves by member
    settings = Settings(data_dir=tmp_path)
    simulate.run(settings, members=300, days=400, seed=3, start=date(2023, 1, 1))
    tables = {
        name: validate(pd.read_parquet(settings.raw_dir / f"{name}.parquet"), spec).accepted
        for name, spec in TABLES.items()
    }
    whole_members = _members(tables, None)
    ids = whole_members["member_id"]
    halves = [set(ids.iloc[::2]), set(ids.iloc[1::2])]
    # When each half's member features are computed alone and finished with the whole's stats
    parts = [_members(tables, half) for half in halves]
    stats = population_stats(pd.concat(parts, ignore_index=True))
    pieces = pd.concat([population_features(p, stats, AS_OF) for p in parts], ignore_index=True)
    pieces = pieces.sort_values("member_id", ignore_index=True)
    # Then every value equals the snapshot computed in one piece
    expected = population_features(whole_members, population_stats(whole_members), AS_OF)
    assert expected["segment"].nunique() > 3, "the fixture should spread buyers over segments"
    pd.testing.assert_frame_equal(pieces, expected, obj="snapshot computed in two parts")


def _members(tables: dict[str, pd.DataFrame], ids: set[str] | None) -> pd.DataFrame:
    frames = [t if ids is None else t[t["member_id"].isin(ids)] for t in tables.values()]
    con = register_frames(duckdb.connect(), *frames)
    return member_features(con, AS_OF, tier_thresholds=THRESHOLDS)
