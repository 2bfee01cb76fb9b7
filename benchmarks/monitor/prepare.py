"""The benchmark's inputs: champions trained on the demo-size simulation, then its snapshots
and lake replicated to about a million members.

Step `world` runs the demo's jobs (20,000 members over 730 days from 2024-01-01, seed 42; 24
snapshots 28 days apart; churn, activation and clv trained every 28 days and promoted; clv over
the demo's 180 days) into `<work>/demo`. Step `replicate` copies every snapshot and the lake's
members and orders `--copies` times into `<work>/1m`, the member ids suffixed `-<copy>` (the
rows, values and dates are the demo's: the monitor's work grows with the rows, not with how
they were drawn). The registry stays in `<work>/demo`.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.monitor.prepare \\
        --work /tmp/monitor-bench --steps world,replicate
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd
import pyarrow.parquet as pq

from memberscore.settings import Settings

CLV_HORIZON_DAYS = 180  # as the demo: two years leave too few cutoffs for a 365-day horizon
MODELS = ("churn", "activation", "clv")


def settings_for(work: Path, data: str) -> Settings:
    """Settings over `<work>/<data>` with the registry of `<work>/demo`."""
    registry = work / "demo"
    return Settings(
        data_dir=work / data,
        feast_repo=work / data / "feature_repo",
        mlflow_tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
        mlflow_artifact_root=registry / "mlartifacts",
        clv_horizon_days=CLV_HORIZON_DAYS,
    )


def world(work: Path) -> None:
    """Simulate, ingest, build the snapshots, apply Feast, train and promote the champions."""
    from features import build, store
    from memberscore.contract import TABLES
    from pipelines import demo, simulate
    from pipelines.ingest import tables as ingest
    from training import tracking
    from training.core.tasks import get_task
    from training.jobs import train as job

    settings = settings_for(work, "demo")
    print(simulate.run(settings, members=demo.DEMO_MEMBERS, days=demo.DEMO_DAYS,
                       seed=settings.seed, start=demo.DEMO_START).describe())  # fmt: skip
    for name in TABLES:
        source = str(settings.raw_dir / f"{name}.parquet")
        print(ingest.ingest(settings, name, source, currency=settings.currency).describe())
    build.run(settings, demo.cutoffs(), echo=print)
    store.apply(settings)
    for name in MODELS:
        plan, frame = job.prepare(
            settings, get_task(name), every_days=demo.SNAPSHOT_EVERY_DAYS, progress=print
        )
        report = job.train(settings, plan, frame, progress=print)
        print(tracking.promote(settings, report.record.model_name, force=True,
                               reason="benchmark champion").describe())  # fmt: skip


def replicate(work: Path, copies: int) -> None:
    """Every snapshot and the lake's members and orders, `copies` times, ids suffixed."""
    from memberscore import lake
    from memberscore.contract import MEMBERS, ORDERS

    source, target = settings_for(work, "demo"), settings_for(work, "1m")
    target.snapshots_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.snapshots_dir.glob("snapshot-*.parquet")):
        table = pq.read_table(path).to_pandas()
        pq.write_table(
            _copies(table, copies, "member_id").pipe(_arrow), target.snapshots_dir / path.name
        )
        print(f"{path.name}: {len(table) * copies:,} rows")
    for spec in (MEMBERS, ORDERS):
        frame = lake.read(source.lake_dir, spec)
        frame = _copies(frame, copies, "member_id")
        if spec is ORDERS:
            frame["order_id"] = _suffixed(frame["order_id"], len(frame) // copies, copies)
        lake.write(frame, spec, target.lake_dir, "bench")
        print(f"lake {spec.name}: {len(frame):,} rows")


def _suffixed(ids: pd.Series, rows: int, copies: int) -> pd.Series:
    """`ids` (the copies one after the other, `rows` each) with `-<copy>` appended."""
    suffix = pd.Series([f"-{k}" for k in range(copies)]).repeat(rows).to_numpy()
    return ids.astype(str).str.cat(pd.Series(suffix, index=ids.index))


def _copies(frame: pd.DataFrame, copies: int, key: str) -> pd.DataFrame:
    """`frame` `copies` times over, `key` suffixed with the copy number."""
    out = pd.concat([frame] * copies, ignore_index=True)
    out[key] = _suffixed(out[key], len(frame), copies).astype(frame[key].dtype)
    return out


def _arrow(frame: pd.DataFrame) -> object:
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--steps", default="world,replicate")
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    for step in args.steps.split(","):
        started = time.perf_counter()
        world(args.work) if step == "world" else replicate(args.work, args.copies)
        print(f"{step}: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
