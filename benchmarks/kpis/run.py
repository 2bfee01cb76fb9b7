"""Run the KPI benchmark: `memberscore kpis` on the 1M-member lake (targets ≤ 60 s, ≤ 8 GiB).

Inputs: a data dir holding the lake that `benchmarks.kpis.prepare` makes (default
/tmp/ms/kpis/ms1m). The job runs in a child process through the same function as the CLI
(`pipelines.kpis.job.run`); the parent records its wall time, CPU seconds (user + system) and
peak RSS (`os.wait4`). The child reports the job's own seconds (imports excluded) and the size
of what it read. Outputs go under `--out`; the lake is only read.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.kpis.run \\
        [--data-dir /tmp/ms/kpis/ms1m] [--as-of 2025-12-29] [--repeats 1]

Writes `benchmarks/kpis/results.json` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path("/tmp/ms/kpis/ms1m")


def child(data_dir: Path, as_of: date, out: Path) -> None:
    """The timed run: the KPI job as the CLI calls it; prints one JSON line of figures."""
    import duckdb

    from memberscore.settings import Settings
    from pipelines.kpis import job

    settings = Settings(data_dir=data_dir)
    report = job.run(settings, as_of, out)
    con = duckdb.connect()
    sizes = {
        name: con.execute(
            f"SELECT count(*) FROM read_parquet('{settings.lake_dir / name}/*/*.parquet')"
        ).fetchone()[0]  # type: ignore[index]
        for name in ("members", "orders", "events")
    }
    print(report.headline(), file=sys.stderr)
    print(
        json.dumps(
            {
                "job_seconds": report.seconds,
                "months": int((report.monthly["dimension"] == "all").sum()),
                "monthly_rows": len(report.monthly),
                "cohort_rows": len(report.cohorts),
                "lake_rows": sizes,
            }
        ),
        flush=True,
    )


def measure(data_dir: Path, as_of: date, out: Path) -> dict[str, Any]:
    """Run `child` in a fresh interpreter; add wall, CPU and peak RSS of that process."""
    started = datetime.now(UTC)
    command = [sys.executable, "-m", "benchmarks.kpis.run", "--child"]
    command += ["--data-dir", str(data_dir), "--as-of", as_of.isoformat(), "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the KPI job failed; output: {output[-2000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    result.update(
        started=started.isoformat(timespec="seconds"),
        process_seconds=(datetime.now(UTC) - started).total_seconds(),
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_gib=usage.ru_maxrss / 2**20,  # ru_maxrss is in KiB on Linux
        load_average=os.getloadavg()[0],
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 12, 29))
    parser.add_argument("--out", type=Path, default=Path("/tmp/ms/kpis/bench-out"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.data_dir, args.as_of, args.out)
        return
    runs = [measure(args.data_dir, args.as_of, args.out) for _ in range(args.repeats)]
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": "python -m benchmarks.kpis.run " + " ".join(sys.argv[1:]),
        "data_dir": str(args.data_dir),
        "as_of": args.as_of.isoformat(),
        "runs": runs,
    }
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    print("| run | job s | process wall s | CPU s | peak RSS GiB | load |")
    print("|---|---|---|---|---|---|")
    for number, run in enumerate(runs, 1):
        print(
            f"| {number} | {run['job_seconds']:.1f} | {run['process_seconds']:.1f} | "
            f"{run['cpu_seconds']:.1f} | {run['peak_rss_gib']:.2f} | {run['load_average']:.1f} |"
        )


if __name__ == "__main__":
    main()
