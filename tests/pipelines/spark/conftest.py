"""Fixtures of the Spark engine tests: one small simulated lake and one local[2] session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

import pytest

from memberscore.contract import TABLES
from memberscore.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SIM_START = date(2024, 1, 1)


@pytest.fixture(scope="session")
def lake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Given 400 simulated members over 400 days, ingested into a lake; Spark at local[2]
    with 3 member partitions."""
    from pipelines import simulate
    from pipelines.ingest import tables as ingest

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("spark-lake"),
        mlflow_tracking_uri="sqlite:///" + str(tmp_path_factory.mktemp("mlruns") / "m.db"),
        spark_master="local[2]",
        spark_driver_memory="1g",
        spark_shuffle_partitions=3,
    )
    simulate.run(settings, members=400, days=400, seed=11, start=SIM_START)
    for name in TABLES:
        source = settings.raw_dir / f"{name}.parquet"
        ingest.ingest(settings, name, str(source), currency=settings.currency)
    return settings


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one Spark session of the test run (starting one takes seconds); jobs given other
    settings get this session back."""
    pytest.importorskip("pyspark", reason="the Spark engine needs the 'spark' extra (pyspark)")
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs a Java runtime (17): none on PATH and JAVA_HOME unset")
    from pipelines.spark.session import spark_session

    settings = Settings(spark_master="local[2]", spark_driver_memory="1g")
    session = spark_session(settings, app_name="memberscore-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
