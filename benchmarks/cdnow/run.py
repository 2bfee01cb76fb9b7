"""Run the CDNOW benchmark: native BG/NBD, Pareto/NBD and Gamma-Gamma on the classic split.

These are the product's library path (`features.btyd`, which the `btyd` feature family and
`memberscore train-btyd` use); the product's commands end to end are `benchmarks.cdnow.product`.

Calibration 1997-01-01..1997-09-30 (39 weeks, as-of date 1997-09-30 inclusive), holdout
1997-10-01..1998-06-30 (39 weeks). Prints a markdown table beside the peers' figures and writes
`benchmarks/cdnow/results.json`.

    .venv/bin/python -m benchmarks.cdnow.run [--data-dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd

from benchmarks.cdnow.data import (
    CALIBRATION_END,
    DEFAULT_DATA_DIR,
    HOLDOUT_END,
    HOLDOUT_WEEKS,
    read_master,
    split,
)
from benchmarks.cdnow.metrics import churn_metrics, count_metrics, spend_metrics
from benchmarks.cdnow.peers import PEER_FIT_SECONDS, PEER_ROWS, PEERS_SOURCE, TABLE_HEADER
from features.btyd import BaseTransactionModel, BetaGeoModel, GammaGammaModel, ParetoNBDModel

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
Row = dict[str, Any]


def timed_fit(make: Callable[[], Any], summary: pd.DataFrame, repeats: int) -> tuple[Any, float]:
    """Fit a fresh `make()` `repeats` times; return the last model and the median seconds."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model = make().fit(summary)
        seconds.append(time.perf_counter() - start)
    return model, statistics.median(seconds)


def evaluate(
    model: BaseTransactionModel,
    spend: GammaGammaModel,
    summary: pd.DataFrame,
    holdout: pd.DataFrame,
) -> dict[str, float]:
    """Every holdout metric of one transaction model paired with the Gamma-Gamma spend model."""
    frame = model.predict_frame(summary, HOLDOUT_WEEKS)
    expected = frame["expected_purchases"].to_numpy()
    value = spend.predict_frame(summary, HOLDOUT_WEEKS, transaction_model=model)
    count = holdout["holdout_count"].to_numpy()
    scores = {
        "-E[X]": -expected,
        "P(no purchase)": frame["p_no_purchase"].to_numpy(),
        "1-P(alive)": 1.0 - frame["p_alive"].to_numpy(),
    }
    return (
        count_metrics(count, expected)
        | churn_metrics(count == 0, scores)
        | spend_metrics(holdout["holdout_value"].to_numpy(), value["expected_spend"].to_numpy())
    )


def native_rows(summary: pd.DataFrame, holdout: pd.DataFrame, repeats: int) -> list[Row]:
    """Fit the native models on the full calibration data; one result row per model pair."""
    spend, spend_s = timed_fit(GammaGammaModel, summary, repeats)
    rows = []
    for name, make in [("BG/NBD", BetaGeoModel), ("Pareto/NBD", ParetoNBDModel)]:
        model, seconds = timed_fit(make, summary, repeats)
        rows.append(
            {
                "model": f"memberscore native {name} + Gamma-Gamma (MLE)",
                "family": name,
                "params": model.params_,
                "log_likelihood": model.log_likelihood_,
                "fit_seconds": seconds,
                "spend_params": spend.params_,
                "spend_log_likelihood": spend.log_likelihood_,
                "spend_fit_seconds": spend_s,
                "metrics": evaluate(model, spend, summary, holdout),
            }
        )
    return rows


def _fmt_churn(m: dict[str, float]) -> str:
    keys = ("-E[X]", "P(no purchase)", "1-P(alive)")
    return "; ".join(
        f"{m[f'churn_roc_auc[{k}]']:.3f} ({k})" for k in keys if f"churn_roc_auc[{k}]" in m
    )


def format_row(row: Row) -> list[str]:
    """Our row in the peers' column order."""
    m = row["metrics"]
    fit = f"{row['fit_seconds']:.3f}" + (
        f" + {row['spend_fit_seconds']:.3f}" if "spend_fit_seconds" in row else ""
    )
    return [
        row["model"], f"{m['count_mae']:.3f}", f"{m['count_rmse']:.3f}",
        f"{m['count_pearson']:.3f}", f"{m['count_pred_total']:,.0f}", _fmt_churn(m),
        f"{m['churn_pr_auc[-E[X]]']:.3f} (−E[X]); {m['churn_pr_auc[P(no purchase)]']:.3f} (P0)",
        f"{m['spend_mae']:.2f}", f"{m['spend_spearman']:.3f}", f"{m['spend_norm_gini']:.3f}",
        f"{m['spend_top10_share']:.3f}", f"{m['spend_pred_total']:,.0f}", fit,
    ]  # fmt: skip


def format_table(rows: list[Row]) -> str:
    """Markdown table: the peers' rows (theirs, copied) then ours."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join((f"[peer] {r[0]}", *r[1:])) + " |" for r in PEER_ROWS]
    lines += ["| " + " | ".join(format_row(r)) + " |" for r in rows]
    return "\n".join(lines)


def format_params(rows: list[Row]) -> str:
    """Fitted parameters, log-likelihoods and fit times with their ratio to lifetimes."""
    lines = []
    spend_done = False
    for row in rows:
        if "params" not in row:
            continue
        entries = [(row["family"], row["params"], row["log_likelihood"], row["fit_seconds"])]
        if not spend_done and "spend_params" in row:
            entries.append(
                ("Gamma-Gamma", row["spend_params"], row["spend_log_likelihood"],
                 row["spend_fit_seconds"])
            )  # fmt: skip
            spend_done = True
        for family, params, ll, seconds in entries:
            text = " ".join(f"{k}={v:.4f}" for k, v in params.items())
            ratio = PEER_FIT_SECONDS[family] / seconds
            lines.append(
                f"- {family}: {text}, LL {ll:.2f}, fit {seconds:.3f} s "
                f"(lifetimes {PEER_FIT_SECONDS[family]} s, {ratio:.0f}× faster)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Read CDNOW, fit, evaluate, print the tables and write results.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeats", type=int, default=5, help="fits timed per model (median)")
    args = parser.parse_args(argv)
    transactions = read_master(args.data_dir)
    summary, holdout = split(transactions, CALIBRATION_END, HOLDOUT_END)
    rows = native_rows(summary, holdout, args.repeats)
    print(f"CDNOW: {len(summary):,} customers, holdout {HOLDOUT_WEEKS:.0f} weeks; peers: "
          f"{PEERS_SOURCE}\n")  # fmt: skip
    print(format_table(rows) + "\n\n" + format_params(rows))
    meta = {
        "date": pd.Timestamp.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "customers": len(summary),
        "repeats": args.repeats,
    }
    RESULTS_PATH.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=float))
    print(f"\nwrote {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
