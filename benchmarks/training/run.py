"""Training speed: each model of the project at a stated scale, beside a peer in the same run.

- LightGBM models as trained by `memberscore train` (`training.models`, `BoostParams`
  defaults: 300 rounds, 31 leaves, num_threads=1 for determinism) on N synthetic
  member-snapshots × 60 features (54 numeric with 5 % missing, 6 categorical): the churn
  classifier (booster + isotonic calibration on a held-out 10 %) and the CLV spend model (buy,
  amount, q10, q50, q90 boosters, the quantile ones on a 100,000-row sample, + conformal
  margin).
- Peer in the same run: scikit-learn HistGradientBoostingClassifier with the same
  hyperparameters (300 iterations, learning rate 0.05, 31 leaves, min 50 per leaf, L2 1.0,
  no early stopping), limited to 1 thread like ours; and LightGBM's classifier with 2 threads.
- BTYD: native BG/NBD, Pareto/NBD and Gamma-Gamma on the full CDNOW (23,570 customers; peers:
  lifetimes' fit times from /work/shared/benchmarks/cdnow-peers.md, theirs) and on 1M
  synthetic members with day-granular histories (what a snapshot of a 1M-member programme fits).
Each measurement runs in a fresh process (spawn) so that peak RSS is its own.

    .venv/bin/python -m benchmarks.training.run [--rows 1000000] [--only lgbm_churn,...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
import pandas as pd

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
NUMERIC, CATEGORICAL = 54, 6
PEER_LIFETIMES_SECONDS = {"BG/NBD": 0.56, "Pareto/NBD": 11.9, "Gamma-Gamma": 0.18}


def synthetic(rows: int, seed: int = 42) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(features, churned 0/1, spend in currency) of `rows` synthetic member-snapshots."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, NUMERIC)).astype(np.float64)
    numeric[rng.random((rows, NUMERIC)) < 0.05] = np.nan
    frame = pd.DataFrame(numeric, columns=[f"x{i:02d}" for i in range(NUMERIC)])
    for j in range(CATEGORICAL):
        levels = np.array([f"level_{k}" for k in range(3 + 2 * j)])
        frame[f"c{j}"] = pd.Series(levels[rng.integers(0, levels.size, rows)], dtype="string")
    signal = np.nan_to_num(numeric[:, :6]) @ np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3])
    signal += (frame["c0"] == "level_1").to_numpy() * 0.7
    churned = (rng.random(rows) < 1 / (1 + np.exp(-signal))).astype(float)
    amount = rng.gamma(2.0, 25.0 * np.exp(0.3 * np.nan_to_num(numeric[:, 6])))
    spend = np.where(churned == 1, 0.0, amount)
    return frame, churned, spend


def _split(rows: int) -> tuple[slice, slice]:
    cut = int(rows * 0.9)
    return slice(0, cut), slice(cut, rows)


def lgbm_churn(rows: int) -> dict[str, Any]:
    """The churn model: LightGBM binary + isotonic calibration, 1 thread."""
    from training.models.boosting import BoostParams
    from training.models.classifier import CalibratedClassifier

    X, y, _ = synthetic(rows)
    fit, calib = _split(rows)
    start = time.perf_counter()
    model = CalibratedClassifier(BoostParams())
    model.fit(X.iloc[fit], y[fit], X_calib=X.iloc[calib], y_calib=y[calib])
    return {"seconds": time.perf_counter() - start}


def lgbm_churn_2_threads(rows: int) -> dict[str, Any]:
    """The same booster with num_threads=2 (not deterministic across thread counts)."""
    from training.models.boosting import BoostParams
    from training.models.classifier import CalibratedClassifier

    X, y, _ = synthetic(rows)
    fit, calib = _split(rows)
    start = time.perf_counter()
    model = CalibratedClassifier(BoostParams(num_threads=2))
    model.fit(X.iloc[fit], y[fit], X_calib=X.iloc[calib], y_calib=y[calib])
    return {"seconds": time.perf_counter() - start}


def lgbm_clv(rows: int) -> dict[str, Any]:
    """The CLV spend model: 5 boosters (buy, amount on buyers, 3 quantiles on a row sample)
    + conformal."""
    from training.models.boosting import BoostParams
    from training.models.spend import SpendModel

    X, _, spend = synthetic(rows)
    fit, calib = _split(rows)
    start = time.perf_counter()
    model = SpendModel(BoostParams())
    model.fit(X.iloc[fit], spend[fit], X_calib=X.iloc[calib], y_calib=spend[calib])
    return {"seconds": time.perf_counter() - start}


def sklearn_hgb_churn(rows: int) -> dict[str, Any]:
    """Peer: HistGradientBoostingClassifier, same hyperparameters, 1 thread."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    X, y, _ = synthetic(rows)
    fit, _ = _split(rows)
    frame = X.iloc[fit].copy()
    for name in frame.columns[NUMERIC:]:
        frame[name] = frame[name].astype("category")
    model = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=50,
        l2_regularization=1.0, early_stopping=False, categorical_features="from_dtype",
        random_state=42,
    )  # fmt: skip
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        model.fit(frame, y[fit])
        return {"seconds": time.perf_counter() - start}


