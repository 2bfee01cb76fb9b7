"""Spark engine benchmark: feature build and batch scoring, local engine vs Spark local[2].

On the same lake and the same models, times `features build` (DuckDB in process, then Spark)
and `batch-score` (local threads, then Spark `mapInPandas`), checks that the engines agree
(snapshot values; part files byte for byte) and writes `results.json`. `--sample K` keeps one
member in K (by a hash of the id) in a copy of the lake, for a smaller run on the same data.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.spark.run \\
        --data-dir /tmp/ms1m --as-of 2025-12-29 --registry /tmp/h1data --sample 10
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import duckdb
import numpy as np
import pandas as pd

from memberscore.contract import TABLES
from memberscore.settings import Settings

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


def timed(step: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def sample_lake(source: Path, target: Path, every: int) -> None:
    """Copy the lake at `source` to `target` keeping members whose id hash is 0 modulo
    `every` (all their rows, every table), in the lake's month layout."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, spec in TABLES.items():
        files = source / name / "month=*" / "*.parquet"
        if not any((source / name).glob("month=*/*.parquet")):
            continue
        out = target / name
        out.mkdir(parents=True, exist_ok=True)
        columns = ", ".join(f'"{c}"' for c in spec.names)
        con.execute(
            f"COPY (SELECT {columns}, strftime({spec.time_column}, '%Y-%m') AS month "
            f"FROM read_parquet('{files}', hive_partitioning = false, union_by_name = true) "
            f"WHERE hash(member_id) % {every} = 0) TO '{out}' "
            "(FORMAT parquet, PARTITION_BY (month), OVERWRITE_OR_IGNORE)"
        )
    shutil.copy(source / "_dataset.json", target / "_dataset.json")


def compare_snapshots(local: pd.DataFrame, spark: pd.DataFrame) -> dict[str, Any]:
    """Whether the snapshots agree: same members, exact non-float columns, float gap."""
    floats = [c for c in local.columns if local[c].dtype == "float64"]
    exact = [c for c in local.columns if c not in floats]
    same_rows = local["member_id"].equals(spark["member_id"])
    differing = [c for c in exact if not local[c].equals(spark[c])] if same_rows else exact
    gap = 0.0
    if same_rows:
        a, b = local[floats].to_numpy(), spark[floats].to_numpy()
        both = ~(np.isnan(a) & np.isnan(b))
        gap = float(np.nanmax(np.abs(a - b)[both] / np.maximum(np.abs(a[both]), 1.0)))
    return {
        "same_members": bool(same_rows),
        "differing_exact_columns": differing,
        "max_relative_float_gap": gap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/ms1m")
    parser.add_argument("--as-of", default="2025-12-29")
    parser.add_argument("--registry", default="/tmp/h1data", help="folder with mlflow.db")
    parser.add_argument("--work", default="/tmp/memberscore-spark-bench")
    parser.add_argument("--sample", type=int, default=1, help="keep one member in K")
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--chunk-rows", type=int, default=125_000)
    parser.add_argument("--skip-features", action="store_true", help="score the existing snapshot")
    parser.add_argument("--results", default=str(RESULTS_PATH), help="JSON file to write")
    args = parser.parse_args()

    from features import build
    from pipelines.batch import job as batch
    from pipelines.spark import features as spark_features
    from pipelines.spark.session import spark_session
    from serving.scoring.registry import RegistrySource

    work, as_of = Path(args.work), date.fromisoformat(args.as_of)
    shutil.rmtree(work, ignore_errors=True)
    data_dir = Path(args.data_dir)
    figures: dict[str, Any] = {}
    if args.sample > 1:
        _, figures["sample_lake_s"] = timed(
            lambda: sample_lake(data_dir / "lake", work / "data" / "lake", args.sample)
        )
        data_dir = work / "data"
    registry = Path(args.registry)
    settings = Settings(
        data_dir=data_dir,
        mlflow_tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
        mlflow_artifact_root=registry / "mlartifacts",
        chunk_rows=args.chunk_rows,
        spark_shuffle_partitions=args.partitions,
        spark_driver_memory="4g",
    )
    spark, figures["spark_session_start_s"] = timed(lambda: spark_session(settings))
    spark.sparkContext.setLogLevel("ERROR")
    if not args.skip_features:
        [path], figures["features_local_s"] = timed(lambda: build.run(settings, [as_of]))
        local_snapshot = pd.read_parquet(path)
        path.rename(path.with_suffix(".local"))
        _, figures["features_spark_s"] = timed(lambda: spark_features.run(settings, [as_of]))
        figures["members"] = len(local_snapshot)
        figures["features_agree"] = compare_snapshots(local_snapshot, pd.read_parquet(path))
        del local_snapshot
    bundle = RegistrySource(settings).load()
    runs = {}
    for engine in ("local", "spark"):
        out = work / f"batch-{engine}"
        started = time.perf_counter()
        summary = batch.run(
            settings,
            as_of,
            out,
            engine=engine,
            bundle=bundle,
            reasons=0,
            progress=False,
            report=False,
        )
        figures[f"batch_{engine}_s"] = time.perf_counter() - started
        figures["scored_members"] = summary.members
        runs[engine] = {p.name: p.read_bytes() for p in sorted(out.glob("part-*.parquet"))}
    figures["batch_parts_identical"] = runs["local"] == runs["spark"]
    spark.stop()
    figures["driver_peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    figures["largest_child_peak_rss_gib"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    )
    for step in ("features", "batch"):
        if f"{step}_local_s" in figures:
            figures[f"{step}_spark_over_local"] = (
                figures[f"{step}_spark_s"] / figures[f"{step}_local_s"]
            )
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, 2 cores (shared), 24 GiB",
        "command": " ".join(sys.argv),
        "data_dir": args.data_dir,
        "sample_every": args.sample,
        "spark_master": settings.spark_master,
        "partitions": args.partitions,
        **figures,
    }
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
