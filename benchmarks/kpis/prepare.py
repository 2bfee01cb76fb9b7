"""Make the lake of the KPI benchmark: the feature benchmark's 1M-member simulation.

Same simulation as `benchmarks/features` (docs/benchmarks.md, "Features"): `memberscore
simulate --members 1000000 --days 730 --seed 42 --start 2024-01-01`. The four raw tables are
then copied into the lake with one DuckDB `COPY ... PARTITION_BY (month)` each, the way that
benchmark wrote its 96M events: the simulator's rows are canonical already, and ingest's
row-by-row validation of 96M events would take ~25 min. A simulation already under
`<work>/raw` is reused.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.kpis.prepare \\
        [--work /tmp/ms/kpis/ms1m] [--members 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from memberscore import lake
from memberscore.contract import TABLES
from memberscore.settings import Settings

DEFAULT_WORK = Path("/tmp/ms/kpis/ms1m")


def simulate(settings: Settings, members: int, days: int, seed: int, start: date) -> None:
    """Run the simulator unless all four raw tables are already there."""
    from pipelines import simulate as job

    if all((settings.raw_dir / f"{name}.parquet").exists() for name in TABLES):
        print(f"reusing the simulation under {settings.raw_dir}", flush=True)
        return
    summary = job.run(settings, members=members, days=days, seed=seed, start=start)
    print(summary.describe(), flush=True)


def copy_to_lake(settings: Settings) -> None:
    """Each raw table into `<lake>/<table>/month=YYYY-MM/` (the lake layout), replacing it."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    for name, spec in TABLES.items():
        began = time.perf_counter()
        target = lake.table_dir(settings.lake_dir, spec)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = str(settings.raw_dir / f"{name}.parquet").replace("'", "''")
        columns = ", ".join(f'"{c}"' for c in spec.names)
        con.execute(
            f"COPY (SELECT {columns}, strftime({spec.time_column}, '%Y-%m') AS month "
            f"FROM read_parquet('{source}')) TO '{target}' (FORMAT parquet, PARTITION_BY (month))"
        )
        print(f"lake: {name} in {time.perf_counter() - began:.0f} s", flush=True)
    lake.record_currency(settings.lake_dir, settings.currency)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="Data dir to fill.")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    args = parser.parse_args(argv)
    settings = Settings(data_dir=args.work)
    simulate(settings, args.members, args.days, args.seed, args.start)
    copy_to_lake(settings)


if __name__ == "__main__":
    main()
