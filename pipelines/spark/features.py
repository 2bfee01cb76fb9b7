"""Job: feature snapshots on Spark (`memberscore features build --engine spark`).

The same feature logic as the local engine, distributed by member: the four lake tables are
unioned into one tagged frame and partitioned by range of `member_id` into
`settings.spark_shuffle_partitions` parts; each part runs `features.snapshot.member_features`
(DuckDB inside) on its own members' rows. The population statistics (`features.families.population`)
are computed on the driver from the few columns they read of every member, then every part
is finished with `population_features`. The driver writes one Parquet file per cutoff, sorted
by member, with the local engine's schema at the local engine's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date
from functools import reduce
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa

from features.catalog import PANDAS_DTYPES, all_features
from features.families.population import INPUT_COLUMNS, PopulationStats, population_stats
from features.snapshot import (
    AS_OF,
    JOIN_KEY,
    conform_members,
    member_columns,
    member_features,
    population_features,
    register_frames,
)
from features.store import snapshot_path
from memberscore import lake
from memberscore.contract import CONSENTS, MEMBERS, ORDERS, TABLES, TIMESTAMP_DTYPE, Table, empty
from memberscore.settings import Settings
from pipelines.spark.collect import write_parquet
from pipelines.spark.session import spark_schema, spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The columns of each table the feature SQL reads; only these cross the shuffle, the others
# are null in the parts (the Spark-equals-local test guards this list).
COLUMNS_READ: dict[str, tuple[str, ...]] = {
    "members": (
        "member_id",
        "registered_at",
        "acquisition_channel",
        "region",
        "gender",
        "birth_year",
        "consent_marketing",
        "consent_personalization",
        "is_derived",
    ),
    "orders": (
        "member_id",
        "order_id",
        "ordered_at",
        "amount",
        "discount",
        "channel",
        "coupon_id",
        "is_return",
    ),
    "events": ("member_id", "occurred_at", "event_type", "value"),
    "contacts": ("member_id", "sent_at", "channel", "responded_at"),
}
TABLE_TAG = "_table"


def snapshot_columns() -> dict[str, str]:
    """Columns and pandas dtypes of a finished snapshot, in file order."""
    columns = {JOIN_KEY: "string", AS_OF: TIMESTAMP_DTYPE}
    return columns | {f.name: PANDAS_DTYPES[f.dtype] for f in all_features()}


def snapshot_schema() -> pa.Schema:
    """The Arrow schema of a snapshot file as the local engine writes it (pandas metadata
    included, so readers get the catalog dtypes back)."""
    frame = pd.DataFrame({c: pd.Series(dtype=d) for c, d in snapshot_columns().items()})
    return pa.Schema.from_pandas(frame, preserve_index=False)


def lake_table(spark: SparkSession, settings: Settings, spec: Table) -> DataFrame:
    """The columns `COLUMNS_READ` of a lake table (empty if nothing is stored yet)."""
    from pyspark.sql import functions as F

    dtypes = empty(spec).dtypes
    schema = spark_schema({c: str(dtypes[c]) for c in COLUMNS_READ[spec.name]})
    if not lake.has_table(settings.lake_dir, spec):
        return spark.createDataFrame([], schema)
    frame = spark.read.parquet(str(lake.table_dir(settings.lake_dir, spec).resolve()))
    return frame.select(*(F.col(f.name).cast(f.dataType) for f in schema.fields))


def co_partitioned(tables: dict[str, DataFrame], parts: int) -> DataFrame:
    """One frame of every table's rows, tagged with the table's index in `TABLES`, in `parts`
    partitions by range of `member_id`: each member's rows in one partition, and the
    partitions in member order (so the output needs no second sort)."""
    from pyspark.sql import functions as F

    names = list(TABLES)
    tagged = [f.withColumn(TABLE_TAG, F.lit(names.index(n)).cast("int")) for n, f in tables.items()]
    union = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)
    return union.repartitionByRange(parts, JOIN_KEY)


def split_tables(part: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The canonical frame of each table from one co-partitioned part (contract dtypes, rows
    sorted by member, time and key; the columns the features do not read are null)."""
    out = {}
    for index, (name, spec) in enumerate(TABLES.items()):
        rows = part[part[TABLE_TAG] == index]
        frame = empty(spec).reindex(range(len(rows)))
        for column in COLUMNS_READ[name]:
            values = rows[column].reset_index(drop=True)
            dtype = frame[column].dtype
            if str(dtype) == TIMESTAMP_DTYPE:
                values = pd.to_datetime(values, utc=True)
            frame[column] = values.astype(dtype)
        # Spark's shuffle delivers rows in no fixed order; sorted, a part sums its floats in
        # the same order every run.
        out[name] = frame.sort_values([JOIN_KEY, spec.time_column, spec.key], ignore_index=True)
    return out


def member_part(
    as_of: pd.Timestamp,
    tier_thresholds: tuple[tuple[str, float], ...],
    consents: pd.DataFrame | None = None,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function computing `member_features` of one partition's members (it
    gathers the partition's batches first: a member's rows may span batches). `consents`,
    the lake's consent changes (a small table, shipped whole to every partition), set the
    profile's consent flags as the local engine's do."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        part = pd.concat(list(batches), ignore_index=True)
        if part.empty:
            return
        tables = split_tables(part)
        del part
        with duckdb.connect() as con:
            register_frames(con, **tables)
            if consents is not None:
                con.register("consents", consents)
            yield member_features(con, as_of, tier_thresholds=tier_thresholds)

    return run


def finish_part(
    stats: PopulationStats, as_of: pd.Timestamp
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function finishing member batches with `population_features`."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield population_features(conform_members(batch), stats, as_of)

    return run


def snapshot_frame(spark: SparkSession, settings: Settings, day: date) -> DataFrame:
    """The snapshot of cutoff `day` (00:00 UTC) as a Spark frame sorted by member."""
    lake.require(settings.lake_dir, MEMBERS)
    lake.require(settings.lake_dir, ORDERS)
    as_of = pd.Timestamp(day, tz="UTC")
    tables = {name: lake_table(spark, settings, spec) for name, spec in TABLES.items()}
    union = co_partitioned(tables, settings.spark_shuffle_partitions)
    consents = lake.read(settings.lake_dir, CONSENTS)  # empty while none was ingested
    compute = member_part(as_of, tuple(settings.tier_thresholds), consents)
    members = union.mapInPandas(compute, spark_schema(member_columns())).persist()
    population = members.select(JOIN_KEY, *INPUT_COLUMNS).toPandas()
    # In member order, as the local engine holds them: model fits sum floats in row order.
    dtypes = member_columns()
    population = population.sort_values(JOIN_KEY, ignore_index=True)
    population = population.astype({c: dtypes[c] for c in population.columns})
    finish = finish_part(population_stats(population), as_of)
    return members.mapInPandas(finish, spark_schema(snapshot_columns()))


def run(
    settings: Settings,
    cutoff_dates: Sequence[date],
    *,
    echo: Callable[[str], None] = print,
) -> list[Path]:
    """Compute and store the snapshot of every cutoff on Spark; returns the files written."""
    spark = spark_session(settings)
    written = []
    for day in cutoff_dates:
        started = perf_counter()
        frame = snapshot_frame(spark, settings, day)
        path = snapshot_path(settings, day)
        rows = write_parquet(frame, path, snapshot_schema())
        spark.catalog.clearCache()
        written.append(path)
        echo(f"{day}: {rows:,} members -> {path} ({perf_counter() - started:.1f} s, spark)")
    return written
