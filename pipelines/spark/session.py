"""The Spark session of a job, and the Spark types of the project's pandas dtypes."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from memberscore.contract import TIMESTAMP_DTYPE
from memberscore.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType, StructType


def spark_session(settings: Settings, app_name: str = "memberscore") -> SparkSession:
    """The session for `settings.spark_master` (started on first use, reused after).

    Session time zone is UTC, so timestamps cross between pandas and Spark unchanged. On a
    local master the workers run this interpreter and bind to 127.0.0.1; on a cluster the
    Python environment is shipped through `spark_conf` (docs/batch.md).
    """
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in settings.spark_conf:
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_type(dtype: str) -> DataType:
    """The Spark type holding a column of pandas `dtype` (the contract's and catalog's)."""
    from pyspark.sql import types as T

    types: dict[str, DataType] = {
        "string": T.StringType(),
        "float64": T.DoubleType(),
        "Int64": T.LongType(),
        "int64": T.LongType(),
        "boolean": T.BooleanType(),
        "bool": T.BooleanType(),
        TIMESTAMP_DTYPE: T.TimestampType(),
    }
    if dtype not in types:
        raise ValueError(f"no Spark type for pandas dtype {dtype!r}")
    return types[dtype]


def spark_schema(columns: Mapping[str, str]) -> StructType:
    """A Spark schema of nullable fields from column name → pandas dtype."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(n, spark_type(d), True) for n, d in columns.items()])
