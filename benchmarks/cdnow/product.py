"""CDNOW through the product: the `memberscore` commands a user runs, scored on the holdout.

In a fresh working folder (its own data dir, MLflow database, artifact root and Feast repo; the
repository's data/ and mlruns/ are not touched) the calibration records of CDNOW_master.txt
(dates up to 1997-09-30) are written to a file, then, each as a subprocess whose output is
shown as it runs and timed:

    memberscore import cdnow <calibration file>
    memberscore features build --from 1997-01-08 --every 7d --as-of 1997-10-01
    memberscore features apply
    memberscore train churn --horizon H · memberscore train clv --horizon H · memberscore train-btyd
    memberscore promote <each name the train commands print>
    memberscore batch-score --as-of 1997-10-01 --out <work>/batch --reasons 0

with the default horizons set to H days for the whole run (MEMBERSCORE_CHURN_HORIZON_DAYS,
MEMBERSCORE_CLV_HORIZON_DAYS), so the served models are plain `churn` and `clv`. The batch
output is then scored against the holdout: purchase days and dollars in the H days from
1997-10-01 (H = 273: the classic 39-week holdout to 1998-06-30, the peers' table). Prints a
markdown table beside the peers' rows and writes `benchmarks/cdnow/product_results.json`.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.cdnow.product
    [--horizon 273 (or env CDNOW_HORIZON)] [--data-dir DIR] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd

from benchmarks.cdnow.data import CALIBRATION_END, DEFAULT_DATA_DIR, HOLDOUT_START
from benchmarks.cdnow.metrics import churn_metrics, count_metrics, spend_metrics
from benchmarks.cdnow.peers import PEER_ROWS, PEERS_SOURCE, TABLE_HEADER

RESULTS_PATH = Path(__file__).resolve().parent / "product_results.json"
CLASSIC_HORIZON_DAYS = 273  # 1997-10-01 .. 1998-06-30 inclusive: the peers' 39 weeks
FEATURES_FROM = "1997-01-08"
AS_OF = HOLDOUT_START.date().isoformat()  # cutoff 00:00 UTC: features of data to 1997-09-30
PROMOTE_HINT = re.compile(r"next: memberscore promote (\S+)")
TAIL_LINES = 20


@dataclass
class Step:
    """One product command: its arguments after `memberscore`, and what running it gave."""

    name: str
    args: list[str]
    seconds: float | None = None
    returncode: int | None = None
    output: str = field(default="", repr=False)


class StepFailed(RuntimeError):
    """A product command exited non-zero (or printed nothing the next step needs)."""

    def __init__(self, step: Step, why: str) -> None:
        tail = "\n".join(step.output.strip().splitlines()[-TAIL_LINES:])
        command = " ".join(["memberscore", *step.args])
        super().__init__(f"step '{step.name}' failed: {why}\n  $ {command}\n  last output:\n{tail}")
        self.step = step


# --- scoring against the holdout (pure) ---------------------------------------------------


def holdout_targets(
    records: pd.DataFrame, start: pd.Timestamp, days: int, customers: pd.Index
) -> pd.DataFrame:
    """Per customer of `customers` (text ids): purchase days (a customer's records of one day
    are one purchase, as in the peers' file) and dollars in the `days` days from `start`
    inclusive. `records` has customer_id (text), date (datetime) and dollar_value."""
    end = start + pd.Timedelta(days=days - 1)
    window = records.loc[records["date"].between(start, end)]
    by_day = window.groupby(["customer_id", "date"])["dollar_value"].sum().groupby(level=0)
    out = pd.DataFrame({"holdout_count": by_day.size(), "holdout_value": by_day.sum()})
    out = out.reindex(customers).fillna(0.0)
    out.index.name = "customer_id"
    return out


def chosen_columns(columns: pd.Index) -> dict[str, str | None]:
    """Which batch-output column stands for each target: the churn probability `churn`, the
    expected orders `orders_mean`, the expected spend `spend_mean` (else `spend_p50`, the median
    the output has). None where the output has nothing."""
    spend = next((c for c in ("spend_mean", "spend_p50") if c in columns), None)
    return {
        "churn": "churn" if "churn" in columns else None,
        "count": "orders_mean" if "orders_mean" in columns else None,
        "spend": spend,
    }


def score_holdout(scores: pd.DataFrame, targets: pd.DataFrame) -> dict[str, Any]:
    """Holdout metrics of the product's batch scores (`member_id` plus score columns) against
    `targets` (index = member id, holdout_count, holdout_value). Every target member needs a
    score: a member missing from the output, or with a missing score, is an error, since
    metrics on a subset are not comparable with the peers'."""
    frame = scores.set_index("member_id").reindex(targets.index)
    used = chosen_columns(scores.columns)
    for column in filter(None, used.values()):
        missing = frame[column].isna()
        if missing.any():
            raise ValueError(
                f"{int(missing.sum()):,} of {len(frame):,} holdout members have no "
                f"{column!r} in the batch output (e.g. {', '.join(frame.index[missing][:3])})"
            )
    count = targets["holdout_count"].to_numpy(dtype=float)
    metrics: dict[str, float] = {}
    if used["churn"]:
        churn_scores = {"P(churn)": frame[used["churn"]].to_numpy(dtype=float)}
        if used["count"]:
            churn_scores["-E[orders]"] = -frame[used["count"]].to_numpy(dtype=float)
        metrics |= churn_metrics(count == 0, churn_scores)
    if used["count"]:
        metrics |= count_metrics(count, frame[used["count"]].to_numpy(dtype=float))
    if used["spend"]:
        actual = targets["holdout_value"].to_numpy(dtype=float)
        metrics |= spend_metrics(actual, frame[used["spend"]].to_numpy(dtype=float))
    return {"members": len(frame), "columns": used, "metrics": metrics}


# --- the table ------------------------------------------------------------------------------


def _num(metrics: dict[str, float], key: str, fmt: str) -> str:
    return format(metrics[key], fmt) if key in metrics else "–"


def _per_score(metrics: dict[str, float], name: str) -> str:
    """'0.770 (P(churn)); 0.765 (-E[orders])' from the metrics `name[<score>]`, or '–'."""
    found = [(k[len(name) + 1 : -1], v) for k, v in metrics.items() if k.startswith(name + "[")]
    return "; ".join(f"{v:.3f} ({score})" for score, v in found) or "–"


def format_product_row(result: dict[str, Any], horizon: int, train_seconds: float) -> list[str]:
    """The product's row in the peers' column order; a column the output lacks shows '–' and
    a stand-in (p50 for the mean) is named in the model cell."""
    m, used = result["metrics"], result["columns"]
    notes = [f"churn/clv horizon {horizon} d"]
    if used["count"] is None:
        notes.append("no orders_mean in the output: count metrics –")
    if used["spend"] == "spend_p50":
        notes.append("spend = spend_p50 (no spend_mean in the output)")
    roc, pr = _per_score(m, "churn_roc_auc"), _per_score(m, "churn_pr_auc")
    return [
        f"**memberscore product path** ({'; '.join(notes)})",
        _num(m, "count_mae", ".3f"), _num(m, "count_rmse", ".3f"),
        _num(m, "count_pearson", ".3f"), _num(m, "count_pred_total", ",.0f"),
        roc, pr,
        _num(m, "spend_mae", ".2f"), _num(m, "spend_spearman", ".3f"),
        _num(m, "spend_norm_gini", ".3f"), _num(m, "spend_top10_share", ".3f"),
        _num(m, "spend_pred_total", ",.0f"), f"{train_seconds:.0f} (train + train-btyd)",
    ]  # fmt: skip


def format_table(row: list[str]) -> str:
    """Markdown table: the peers' rows (theirs, copied) then the product's."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join((f"[peer] {r[0]}", *r[1:])) + " |" for r in PEER_ROWS]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_steps(steps: list[Step]) -> str:
    """Markdown table of the steps and their wall seconds."""
    lines = ["| step | command | s |", "|---|---|---|"]
    for step in steps:
        shown = "–" if step.seconds is None else f"{step.seconds:.1f}"
        command = f"`memberscore {' '.join(step.args)}`" if step.args else "(holdout scoring)"
        lines.append(f"| {step.name} | {command} | {shown} |")
    return "\n".join(lines)


# --- running the product ----------------------------------------------------------------------


def write_calibration(master: Path, dest: Path, end: pd.Timestamp = CALIBRATION_END) -> int:
    """Write the records of `master` dated up to `end` inclusive, in the master's own format
    (header, ids as text with their leading zeros); returns the records written."""
    raw = pd.read_csv(master, sep=r"\s+", dtype=str)
    if list(raw.columns) != ["customer_id", "date", "number_of_cds", "dollar_value"]:
        raise ValueError(f"{master} does not look like CDNOW_master: columns {list(raw.columns)}")
    kept = raw.loc[pd.to_datetime(raw["date"], format="%Y%m%d") <= end]
    kept.to_csv(dest, sep=" ", index=False)
    return len(kept)


def product_env(work: Path, horizon: int) -> dict[str, str]:
    """This process's environment without any MEMBERSCORE_* setting, plus the run's own: data,
    MLflow and the Feast repo inside `work`, default churn and CLV horizons `horizon` days."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBERSCORE_")}
    return env | {
        "MEMBERSCORE_CONFIG": str(work / "memberscore.toml"),  # absent: defaults + env only
        "MEMBERSCORE_DATA_DIR": str(work / "data"),
        "MEMBERSCORE_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
        "MEMBERSCORE_MLFLOW_ARTIFACT_ROOT": str(work / "mlruns" / "artifacts"),
        "MEMBERSCORE_FEAST_REPO": str(work / "feature_repo"),
        "MEMBERSCORE_CHURN_HORIZON_DAYS": str(horizon),
        "MEMBERSCORE_CLV_HORIZON_DAYS": str(horizon),
        "PYTHONUNBUFFERED": "1",
    }