def btyd_cdnow(rows: int) -> dict[str, Any]:
    """Native BTYD fits on the full CDNOW calibration period (median of 5 fits each)."""
    from benchmarks.cdnow.data import CALIBRATION_END, HOLDOUT_END, read_master, split
    from features.btyd import BetaGeoModel, GammaGammaModel, ParetoNBDModel

    summary, _ = split(read_master(), CALIBRATION_END, HOLDOUT_END)
    out: dict[str, Any] = {"customers": len(summary)}
    for name, make in (("BG/NBD", BetaGeoModel), ("Pareto/NBD", ParetoNBDModel),
                       ("Gamma-Gamma", GammaGammaModel)):  # fmt: skip
        times = []
        for _ in range(5):
            start = time.perf_counter()
            make().fit(summary)
            times.append(time.perf_counter() - start)
        out[name] = float(np.median(times))
    out["seconds"] = sum(out[k] for k in PEER_LIFETIMES_SECONDS)
    return out


def btyd_1m(rows: int) -> dict[str, Any]:
    """The snapshot's `btyd` family on `rows` synthetic members: fit (Pareto/NBD, BG/NBD as
    fallback, + Gamma-Gamma) and apply, day-granular histories over 2 years."""
    from features.families.btyd import btyd_features, fit_family

    rng = np.random.default_rng(7)
    count = 1 + rng.poisson(rng.gamma(0.6, 4.0, rows))
    age = rng.integers(1, 730, rows).astype(float)
    value = rng.lognormal(3.5, 0.4, rows)
    frame = pd.DataFrame(
        {
            "member_id": np.arange(rows).astype(str),
            "frequency": count,
            "recency_days": np.where(count > 1, np.floor(rng.random(rows) * age), age),
            "days_since_first_order": age,
            "avg_order_value": value,
            "first_order_amount": value * rng.lognormal(0, 0.2, rows),
        }
    )
    start = time.perf_counter()
    outlook = fit_family(frame)
    fitted = time.perf_counter()
    btyd_features(frame, outlook)
    done = time.perf_counter()
    return {"seconds": done - start, "fit": fitted - start, "apply": done - fitted,
            "kind": None if outlook is None else outlook.kind, "customers": rows}  # fmt: skip


JOBS: dict[str, Callable[[int], dict[str, Any]]] = {
    "lgbm_churn": lgbm_churn,
    "lgbm_churn_2_threads": lgbm_churn_2_threads,
    "sklearn_hgb_churn": sklearn_hgb_churn,
    "lgbm_clv": lgbm_clv,
    "btyd_cdnow": btyd_cdnow,
    "btyd_1m": btyd_1m,
}


def _worker(name: str, rows: int, queue: Any) -> None:
    result = JOBS[name](rows)
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    queue.put(result)


def measure(name: str, rows: int) -> dict[str, Any]:
    """Run job `name` in a fresh spawned process; its result plus peak RSS (GiB)."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(name, rows, queue))
    process.start()
    while True:
        try:
            result: dict[str, Any] = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                raise RuntimeError(f"{name} failed (exit code {process.exitcode})") from None
    process.join()
    return result


LABELS = {
    "lgbm_churn": "churn / activation: LightGBM binary + isotonic, 1 thread (ours)",
    "lgbm_churn_2_threads": "same, num_threads=2",
    "sklearn_hgb_churn": "peer: sklearn HistGradientBoostingClassifier, same settings, 1 thread",
    "lgbm_clv": "clv: LightGBM buy + amount + q10/q50/q90 (100k-row sample) + conformal, "
    "1 thread (ours)",
    "btyd_cdnow": "BTYD on CDNOW 23,570: BG/NBD + Pareto/NBD + Gamma-Gamma (ours, median of 5)",
    "btyd_1m": "snapshot btyd family on 1M members: fit + apply (ours)",
}


def format_table(results: dict[str, dict[str, Any]], rows: int) -> str:
    """Markdown rows: job, seconds, peak RSS and the ratio to the peer where there is one."""
    lines = ["| job | rows | seconds | peak RSS GiB | vs peer |", "|---|---|---|---|---|"]
    hgb = results.get("sklearn_hgb_churn", {}).get("seconds")
    for name, r in results.items():
        ratio = ""
        if name.startswith("lgbm_churn") and hgb:
            ratio = f"{hgb / r['seconds']:.2f}× HGB's speed"
        if name == "btyd_cdnow":
            ratio = "; ".join(
                f"{k} {r[k]:.3f} s vs lifetimes {v} s ({v / r[k]:.0f}×)"
                for k, v in PEER_LIFETIMES_SECONDS.items()
            )
        if name == "btyd_1m":
            ratio = f"fit {r['fit']:.1f} s ({r['kind']}), apply {r['apply']:.1f} s"
        n = r.get("customers", rows)
        lines.append(
            f"| {LABELS[name]} | {n:,} | {r['seconds']:.1f} | {r['peak_rss_gib']:.2f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure the selected jobs, print a table and write results.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    default = ",".join(name for name in JOBS if name != "lgbm_churn_2_threads")
    parser.add_argument("--only", default=default, help=f"comma-separated of {', '.join(JOBS)}")
    args = parser.parse_args(argv)
    results = {}
    for name in args.only.split(","):
        rows = 1_000_000 if name == "btyd_1m" and args.rows >= 1_000_000 else args.rows
        results[name] = measure(name, rows)
        r = results[name]
        print(f"{name}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_gib']:.2f} GiB "
              f"{ {k: v for k, v in r.items() if k not in ('seconds', 'peak_rss_gib')} }",
              flush=True)  # fmt: skip
    meta = {
        "date": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": mp.cpu_count(),
        "rows": args.rows,
        "features": NUMERIC + CATEGORICAL,
    }
    RESULTS_PATH.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(format_table(results, args.rows))
    print(f"wrote {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
