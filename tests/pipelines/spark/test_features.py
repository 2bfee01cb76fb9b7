"""Spark feature build: the same snapshot files as the local engine, on a small lake."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import build
from features.catalog import FAMILIES
from memberscore.settings import Settings
from pipelines.spark import features as spark_build

# Late in the simulation: new, active and lapsed members (one cutoff: Spark jobs cost seconds).
CUTOFFS = [date(2025, 1, 20)]


@pytest.fixture(scope="module")
def both(lake_settings: Settings, spark) -> list[tuple[pd.DataFrame, pd.DataFrame, bool]]:
    """(local, spark, same Arrow schema incl. pandas metadata) per cutoff."""
    local_paths = [p.rename(p.with_suffix(".local")) for p in build.run(lake_settings, CUTOFFS)]
    spark_paths = spark_build.run(lake_settings, CUTOFFS)
    out = []
    for local, other in zip(local_paths, spark_paths, strict=True):
        same_schema = pq.read_schema(local).equals(pq.read_schema(other), check_metadata=True)
        out.append((pd.read_parquet(local), pd.read_parquet(other), same_schema))
    return out


@pytest.mark.parametrize("index", range(len(CUTOFFS)), ids=[str(d) for d in CUTOFFS])
def test_spark_snapshot_equals_the_local_snapshot(both, index: int) -> None:
    local, spark, same_schema = both[index]
    # Given a lake split into 3 member partitions (population features rank across all)
    assert len(local) > 50 and local["segment"].nunique() > 3, "fixture spreads members out"
    # Then the same members, in member order, with every value and dtype equal: text, counts,
    # flags, scores exactly; floats up to summation order (DuckDB adds a member's rows in the
    # order it reads them, which differs between the engines), and the BTYD family up to its
    # optimiser's tolerance (the fit turns last-bit input differences into ~1e-8 ones)
    assert spark["member_id"].is_monotonic_increasing, "the Spark file is sorted by member"
    floats = [c for c in local.columns if local[c].dtype == "float64"]
    fitted = [f.name for f in FAMILIES.get("btyd", ())]
    summed = [c for c in floats if c not in fitted]
    exact = [c for c in local.columns if c not in floats]
    pd.testing.assert_frame_equal(spark[exact], local[exact], check_exact=True, obj="Spark")
    pd.testing.assert_frame_equal(
        spark[summed], local[summed], check_exact=False, rtol=1e-12, atol=1e-9, obj="Spark"
    )
    pd.testing.assert_frame_equal(
        spark[fitted], local[fitted], check_exact=False, rtol=1e-6, obj="Spark BTYD"
    )
    assert same_schema, "the Spark file has the local file's Parquet schema and pandas metadata"
