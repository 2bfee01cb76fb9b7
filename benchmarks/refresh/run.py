"""Refresh benchmark: a new 1M-member snapshot to every card served, on the production stores.

`memberscore publish-scores` (`pipelines.publish.run`) over a data dir holding the snapshot:
the latest features of every member and its score card (three champions, churn, activation and
clv, plus the BTYD outlook; reason codes for everyone) written to Redis in one pass. The Redis
database (`--redis-db`, flushed first) and the Feast project (`--project`, registry in the local
PostgreSQL) are the benchmark's own. Afterwards `--check` members are read back through the
score API's reader and compared with live answers (`serving.scoring.score.score`), byte for byte;
the live path's rate on the same members is the peer. Writes `results.json`.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.refresh.run \\
        --data-dir /tmp/ms/publish/m1 --registry /tmp/ms/publish/reg
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from memberscore.settings import Settings

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


def settings_for(args: argparse.Namespace) -> Settings:
    """Production profile over `--data-dir`, Redis db `--redis-db`, Feast project
    `--project`, models from the registry folder `--registry`."""
    registry = Path(args.registry)
    data = Path(args.data_dir)
    return Settings(
        data_dir=data,
        feast_repo=data / "feature_repo_refresh",
        feast_project=args.project,
        profile="production",
        redis_url=f"127.0.0.1:6379,db={args.redis_db}",
        mlflow_tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
        mlflow_artifact_root=registry / "mlartifacts",
        batch_workers=args.workers,
        clv_horizon_days=180,
    )


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def tree_rss_gib() -> float:
    """Resident memory of this process and its children (the worker processes) now, GiB."""
    own = os.getpid()
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        if pid == own or int(fields[1]) == own:  # fields[1]: the parent's pid
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: rss in pages
    return total / 2**30


class TreePeak:
    """The largest `tree_rss_gib` seen, sampled every `seconds` on a thread while open."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds, self.peak = seconds, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_gib())
            self._stop.wait(self.seconds)


def cpu_seconds() -> float:
    """User + system CPU time of this process and its threads so far (s); the worker
    processes' is added once they have ended (`RUSAGE_CHILDREN`)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def redis_figures(settings: Settings) -> dict[str, float]:
    """Redis server CPU seconds so far and the memory it holds (GiB)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    cpu, memory = client.info("cpu"), client.info("memory")
    return {
        "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        "memory_gib": float(memory["used_memory"]) / 2**30,
    }


def flush(settings: Settings, db: int) -> None:
    """Empty the benchmark's own Redis database."""
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def check(settings: Settings, count: int) -> dict[str, Any]:
    """Read `count` members (spread over the id range) back with the score API's reader: their
    cards must be current and byte-identical to live answers; times the live path."""
    import duckdb

    from features.store import snapshot_glob
    from serving.online.feast_reader import FeastReader
    from serving.scoring.adapters import open_domain
    from serving.scoring.cards import card_key
    from serving.scoring.registry import RegistrySource
    from serving.scoring.score import score

    query = "SELECT DISTINCT member_id FROM read_parquet(?) ORDER BY member_id"
    with duckdb.connect() as con:
        ids = [str(row[0]) for row in con.execute(query, [snapshot_glob(settings)]).fetchall()]
    sample = ids[:: max(1, len(ids) // count)][:count]
    bundle = RegistrySource(settings).load()
    reader = FeastReader(settings)
    key = card_key(bundle, settings)
    cards = reader.published(sample)
    features = reader.read(sample, ())
    started = time.perf_counter()
    live = score(sample, features, bundle, open_domain(settings), settings).scores
    live_s = time.perf_counter() - started
    same = sum(
        1
        for card in live
        if card.member_id in cards
        and cards[card.member_id].current(key)
        and cards[card.member_id].card == card.model_dump_json()
    )
    return {
        "checked": len(sample),
        "current_and_equal_to_live": same,
        "live_path_members_per_s": round(len(sample) / live_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/ms/publish/m1")
    parser.add_argument("--registry", default="/tmp/ms/publish/reg", help="folder of mlflow.db")
    parser.add_argument("--project", default="refresh_bench")
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--check", type=int, default=2_000)
    args = parser.parse_args()

    from features import store
    from pipelines import publish

    settings = settings_for(args)
    flush(settings, args.redis_db)
    store.write_config(settings)
    _, apply_s = timed(lambda: store.apply(settings))
    redis_before, cpu_before = redis_figures(settings), cpu_seconds()
    snapshot = store.snapshot_files(settings)[-1]
    started_at = datetime.now(UTC)
    with TreePeak() as tree:
        report, publish_s = timed(
            lambda: publish.run(
                settings,
                chunk_members=args.chunk,
                progress=lambda line: print(line, flush=True),
                force=True,  # the store was flushed: every part, whatever an earlier run did
            )
        )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_seconds() - cpu_before + children.ru_utime + children.ru_stime
    rss, redis_after = peak_rss_gib(), redis_figures(settings)
    results: dict[str, Any] = {
        "date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python "
        f"{platform.python_version()}",
        "snapshot": snapshot.name,
        "members": report.members,
        "parts": report.parts,
        "workers": args.workers,
        "chunk_members": args.chunk,
        "models": dict(report.models),
        "apply_s": round(apply_s, 1),
        "publish_s": round(publish_s, 1),
        "members_per_s": round(report.members / publish_s),
        "publish_cpu_s": round(cpu, 1),
        "peak_rss_gib": round(tree.peak, 2),
        "parent_peak_rss_gib": round(rss, 2),
        "worker_peak_rss_gib": round(children.ru_maxrss / 2**20, 2),
        "redis_cpu_s": round(redis_after["cpu_s"] - redis_before["cpu_s"], 1),
        "redis_memory_gib": round(redis_after["memory_gib"], 2),
    }
    print(json.dumps(results, indent=2), flush=True)
    if args.check:
        results["check"] = check(settings, args.check)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def timed(step: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


if __name__ == "__main__":
    main()
