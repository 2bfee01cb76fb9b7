"""Score API latency and throughput on loopback, beside Feast's feature server + MLflow's model
server doing the same work in sequence.

Builds (or reuses) a small trained store, then for each system: warm-up; one member at a fixed
200 calls/s; one member with `--concurrency` callers back to back (throughput); a rate sweep
for the highest rate holding p99 <= 50 ms; 100 members per call, one caller. memberscore is
measured twice: scoring live (no published cards: the store's cards view is withdrawn first)
and after `publish-scores` (timed) from the published cards. Prints a markdown table and
writes `benchmarks/api/results.json`. Run heavy: wrap it in the shared lock.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.api.run [--workers 2]

memberscore: `GET /v1/members/{id}/scores` (1 member) and `POST /v1/scores` (100): churn for
every registered horizon, activation, spend/CLV intervals, reasons (SHAP), stage, tags. Then
next-best action (`GET /v1/members/{id}/next-best-action`, `POST /v1/next-best-action` with
100 members: scores, guardrails over the contact log and consent register, learned uplift):
one member at 100 calls/s, 100 members per call, and one-member score calls at 100 calls/s
alone and beside 100-member next-best-action calls (`nba_scenarios`).
Peers: `POST /get-online-features` (feature service churn_v1) on `feast serve`, then
`POST /invocations` of `churn@champion` (pyfunc) on `mlflow models serve` with those features:
one model and no reasons, stage or intervals, so the peers do less work per call.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.api import load, servers
from benchmarks.api.store import Store, build, has_uplift, mark_uplift, train_uplift

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results.json"
API_KEY = "apibench-read-key"
BATCH = 100
NBA_RATE = 100  # calls/s of the next-best-action steps
SWEEP = (25, 50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1500, 2000)


def member_ids(store: Store, seed: int) -> list[str]:
    """Ids the online store knows (the latest snapshot's members), shuffled."""
    from features.store import latest_snapshot

    ids = latest_snapshot(store.settings())["member_id"].astype(str).tolist()
    random.Random(seed).shuffle(ids)
    return ids


def memberscore_calls(ids: list[str], route: str = "scores") -> tuple[load.Call, load.Call]:
    """One member (GET) and 100 members (POST) on the score API: scores, or next-best action
    (`route="next-best-action"`)."""
    headers = {"X-API-Key": API_KEY}

    async def one(conns: dict[str, load.Connection], i: int) -> None:
        path = f"/v1/members/{ids[i % len(ids)]}/{route}"
        await conns["api"].request("GET", path, None, headers)

    async def batch(conns: dict[str, load.Connection], i: int) -> None:
        chosen = [ids[(i * BATCH + k) % len(ids)] for k in range(BATCH)]
        body = load.json_body({"member_ids": chosen})
        await conns["api"].request("POST", f"/v1/{route}", body, headers)

    return one, batch


def peer_calls(ids: list[str], columns: list[str]) -> tuple[load.Call, load.Call]:
    """Feast's feature server, then MLflow's model server with the features it returned."""

    async def score(conns: dict[str, load.Connection], chosen: list[str]) -> None:
        query = {"feature_service": "churn_v1", "entities": {"member_id": chosen}}
        answer = await conns["feast"].request("POST", "/get-online-features", load.json_body(query))
        found = json.loads(answer)
        names = found["metadata"]["feature_names"]
        values = {
            name: result["values"] for name, result in zip(names, found["results"], strict=True)
        }
        rows = [list(row) for row in zip(*(values[c] for c in columns), strict=True)]
        body = load.json_body({"dataframe_split": {"columns": columns, "data": rows}})
        predictions = json.loads(await conns["mlflow"].request("POST", "/invocations", body))
        if len(predictions["predictions"]) != len(chosen):
            raise ValueError("MLflow answered a different number of rows")

    async def one(conns: dict[str, load.Connection], i: int) -> None:
        await score(conns, [ids[i % len(ids)]])

    async def batch(conns: dict[str, load.Connection], i: int) -> None:
        await score(conns, [ids[(i * BATCH + k) % len(ids)] for k in range(BATCH)])

    return one, batch


def scenarios(
    targets: dict[str, tuple[str, int]], one: load.Call, batch: load.Call, args: argparse.Namespace
) -> dict[str, Any]:
    """Every measurement of one system, each bounded in count and time. Between steps the
    server is let drain (an overloaded step leaves requests queued in it)."""
    scale = 0.2 if args.quick else 1.0

    def run(coro: Any) -> load.Result:
        return asyncio.run(coro)

    def drain() -> None:
        run(load.drain(targets, one, ceiling, 60))

    run(load.closed_loop(targets, one, 4, 300, 20))  # warm-up
    out: dict[str, Any] = {}
    out["one_sequential"] = run(load.closed_loop(targets, one, 1, 1000, 10 * scale)).summary()
    ceiling = 3 * out["one_sequential"]["p50_ms"] / 1000

    def at(rate: float) -> load.Result:
        result = run(load.fixed_rate(targets, one, rate, int(rate * 5 * scale) + 1, 5 * scale))
        drain()
        return result

    held, steps = load.highest_rate(at, SWEEP, p99_ms=50.0)
    out["highest_rate_p99_50ms"], out["sweep"] = held, steps
    out["one_at_200"] = run(load.fixed_rate(targets, one, 200, 4000, 10 * scale)).summary()
    drain()
    out["one_closed"] = run(
        load.closed_loop(targets, one, args.concurrency, 50_000, 10 * scale)
    ).summary()
    drain()
    out["batch100"] = run(load.closed_loop(targets, batch, 1, 400, 15 * scale)).summary()
    return out


def nba_scenarios(
    targets: dict[str, tuple[str, int]],
    scores_one: load.Call,
    nba_one: load.Call,
    nba_batch: load.Call,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Next-best action: one member, one caller and at NBA_RATE calls/s; 100 members per call,
    one caller; and one-member score calls at NBA_RATE calls/s alone, then while one caller
    sends 100-member next-best-action calls back to back (do they raise the others' p99?).
    `scale` shortens every step (the smoke test's 0.2)."""

    def run(coro: Any) -> load.Result:
        return asyncio.run(coro)

    async def beside(seconds: float) -> tuple[load.Result, load.Result]:
        batch = load.closed_loop(targets, nba_batch, 1, 10_000, seconds)
        scores = load.fixed_rate(targets, scores_one, NBA_RATE, 10_000, seconds)
        return await asyncio.gather(scores, batch)

    run(load.closed_loop(targets, nba_one, 2, 100, 10 * scale))  # warm-up
    run(load.closed_loop(targets, nba_batch, 1, 5, 10 * scale))
    out: dict[str, Any] = {}
    out["nba_one_sequential"] = run(load.closed_loop(targets, nba_one, 1, 1000, 10 * scale))
    out["nba_one_at_rate"] = run(load.fixed_rate(targets, nba_one, NBA_RATE, 5000, 10 * scale))
    out["nba_batch100"] = run(load.closed_loop(targets, nba_batch, 1, 400, 15 * scale))
    out["scores_at_rate"] = run(load.fixed_rate(targets, scores_one, NBA_RATE, 5000, 10 * scale))
    out["scores_beside_nba100"], out["nba100_beside_scores"] = asyncio.run(beside(10 * scale))
    return {name: result.summary() for name, result in out.items()}


def withdraw_cards(store: Store) -> None:
    """Unregister the published cards' view, so the server finds none and scores live."""
    from features.store import PUBLISHED_VIEW, feature_store, published_view

    feast = feature_store(store.settings())
    if published_view(feast) is not None:
        feast.delete_feature_view(PUBLISHED_VIEW)


def measure_live(store: Store, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    withdraw_cards(store)
    return measure_memberscore(store, ids, args)


def measure_published(store: Store, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    return {"publish": publish_cards(store), **measure_memberscore(store, ids, args)}


def measure_nba(store: Store, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Only the next-best-action steps, on published cards (`--only nba`)."""
    return {"publish": publish_cards(store), **measure_memberscore(store, ids, args, nba_only=True)}


def publish_cards(store: Store) -> dict[str, Any]:
    """`publish-scores` on the store; cards published and seconds."""
    from pipelines import publish

    report = publish.run(store.settings(), progress=lambda _: None)
    print(report.describe())
    return {"cards": report.published, "seconds": round(report.seconds, 1)}


def measure_memberscore(
    store: Store, ids: list[str], args: argparse.Namespace, nba_only: bool = False
) -> dict[str, Any]:
    port = servers.free_port()
    key_hash = hashlib.sha256(API_KEY.encode()).hexdigest()
    serving = {"api_keys": [[key_hash, "read"]], "model_poll_seconds": 600}
    env = servers.child_env(store.env | {"MEMBERSCORE_SERVING": json.dumps(serving)})
    command = servers.memberscore_command(port, args.workers)
    log = store.root / "logs" / "memberscore.log"
    with servers.running("memberscore", command, env, port, "/readyz", log):
        targets = {"api": (servers.HOST, port)}
        one, batch = memberscore_calls(ids)
        out = {} if nba_only else scenarios(targets, one, batch, args)
        nba_one, nba_batch = memberscore_calls(ids, "next-best-action")
        scale = 0.2 if args.quick else 1.0
        return out | nba_scenarios(targets, one, nba_one, nba_batch, scale)


def measure_peers(store: Store, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    feast_port, mlflow_port = servers.free_port(), servers.free_port()
    settings = store.settings()
    env = servers.child_env(
        store.env | {"MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "OMP_NUM_THREADS": "1"}
    )
    feast = servers.feast_command(settings.feast_repo, feast_port, args.workers)
    mlflow = servers.mlflow_command("models:/churn@champion", mlflow_port, args.workers)
    logs = store.root / "logs"
    with (
        servers.running("feast serve", feast, env, feast_port, "/health", logs / "feast.log"),
        servers.running("mlflow serve", mlflow, env, mlflow_port, "/ping", logs / "mlflow.log"),
    ):
        one, batch = peer_calls(ids, churn_columns(store))
        targets = {"feast": (servers.HOST, feast_port), "mlflow": (servers.HOST, mlflow_port)}
        return scenarios(targets, one, batch, args)


def churn_columns(store: Store) -> list[str]:
    """Input columns of the churn champion's pyfunc signature."""
    import mlflow

    mlflow.set_tracking_uri(store.settings().mlflow_tracking_uri)
    signature = mlflow.models.get_model_info("models:/churn@champion").signature
    return list(signature.inputs.input_names())


def machine() -> dict[str, Any]:
    """CPU, load and versions, for the results table."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{theirs / ours:.1f}×" if ours and theirs else "–"


def table(results: dict[str, Any]) -> str:
    """The markdown rows of docs/benchmarks.md."""
    ours, live, peers = results["published"], results["live"], results["peers"]
    rows = [
        "| measure | memberscore, published cards | memberscore, live | Feast server + MLflow "
        "server | peers / published |"
    ]
    rows.append("|---|---|---|---|---|")

    def add(label: str, key: str, field: str, unit: str, *, higher_better: bool = False) -> None:
        a, b, c = ours[key][field], peers[key][field], live[key][field]
        r = ratio(b, a) if higher_better else ratio(a, b)
        rows.append(f"| {label} | {a} {unit} | {c} {unit} | {b} {unit} | {r} |")

    add("1 member, one caller: p50", "one_sequential", "p50_ms", "ms")
    add("1 member, one caller: p99", "one_sequential", "p99_ms", "ms")
    add("1 member, 200 calls/s: p50", "one_at_200", "p50_ms", "ms")
    add("1 member, 200 calls/s: p99", "one_at_200", "p99_ms", "ms")
    add("1 member, 200 calls/s: achieved", "one_at_200", "rate", "calls/s", higher_better=True)
    add("1 member, closed loop: throughput", "one_closed", "rate", "calls/s", higher_better=True)
    add("1 member, closed loop: p50", "one_closed", "p50_ms", "ms")
    add("1 member, closed loop: p99", "one_closed", "p99_ms", "ms")
    a, b, c = (r["highest_rate_p99_50ms"] for r in (ours, peers, live))
    rows.append(f"| highest rate with p99 ≤ 50 ms | {a} calls/s | {c} calls/s | {b} calls/s | – |")
    add("100 members per call: p50", "batch100", "p50_ms", "ms")
    add("100 members per call: p99", "batch100", "p99_ms", "ms")
    rows += [f"| {label} | {a} | {b} | – | – |" for label, a, b in nba_rows(ours, live)]
    return "\n".join(rows)


def nba_rows(ours: dict[str, Any], live: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, published, live) of the next-best-action steps."""

    def cell(result: dict[str, Any], key: str) -> str:
        r = result[key]
        late = f", {r['errors']} late/failed" if r["errors"] else ""
        return f"{r['rate']} calls/s, p50 {r['p50_ms']} / p99 {r['p99_ms']} ms{late}"

    labels = {
        "nba_one_sequential": "next-best action, 1 member, one caller",
        "nba_one_at_rate": f"next-best action, 1 member at {NBA_RATE} calls/s",
        "nba_batch100": "next-best action, 100 members per call, one caller",
        "scores_at_rate": f"scores, 1 member at {NBA_RATE} calls/s, alone",
        "scores_beside_nba100": f"scores, 1 member at {NBA_RATE} calls/s, beside 100-member "
        "next-best-action calls back to back",
        "nba100_beside_scores": "those 100-member next-best-action calls",
    }
    return [(label, cell(ours, key), cell(live, key)) for key, label in labels.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/benchmarks/api"))
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2, help="Workers of every server.")
    parser.add_argument("--concurrency", type=int, default=16, help="Closed-loop callers.")
    parser.add_argument(
        "--only",
        choices=("live", "published", "peers", "nba"),
        default=None,
        help="One system; 'nba': the next-best-action steps alone, on published cards.",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS_PATH, help="Where to write the results."
    )
    parser.add_argument("--quick", action="store_true", help="Short runs (a smoke test).")
    args = parser.parse_args(argv)

    store = Store(args.root.resolve())
    if not store.built:
        started = time.perf_counter()
        build(store, args.members, args.seed)
        print(f"built the store in {time.perf_counter() - started:.0f} s")
    elif not has_uplift(store):
        train_uplift(store)
        mark_uplift(store)
    ids = member_ids(store, args.seed)
    results: dict[str, Any] = {"machine": machine(), "members_in_store": len(ids)}
    results["settings"] = {k: v for k, v in vars(args).items() if k not in ("root", "results")}
    measures: dict[str, Callable[..., dict[str, Any]]] = {
        "live": measure_live,
        "published": measure_published,
        "peers": measure_peers,
        "nba": measure_nba,
    }
    for name, measure in measures.items():
        if args.only == name or (args.only is None and name != "nba"):
            results[name] = measure(store, ids, args)
            print(name, json.dumps(results[name], indent=1))
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.only is None:
        print(table(results))
    if not args.quick:
        args.results.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
