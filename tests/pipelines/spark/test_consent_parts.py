"""The Spark feature path takes consent changes as the local engine does (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.build import open_lake
from features.snapshot import member_features
from memberscore import lake
from memberscore.contract import CONSENTS, TABLES
from memberscore.settings import Settings
from pipelines.spark.features import COLUMNS_READ, TABLE_TAG, member_part
from tests.pipelines.ingest.test_consents import lake_with_changes  # noqa: F401  (fixture)

FLAGS = ["member_id", "consent_marketing", "consent_personalization"]


def _part(settings: Settings) -> pd.DataFrame:
    """Every lake row tagged with its table, as one Spark partition hands them over."""
    frames = [
        lake.read(settings.lake_dir, spec, list(COLUMNS_READ[name])).assign(
            **{TABLE_TAG: list(TABLES).index(name)}
        )
        for name, spec in TABLES.items()
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("cutoff", ["2024-06-01", "2024-08-01"])
def test_spark_partition_profile_equals_the_local_one(
    lake_with_changes: Settings,  # noqa: F811
    cutoff: str,
    tmp_path: Path,
) -> None:
    """Issue 17: the Spark partition function, given the lake's consent changes, gives each
    member the local engine's consent flags at the cutoff (a change after it not leaking)."""
    as_of = pd.Timestamp(cutoff, tz="UTC")
    thresholds = tuple(lake_with_changes.tier_thresholds)
    local = member_features(open_lake(lake_with_changes), as_of, tier_thresholds=thresholds)

    run = member_part(as_of, thresholds, lake.read(lake_with_changes.lake_dir, CONSENTS))
    spark = pd.concat(list(run(iter([_part(lake_with_changes)]))))

    pd.testing.assert_frame_equal(
        spark[FLAGS].reset_index(drop=True), local[FLAGS].reset_index(drop=True), obj="Spark"
    )
    m2_marketing = bool(local.set_index("member_id").loc["m2", "consent_marketing"])
    assert m2_marketing is (cutoff < "2024-07-01"), "m2's July withdrawal counts from July"
