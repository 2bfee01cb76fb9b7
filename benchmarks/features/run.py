"""Run the feature benchmark of issue 3: build, materialize and historical retrieval at 1M.

Inputs: a data dir holding the 1M-member lake and its snapshot (`--source`, default /tmp/ms1m,
see docs/benchmarks.md for how it was made). Every step runs in a child process; the parent
records its wall time and peak RSS (`os.wait4`), CPU seconds (user + system) and the step's own
figures. Work folders go under `--work`; the source is only read.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.features.run \\
        [--source /tmp/ms1m] [--as-of 2025-12-29] [--steps build,materialize,stock,retrieval]

Writes `benchmarks/features/results.json` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
ROOT = Path(__file__).resolve().parents[2]
STEPS = ("build", "materialize", "stock", "retrieval")


def child(step: str, **kwargs: Any) -> dict[str, Any]:
    """Run `steps.<step>(**kwargs)` in a fresh interpreter; add wall, CPU and peak RSS."""
    payload = json.dumps({"step": step, "kwargs": kwargs}, default=str)
    started = datetime.now(UTC)
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.features.run", "--child", payload],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"step {step} failed (exit {process.returncode}); output: {out[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        step=step,
        process_seconds=(datetime.now(UTC) - started).total_seconds(),
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_gib=result.get("peak_rss_gib_vmhwm", usage.ru_maxrss / 2**20),
    )
    print(json.dumps(result), flush=True)
    return result


def run_child(payload: str) -> None:
    """Child side: run one step and print its figures as the last line of JSON."""
    from benchmarks.features import steps

    request = json.loads(payload)
    kwargs = {k: Path(v) if k == "work" else v for k, v in request["kwargs"].items()}
    if "as_of" in kwargs:
        kwargs["as_of"] = date.fromisoformat(kwargs["as_of"])
    result = getattr(steps, request["step"])(**kwargs)
    result["peak_rss_gib_vmhwm"] = peak_rss_gib()
    print(json.dumps(result, default=str), flush=True)


def peak_rss_gib() -> float:
    """This process's peak resident set (VmHWM, GiB). Unlike the rusage of a child, it does
    not include the parent's resident set at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no VmHWM in /proc/self/status")


def fresh(folder: Path) -> Path:
    """An empty folder (removed first if it exists)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def snapshot_dir(work: Path, snapshot: Path, members: int | None) -> Path:
    """`work/features/` holding `snapshot` whole, or its first `members` members by id."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = fresh(work) / "features" / snapshot.name
    target.parent.mkdir()
    if members is None:
        os.link(snapshot, target)
    else:
        frame = pd.read_parquet(snapshot).sort_values("member_id").head(members)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), target)
    return work


@contextmanager
def production_project(name: str) -> Iterator[tuple[str, str]]:
    """A PostgreSQL schema for the registry and a Feast project; both removed afterwards."""
    import psycopg

    from memberscore.settings import Settings

    schema = f"{name}_{uuid.uuid4().hex[:8]}"
    url = Settings().postgres_url
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema, schema
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