def memberscore_executable() -> str:
    """The `memberscore` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "memberscore"
    found = str(beside) if beside.exists() else shutil.which("memberscore")
    if found is None:
        raise FileNotFoundError("no `memberscore` command; install the project (make test)")
    return found


def run_step(step: Step, exe: str, env: dict[str, str], cwd: Path) -> Step:
    """Run `memberscore <step.args>`, echoing its output as it comes; StepFailed if non-zero."""
    print(f"\n$ memberscore {' '.join(step.args)}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [exe, *step.args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    chunks = []
    while chunk := process.stdout.read1(4096):  # type: ignore[attr-defined]
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        chunks.append(chunk)
    step.returncode = process.wait()
    step.seconds = time.perf_counter() - started
    step.output = b"".join(chunks).decode(errors="replace")
    print(f"[{step.name}: exit {step.returncode}, {step.seconds:.1f} s]", flush=True)
    if step.returncode != 0:
        raise StepFailed(step, f"exit code {step.returncode}")
    return step


def promoted_name(step: Step) -> str:
    """The registry name a train command printed in its 'next: memberscore promote X' line."""
    found = PROMOTE_HINT.findall(step.output)
    if not found:
        raise StepFailed(step, "its output names no model to promote ('next: memberscore promote')")
    return found[-1]


def run_product(
    work: Path, calibration: Path, horizon: int, out: Path, steps: list[Step]
) -> list[Step]:
    """Every product step in order, each appended to `steps` when it starts (so a failed run
    still lists what ran); the promote steps use the names the train steps printed."""
    exe, env = memberscore_executable(), product_env(work, horizon)
    h = str(horizon)

    def run(name: str, *args: str) -> Step:
        steps.append(Step(name, list(args)))
        return run_step(steps[-1], exe, env, work)

    shown = [f"  {k}={v}" for k, v in env.items() if k.startswith("MEMBERSCORE_")]
    print("environment of every step:\n" + "\n".join(shown), flush=True)
    run("import", "import", "cdnow", str(calibration))
    build = f"features build --from {FEATURES_FROM} --every 7d --as-of {AS_OF}"
    run("features build", *build.split())
    run("features apply", "features", "apply")
    trained = [
        run("train churn", "train", "churn", "--horizon", h),
        run("train clv", "train", "clv", "--horizon", h),
        run("train-btyd", "train-btyd"),
    ]
    for step in trained:
        name = promoted_name(step)
        run(f"promote {name}", "promote", name)
    run("batch-score", "batch-score", "--as-of", AS_OF, "--out", str(out), "--reasons", "0")
    return steps


def read_batch(out: Path) -> pd.DataFrame:
    """The rows of a finished batch run: its part files (not the unscorable list)."""
    parts = sorted(out.glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{out} holds no part-*.parquet: batch-score wrote nothing")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def read_records(master: Path) -> pd.DataFrame:
    """All CDNOW records: customer_id as text (leading zeros kept), date, dollar_value."""
    raw = pd.read_csv(master, sep=r"\s+", dtype={"customer_id": str, "date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


# --- main ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--horizon",
        type=int,
        default=int(os.environ.get("CDNOW_HORIZON", CLASSIC_HORIZON_DAYS)),
        help="churn / CLV horizon and holdout length in days (default 273 or env "
        "CDNOW_HORIZON; other values are not comparable with the peers' 39 weeks)",
    )
    parser.add_argument("--workdir", type=Path, help="working folder (default: a new temp one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    return parser


def _git_state() -> dict[str, Any]:
    """HEAD of the repository and its uncommitted files: the product code that ran."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted": changed}


