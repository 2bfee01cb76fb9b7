"""Spark batch scoring: the same part files as the local engine, resumable across engines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from memberscore.settings import Settings
from pipelines.batch import manifest as mf
from tests.pipelines.batch import world as batch_world
from tests.serving import conftest as serving_world

# The score API's tiny member world (members m0..m39 with orders, n0..n4 without).
member_rows, snapshot = serving_world.member_rows, serving_world.snapshot


@pytest.fixture
def batch_settings(settings: Settings, snapshot: pd.DataFrame, spark) -> Settings:
    """The 45 serving test members as the snapshot of CUTOFF, 10 rows a part; m7 lacks
    has_ordered (unscorable)."""
    return batch_world.write_snapshot(settings, snapshot, chunk_rows=10, spark_shuffle_partitions=3)


def test_spark_writes_the_local_engines_files(batch_settings: Settings, tmp_path: Path) -> None:
    # When the same snapshot is scored by both engines
    local = batch_world.run(batch_settings, tmp_path / "local")
    spark = batch_world.run(batch_settings, tmp_path / "spark", engine="spark")
    # Then the same parts, byte for byte, the same counts, and the manifest names the engine
    assert (spark.members, spark.parts, spark.unscorable) == (45, 5, 1)
    assert batch_world.checksums(tmp_path / "spark") == batch_world.checksums(tmp_path / "local")
    pd.testing.assert_frame_equal(
        mf.read_scores(tmp_path / "spark"), mf.read_scores(tmp_path / "local")
    )
    assert (spark.scored, spark.actions) == (local.scored, local.actions)
    manifest = json.loads((tmp_path / "spark" / mf.MANIFEST).read_text())
    assert manifest["engine"] == "spark" and manifest["status"] == mf.COMPLETE


def test_spark_resumes_a_killed_run_computing_only_the_missing_parts(
    batch_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a local run on one thread killed after two parts, when Spark resumes it, then it
    writes the three others only and the folder equals an uninterrupted run; a segment filter
    that empties parts gives them empty records, as locally."""
    batch_world.run(batch_settings, tmp_path / "whole")
    written = batch_world.run_killed(batch_settings, tmp_path / "killed", monkeypatch, workers=1)

    resumed = batch_world.run(batch_settings, tmp_path / "killed", engine="spark")

    assert resumed.skipped == 2 and resumed.parts == 5
    assert written[2:] == ["part-00002.parquet", "part-00003.parquet", "part-00004.parquet"]
    assert batch_world.checksums(tmp_path / "killed") == batch_world.checksums(tmp_path / "whole")

    few = ["champions"]
    local = batch_world.run(batch_settings, tmp_path / "few-local", segments=few)
    spark = batch_world.run(batch_settings, tmp_path / "few-spark", segments=few, engine="spark")
    assert spark.members == local.members > 0
    parts = [
        json.loads((tmp_path / d / mf.MANIFEST).read_text())["parts"]
        for d in ("few-local", "few-spark")
    ]
    assert parts[0] == parts[1], "same part records, empty ones included"