def drop_redis_project(project: str) -> None:
    """Delete the Redis hashes of a Feast project (keys end with the project name)."""
    import redis

    from memberscore.settings import Settings

    host, _, port = Settings().redis_url.partition(":")
    client = redis.Redis(host=host, port=int(port or 6379))
    batch = []
    for key in client.scan_iter(match=f"*{project}", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def redis_memory_gib() -> float:
    """Memory Redis uses now (GiB)."""
    import redis

    from memberscore.settings import Settings

    host, _, port = Settings().redis_url.partition(":")
    return redis.Redis(host=host, port=int(port or 6379)).info("memory")["used_memory"] / 2**30


def materialize_runs(
    work: Path,
    snapshot: Path,
    members: int | None,
    label: str,
    methods: tuple[str, ...],
    profiles: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Materialize one snapshot (whole or first `members`) with each method and profile."""
    results = []
    folder = snapshot_dir(work / label, snapshot, members)
    for profile in profiles:
        for method in methods:
            tag = f"{label}_{profile}_{method}"
            if profile == "local":
                shutil.rmtree(folder / "feast", ignore_errors=True)
                results.append(_one_materialize(folder, profile, method, tag, None, snapshot))
                continue
            with production_project(f"bench_{method}") as (schema, project):
                before = redis_memory_gib()
                try:
                    result = _one_materialize(
                        folder, profile, method, tag, (schema, project), snapshot
                    )
                    result["redis_used_gib"] = redis_memory_gib() - before
                    results.append(result)
                finally:
                    drop_redis_project(project)
        if profile == "local":
            online = folder / "feast" / "online.db"
            if online.exists():
                results[-1]["sqlite_file_gib"] = online.stat().st_size / 2**30
    return results


def _one_materialize(
    folder: Path,
    profile: str,
    method: str,
    tag: str,
    production: tuple[str, str] | None,
    snapshot: Path,
) -> dict[str, Any]:
    schema, project = production if production else (None, "memberscore")
    if method == "stock":
        result = child(
            "stock_materialize",
            work=folder,
            profile=profile,
            project=project,
            schema=schema,
            as_of=snapshot.stem.removeprefix("snapshot-"),
        )
    else:
        result = child(
            "materialize",
            work=folder,
            profile=profile,
            method=method,
            project=project,
            schema=schema,
            batch_rows=100_000,
        )
    check = child("check_online", work=folder, profile=profile, project=project, schema=schema)
    result.update(label=tag, profile=profile, method=method, read_back_equal=check["all_equal"])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, default=Path("/tmp/ms1m"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/ms1m-bench-features"))
    parser.add_argument("--as-of", default="2025-12-29")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--stock-members", type=int, default=100_000)
    parser.add_argument("--profiles", default="local,production")
    parser.add_argument(
        "--full-profiles",
        default="production",
        help="profiles materialized with every member (SQLite at 1M: ~94M rows, see the docs)",
    )
    parser.add_argument("--snapshot", type=Path, help="snapshot to read (default: the source's)")
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child)
        return
    wanted = set(args.steps.split(","))
    profiles = tuple(args.profiles.split(","))
    results: list[dict[str, Any]] = []
    snapshot = args.snapshot or args.source / "features" / f"snapshot-{args.as_of}.parquet"
    if "build" in wanted:
        work = fresh(args.work / "build")
        (work / "lake").symlink_to((args.source / "lake").resolve())
        results.append(child("build", work=work, as_of=args.as_of) | {"label": "build"})
        snapshot = work / "features" / snapshot.name
    if "stock" in wanted:
        results += materialize_runs(
            args.work,
            snapshot,
            args.stock_members,
            f"sample{args.stock_members // 1000}k",
            ("stock", "feast", "bulk"),
            profiles,
        )
    if "materialize" in wanted:
        full = tuple(args.full_profiles.split(","))
        results += materialize_runs(args.work, snapshot, None, "all", ("bulk",), full)
    if "retrieval" in wanted:
        folder = snapshot_dir(args.work / "retrieval", snapshot, None)
        for service in ("churn_v1", "nba_v1"):
            results.append(
                child("retrieval", work=folder, service=service, offset_hours=36.0)
                | {"label": f"retrieval_{service}"}
            )
    report(results, args)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Write results.json (merged by label with earlier runs) and print a markdown table."""
    previous = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    runs = {r["label"]: r for r in previous.get("runs", [])}
    for result in results:
        result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        result["load_average"] = os.getloadavg()
        result.setdefault("command", "python -m benchmarks.features.run " + " ".join(sys.argv[1:]))
        runs[result["label"]] = result
    RESULTS_PATH.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                f"Python {platform.python_version()}",
                "command": "python -m benchmarks.features.run " + " ".join(sys.argv[1:]),
                "runs": list(runs.values()),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(
        "| run | members/rows | step s | CPU s | peak RSS GiB | notes |\n|---|---|---|---|---|---|"
    )
    for r in results:
        size = r.get("members", r.get("rows"))
        notes = {
            k: r[k]
            for k in ("read_back_equal", "redis_used_gib", "sqlite_file_gib", "rows_with_features")
            if k in r
        }
        print(
            f"| {r['label']} | {size:,} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{r['peak_rss_gib']:.2f} | {notes} |"
        )


if __name__ == "__main__":
    main()