def _meta(args: argparse.Namespace, work: Path, load: tuple[float, ...]) -> dict[str, Any]:
    env_prefix = (
        [f"CDNOW_HORIZON={os.environ['CDNOW_HORIZON']}"] if "CDNOW_HORIZON" in os.environ else []
    )
    return {
        "date": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_start": load,
        "load_average_end": os.getloadavg(),
        "command": " ".join([*env_prefix, "python -m benchmarks.cdnow.product", *sys.argv[1:]]),
        "git": _git_state(),
        "horizon_days": args.horizon,
        "comparable_with_peers": args.horizon == CLASSIC_HORIZON_DAYS,
        "as_of": AS_OF,
        "workdir": str(work),
    }


def evaluate(master: Path, out: Path, horizon: int) -> dict[str, Any]:
    """Score the batch output in `out` against the `horizon` days of holdout in `master`."""
    scores = read_batch(out)
    records = read_records(master)
    customers = pd.Index(sorted(records["customer_id"].unique()))
    targets = holdout_targets(records, HOLDOUT_START, horizon, customers)
    result = score_holdout(scores, targets)
    result["holdout"] = {
        "start": AS_OF,
        "end": (HOLDOUT_START + pd.Timedelta(days=horizon - 1)).date().isoformat(),
        "purchase_days": float(targets["holdout_count"].sum()),
        "dollars": float(targets["holdout_value"].sum()),
        "churn_share": float(np.mean(targets["holdout_count"] == 0)),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the product on the calibration data, score its batch output, print and save (a
    failed run saves its steps and the failure, exits 1 and keeps the working folder)."""
    args = _parser().parse_args(argv)
    master = args.data_dir / "CDNOW_master.txt"
    load = os.getloadavg()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="memberscore-cdnow-"))
    work.mkdir(parents=True, exist_ok=True)
    calibration = work / "CDNOW_calibration.txt"
    written = write_calibration(master, calibration)
    print(f"working folder {work}; {written:,} calibration records (to {CALIBRATION_END.date()})")
    steps: list[Step] = []
    try:
        run_product(work, calibration, args.horizon, work / "batch", steps)
        steps.append(Step("evaluate (benchmark)", []))
        started = time.perf_counter()
        result = evaluate(master, work / "batch", args.horizon)
        steps[-1].seconds, steps[-1].returncode = time.perf_counter() - started, 0
    except (StepFailed, ValueError, FileNotFoundError) as error:
        failed = steps[-1].name if steps else "setup"
        message = str(error) if isinstance(error, StepFailed) else f"step '{failed}': {error}"
        print(f"\nFAILED: {message}\n\n{format_steps(steps)}\nworking folder kept: {work}")
        outcome = {"status": "failed", "failed_step": failed, "error": message}
        _save(args, work, load, steps, outcome)
        return 1
    print_result(result, args.horizon, steps)
    _save(args, work, load, steps, {"status": "complete"} | result)
    if not args.keep and args.workdir is None:
        shutil.rmtree(work)
    return 0


def print_result(result: dict[str, Any], horizon: int, steps: list[Step]) -> None:
    """The holdout, the table beside the peers' rows and the step timings."""
    train_s = sum(s.seconds or 0.0 for s in steps if s.name.startswith("train"))
    h = result["holdout"]
    print(
        f"\nholdout {h['start']}..{h['end']} ({horizon} d): {result['members']:,} members, "
        f"{h['purchase_days']:,.0f} purchase days, ${h['dollars']:,.0f}, churn share "
        f"{h['churn_share']:.4f}; peers: {PEERS_SOURCE} (273 d)\n"
    )
    if horizon != CLASSIC_HORIZON_DAYS:
        print(f"NOTE: horizon {horizon} d, not the peers' 273 d: rows not comparable\n")
    print(format_table(format_product_row(result, horizon, train_s)))
    print("\n" + format_steps(steps))


def _save(
    args: argparse.Namespace,
    work: Path,
    load: tuple[float, ...],
    steps: list[Step],
    outcome: dict[str, Any],
) -> None:
    record = {"meta": _meta(args, work, load), "steps": [_step_record(s) for s in steps]}
    RESULTS_PATH.write_text(json.dumps(record | outcome, indent=2, default=float) + "\n")
    print(f"\nwrote {RESULTS_PATH}")


def _step_record(step: Step) -> dict[str, Any]:
    record = asdict(step)
    record.pop("output")
    return record


if __name__ == "__main__":
    raise SystemExit(main())
