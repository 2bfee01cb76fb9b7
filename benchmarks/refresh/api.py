"""Score API latency while a refresh runs: one-member score calls at a fixed rate against
`memberscore serve` (production profile, Redis) before, during and after `memberscore
publish-scores` of a new snapshot cutoff.

The data dir must hold a published run (`benchmarks.refresh.run` leaves one): the new cutoff is
the latest snapshot copied with `as_of` moved to `--cutoff` (same values, new cards), so during
the refresh a member not yet rewritten is answered from its previous card and a member
rewritten from its new one. The refresh runs as the CLI command an operator would run, in a
child process under `nice -n --nice` (the API keeps its priority); its wall time and the peak
RSS of its process tree (its worker processes included, sampled every 0.5 s) are
recorded; its own last line gives its exact time. Latency is
measured from each call's scheduled start (`benchmarks.api.load.fixed_rate`, open loop). Writes
`results-api.json`.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.refresh.api \\
        --data-dir /tmp/ms/publish/m1 --registry /tmp/ms/publish/reg --cutoff 2026-01-07
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from benchmarks.api import load, servers
from benchmarks.refresh.run import settings_for
from memberscore.settings import Settings

RESULTS_PATH = Path(__file__).resolve().parent / "results-api.json"
API_KEY = "refresh-bench-read-key"


def environment(settings: Settings, args: argparse.Namespace) -> dict[str, str]:
    """MEMBERSCORE_* variables giving the server and the refresh the benchmark's settings."""
    key_hash = hashlib.sha256(API_KEY.encode()).hexdigest()
    serving = {"api_keys": [[key_hash, "read"]], "model_poll_seconds": 600}
    return servers.child_env(
        {
            "MEMBERSCORE_DATA_DIR": str(settings.data_dir),
            "MEMBERSCORE_FEAST_REPO": str(settings.feast_repo),
            "MEMBERSCORE_FEAST_PROJECT": settings.feast_project,
            "MEMBERSCORE_PROFILE": "production",
            "MEMBERSCORE_REDIS_URL": settings.redis_url,
            "MEMBERSCORE_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "MEMBERSCORE_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
            "MEMBERSCORE_CLV_HORIZON_DAYS": str(settings.clv_horizon_days),
            "MEMBERSCORE_BATCH_WORKERS": str(args.workers),
            "MEMBERSCORE_SERVING": json.dumps(serving),
        }
    )


def new_cutoff(settings: Settings, cutoff: date) -> Path:
    """The latest snapshot copied as the snapshot of `cutoff` (its `as_of` moved there)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from features.store import snapshot_files, snapshot_path

    target = snapshot_path(settings, cutoff)
    if target.is_file():
        return target
    table = pq.read_table(snapshot_files(settings)[-1])
    stamp = pa.scalar(datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC))
    position = table.schema.get_field_index("as_of")
    moved = pc.cast(pa.array([stamp.as_py()] * table.num_rows), table.schema.field("as_of").type)
    pq.write_table(table.set_column(position, "as_of", moved), target)
    return target


def member_ids(settings: Settings, count: int, seed: int = 0) -> list[str]:
    """`count` member ids of the snapshots, shuffled."""
    import pyarrow.parquet as pq

    from features.store import snapshot_files

    ids = pq.read_table(snapshot_files(settings)[-1], columns=["member_id"])["member_id"]
    chosen = [str(m) for m in ids.to_pylist()]
    random.Random(seed).shuffle(chosen)
    return chosen[:count]


def descendants_rss_gib(root: int) -> float:
    """Resident memory of process `root` and all its descendants now (GiB)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], rss[pid] = int(fields[1]), int(fields[21])
    tree, grown = {root}, True
    while grown:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grown = bool(found)
    return sum(rss.get(pid, 0) for pid in tree) * os.sysconf("SC_PAGE_SIZE") / 2**30


def window(targets: dict[str, tuple[str, int]], call: load.Call, rate: float, s: float) -> Any:
    """One fixed-rate window of `s` seconds."""
    return asyncio.run(load.fixed_rate(targets, call, rate, int(rate * s) + 1, s))


def summary(results: list[load.Result]) -> dict[str, Any]:
    """Percentiles over the calls of several windows, and the worst window's p99."""
    ms = np.asarray([x for r in results for x in r.latencies]) * 1000
    windows = [r.summary() for r in results]
    return {
        "windows": len(results),
        "calls": int(len(ms) + sum(r.errors for r in results)),
        "errors": int(sum(r.errors for r in results)),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "worst_window_p99_ms": max((w["p99_ms"] or 0.0) for w in windows) if windows else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/ms/publish/m1")
    parser.add_argument("--registry", default="/tmp/ms/publish/reg")
    parser.add_argument("--project", default="refresh_bench")
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="refresh worker processes")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--cutoff", type=date.fromisoformat, default=date(2026, 1, 7))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per window")
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args()

    settings = settings_for(args)
    new_cutoff(settings, args.cutoff)
    ids = member_ids(settings, 50_000)
    headers = {"X-API-Key": API_KEY}

    async def one(conns: dict[str, load.Connection], i: int) -> None:
        await conns["api"].request("GET", f"/v1/members/{ids[i % len(ids)]}/scores", None, headers)

    env = environment(settings, args)
    port = servers.free_port()
    command = servers.memberscore_command(port, args.api_workers)
    log = settings.data_dir / "logs" / "refresh-api.log"
    started_at = datetime.now(UTC)
    with servers.running("memberscore", command, env, port, "/readyz", log):
        targets = {"api": (servers.HOST, port)}
        window(targets, one, args.rate, 5.0)  # warm-up
        before = [window(targets, one, args.rate, args.window)]
        refresh = [
            "nice", "-n", str(args.nice), str(servers.BIN / "memberscore"), "publish-scores",
        ]  # fmt: skip
        began = time.perf_counter()
        child = subprocess.Popen(refresh, env=env, stdout=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(child.stdout or []), daemon=True)
        reader.start()
        peak = [0.0]

        def sample() -> None:
            while child.poll() is None:
                peak[0] = max(peak[0], descendants_rss_gib(child.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        during = []
        while child.poll() is None:
            during.append(window(targets, one, args.rate, args.window))
        refresh_s = time.perf_counter() - began  # to the end of the window it ended in
        sampler.join()
        reader.join(timeout=5)
        after = [window(targets, one, args.rate, args.window)]
    results = {
        "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "rate": args.rate,
        "api_workers": args.api_workers,
        "refresh_workers": args.workers,
        "refresh_nice": args.nice,
        "refresh_exit": child.returncode,
        "refresh_s_window_bound": round(refresh_s, 1),
        "refresh_peak_rss_gib_sampled": round(peak[0], 2),
        "refresh_last_line": lines[-1].strip() if lines else None,
        "before": summary(before),
        "during": summary(during),
        "after": summary(after),
    }
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
