"""The Spark engine (`--engine spark`): feature snapshots and batch scores on Apache Spark.

Spark only moves rows: members are hash-partitioned and each partition runs the same pure
functions as the local engine (`features.snapshot`, `serving.scoring.frames`), so both engines
give the same results. pyspark is imported lazily, only by the jobs that run on Spark.
"""

from enum import StrEnum


class Engine(StrEnum):
    """Where a job runs: `local` (this process, DuckDB and pandas) or `spark`."""

    local = "local"
    spark = "spark"
