"""Reason codes' SHAP values: LightGBM's exact TreeSHAP (`pred_contrib`) against the per-leaf
tables of `training.models.tree_shap`, on the churn and activation champions of the API
benchmark's store (`benchmarks/api/store.py`; built first when missing).

For each model: the time to build the tables; the cost of one member (the score API's live
path: one row per call, median and p99 over `--calls` calls, members in turn); the cost per row
of a whole frame (`--rows` rows, the snapshot's members repeated; LightGBM on `--exact-rows`,
its cost is linear in rows); the whole-frame reason codes of `serving.scoring.frames`
(`reason_codes`: encode, SHAP, top three) per row; and how often the top reasons agree with
LightGBM's on every member of the model's population (top 1, the set of three, the three in
order) with the largest difference of a value. Prints JSON and writes `--out`
(`benchmarks/reasons/results.json`). Run heavy:

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.reasons.run \
        [--store data/benchmarks/api]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results.json"
MODELS = ("churn", "activation")


def one_row_ms(explain: Any, matrix: np.ndarray, calls: int) -> dict[str, float]:
    """Median and p99 of `calls` one-row calls (ms), rows in turn."""
    times = np.empty(calls)
    for i in range(calls):
        row = matrix[i % len(matrix)][np.newaxis, :]
        started = time.perf_counter()
        explain(row)
        times[i] = time.perf_counter() - started
    return {
        "p50_ms": round(float(np.median(times)) * 1e3, 3),
        "p99_ms": round(float(np.quantile(times, 0.99)) * 1e3, 3),
    }


def per_row_us(explain: Any, matrix: np.ndarray, rows: int) -> dict[str, float]:
    """Microseconds per row of one call on `rows` rows (the matrix repeated), wall clock and
    the thread's CPU time (less sensitive to a busy machine)."""
    big = np.resize(matrix, (rows, matrix.shape[1]))
    started, cpu = time.perf_counter(), time.thread_time()
    explain(big)
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return {"wall_us": round(wall / rows * 1e6, 1), "cpu_us": round(cpu / rows * 1e6, 1)}


def agreement(exact: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """Shares of rows whose top reasons (`training.core.reasons.top_positive`) agree."""
    from training.core.reasons import top_positive

    a, b = top_positive(exact[:, :-1]), top_positive(found[:, :-1])
    same_set = [set(x) == set(y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    return {
        "rows": len(exact),
        "top1": round(float(np.mean(a[:, 0] == b[:, 0])), 4),
        "top3_set": round(float(np.mean(same_set)), 4),
        "top3_in_order": round(float(np.mean((a == b).all(axis=1))), 4),
        "max_abs_difference": float(np.abs(exact - found).max()),
    }


def measure(name: str, served: Any, frame: pd.DataFrame, args: argparse.Namespace) -> dict:
    """Every figure of one served model on its population's rows of the snapshot."""
    from serving.scoring.frames import encode_frame
    from training.models.tree_shap import TreeShap

    model = served.predictor.model
    booster = model.booster_
    matrix = encode_frame(frame, served)
    started = time.perf_counter()
    tables = TreeShap.of(booster)
    built = time.perf_counter() - started

    def exact(m: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(m, pred_contrib=True, num_threads=1))

    out: dict[str, Any] = {
        "trees": booster.num_trees(),
        "features": matrix.shape[1],
        "members": len(matrix),
        "table_floats": int(tables.table.size),
        "build_s": round(built, 3),
    }
    print(f"{name}: {out}", flush=True)
    out["one_row_exact"] = one_row_ms(exact, matrix, args.calls)
    out["one_row_tables"] = one_row_ms(tables.contributions, matrix, args.calls)
    print(f"{name}: one row {out['one_row_exact']} → {out['one_row_tables']}", flush=True)
    out[f"per_row_us_exact_{args.exact_rows}"] = per_row_us(exact, matrix, args.exact_rows)
    out[f"per_row_us_tables_{args.rows}"] = per_row_us(tables.contributions, matrix, args.rows)
    out["agreement"] = agreement(exact(matrix), tables.contributions(matrix))
    print(f"{name}: {out}", flush=True)
    return out


def reason_codes_per_row(bundle: Any, snapshot: pd.DataFrame, rows: int) -> dict[str, float]:
    """Microseconds per member of `serving.scoring.frames.reason_codes` on `rows` members
    (wall clock and CPU)."""
    from serving.scoring.frames import reason_codes

    frame = snapshot.iloc[np.resize(np.arange(len(snapshot)), rows)].reset_index(drop=True)
    reason_codes(frame.head(10), bundle)  # tables built outside the timing
    started, cpu = time.perf_counter(), time.thread_time()
    reason_codes(frame, bundle)
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return {"wall_us": round(wall / rows * 1e6, 1), "cpu_us": round(cpu / rows * 1e6, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("data/benchmarks/api"))
    parser.add_argument("--members", type=int, default=3000, help="Members of a new store.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--calls", type=int, default=2000, help="One-row calls per method.")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--exact-rows", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)

    from benchmarks.api.run import machine
    from benchmarks.api.store import Store, build
    from features.store import latest_snapshot
    from serving.scoring.frames import has_ordered
    from serving.scoring.registry import RegistrySource

    store = Store(args.store.resolve())
    if not store.built:
        build(store, args.members, args.seed)
    bundle = RegistrySource(store.settings()).load()
    snapshot = latest_snapshot(store.settings()).set_index("member_id")
    ordered = has_ordered(snapshot)
    shown = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, Any] = {"machine": machine(), "settings": shown}
    for name, rows in zip(MODELS, (ordered, ~ordered), strict=True):
        served = bundle.get(name)
        if served is not None and rows.any():
            results[name] = measure(name, served, snapshot.loc[rows], args)
    results[f"reason_codes_per_row_us_{args.rows}"] = reason_codes_per_row(
        bundle, snapshot, args.rows
    )
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=1))
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
