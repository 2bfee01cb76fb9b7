"""`memberscore monitor` at about a million members: the whole job (load the champions, read
the latest snapshot and the lake, sample the training snapshots, score, matured figures, HTML
report, MLflow run) on the replicated data of `benchmarks.monitor.prepare`. Writes
`results.json` with the wall time of each step (from the job's progress lines), peak memory
and what the run found: under "cold" for a run with `--cold` (the first run on a version, which
also scores the training snapshots for the score's reference), else under "warm".

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.monitor.run \\
        --work /tmp/monitor-bench --cold
    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.monitor.run \\
        --work /tmp/monitor-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyarrow.parquet as pq

from benchmarks.monitor.prepare import settings_for
from memberscore.settings import Settings

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
TARGET_SECONDS = 60.0


def cpu_seconds() -> float:
    """User + system CPU of this process, its threads and finished children so far (s)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def forget_references(settings: Settings) -> None:
    """Delete tag `score_reference` from the champion of each monitored model."""
    from pipelines.monitor.champions import MONITORED, REFERENCE_TAG
    from training import tracking

    client = tracking.client(settings, create=False)
    for name in MONITORED:
        version = tracking.aliased(client, name, tracking.CHAMPION)
        if version is not None and REFERENCE_TAG in (version.tags or {}):
            client.delete_model_version_tag(name, version.version, REFERENCE_TAG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--data", default="1m", help="Folder under --work holding the data.")
    parser.add_argument("--no-write", action="store_true", help="Do not write results.json.")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="Drop the champions' recorded score references first, as before the first "
        "monitor run of a version (their training snapshots are scored again).",
    )
    args = parser.parse_args()
    settings = settings_for(args.work, args.data)
    if args.cold:
        forget_references(settings)
    latest = sorted(settings.snapshots_dir.glob("snapshot-*.parquet"))[-1]
    members = pq.ParquetFile(latest).metadata.num_rows
    steps: list[tuple[float, str]] = []
    started = time.perf_counter()

    def progress(line: str) -> None:
        steps.append((round(time.perf_counter() - started, 1), line))
        print(f"[{steps[-1][0]:6.1f} s] {line}", flush=True)

    from pipelines.monitor import job

    report = job.run(settings, progress=progress)
    seconds = time.perf_counter() - started
    print(report.headline())
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python "
        f"{platform.python_version()}",
        "members": members,
        "snapshot": latest.name,
        "sample_rows": settings.monitor.sample_rows,
        "cold": args.cold,
        "seconds": round(seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "met": seconds <= TARGET_SECONDS,
        "cpu_seconds": round(cpu_seconds(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "steps": steps,
        "models": {n: c.version for n, c in report.checks.items()},
        "reference_cutoffs": {n: len(c.reference_cutoffs) for n, c in report.checks.items()},
        "drifted": report.drifted,
        "findings": [f.text for f in report.findings],
    }
    print(json.dumps({k: v for k, v in results.items() if k != "steps"}, indent=2))
    if not args.no_write:
        kept = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
        kept["cold" if args.cold else "warm"] = results
        RESULTS_PATH.write_text(json.dumps(kept, indent=2) + "\n")


if __name__ == "__main__":
    main()
