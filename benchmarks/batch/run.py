"""Batch scoring benchmark: a million-member snapshot end to end on the local engine.

Reads the feature snapshot, scores churn / activation / CLV, assigns stages, chooses actions
after the guardrails and writes Parquet parts (`pipelines.batch.job.run`), then times the HTML
report and the campaign lists. Models are the champions of a registry trained on the demo-size
simulation. Peers measured in the same process on a sample of the same snapshot: the score API's
row path (`serving.scoring.score.score`, dict rows), the vectorised core it now shares
(`serving.scoring.frames.score_frame`), and exact SHAP reason codes. Writes `results.json`.

    flock /tmp/memberscore-heavy.lock .venv/bin/python -m benchmarks.batch.run \\
        --data-dir /tmp/ms1m --as-of 2025-12-29 --registry /tmp/h1data
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd

from memberscore.settings import Settings

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
SAMPLE = 5_000


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def settings_for(args: argparse.Namespace) -> Settings:
    """Data from `--data-dir`, models from the registry folder `--registry`."""
    registry = Path(args.registry)
    return Settings(
        data_dir=Path(args.data_dir),
        mlflow_tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
        mlflow_artifact_root=registry / "mlartifacts",
        chunk_rows=args.chunk_rows,
        batch_workers=args.workers,
    )


def timed(step: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def cpu_seconds() -> float:
    """User + system CPU time of this process and its threads so far (s)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peers(settings: Settings, bundle: Any, snapshot: Path) -> dict[str, float]:
    """Members per second of the row-dict API path, the vectorised core and SHAP reason codes,
    on the first SAMPLE members of the snapshot."""
    import pyarrow.parquet as pq

    from serving.scoring.adapters import LibraryDomain
    from serving.scoring.frames import reason_codes, score_frame
    from serving.scoring.score import score
    from serving.scoring.sources import MemberFeatures

    frame = next(pq.ParquetFile(snapshot).iter_batches(SAMPLE)).to_pandas()
    features = frame.set_index("member_id")
    rows = {
        str(m): {k: (None if pd.isna(v) else v) for k, v in r.items()}
        for m, r in zip(
            frame["member_id"], frame.drop(columns=["member_id"]).to_dict("records"), strict=True
        )
    }
    domain = LibraryDomain(None, None, settings.decisions, {})
    as_of = dict.fromkeys(rows, datetime(2025, 12, 29, tzinfo=UTC))
    _, api = timed(lambda: score(list(rows), MemberFeatures(rows, as_of), bundle, domain, settings))
    _, core = timed(lambda: score_frame(features, bundle, settings, reasons=0))
    _, shap = timed(lambda: reason_codes(features, bundle, 3))
    return {
        "sample": len(frame),
        "api_rows_members_per_s": len(frame) / api,
        "vectorised_core_members_per_s": len(frame) / core,
        "shap_reason_codes_members_per_s": len(frame) / shap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/ms1m")
    parser.add_argument("--as-of", default="2025-12-29")
    parser.add_argument("--registry", default="/tmp/h1data", help="folder with mlflow.db")
    parser.add_argument("--out", default="/tmp/memberscore-batch-bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=125_000)
    parser.add_argument("--reasons", type=int, default=0)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()

    from features.store import snapshot_path
    from pipelines import campaign
    from pipelines.batch import job as batch
    from pipelines.batch.report import write as write_report
    from serving.scoring.registry import RegistrySource

    settings = settings_for(args)
    as_of = date.fromisoformat(args.as_of)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    bundle, load_s = timed(lambda: RegistrySource(settings).load())
    cpu_before = cpu_seconds()
    summary, batch_s = timed(
        lambda: batch.run(
            settings,
            as_of,
            out,
            bundle=bundle,
            reasons=args.reasons,
            progress=False,
            report=False,
        )
    )
    batch_cpu, batch_rss = cpu_seconds() - cpu_before, peak_rss_gib()
    _, report_s = timed(lambda: write_report(settings, out))
    _, campaign_s = timed(lambda: campaign.build(settings, out, budget=50_000.0))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python "
        f"{platform.python_version()}",
        "members": summary.members,
        "parts": summary.parts,
        "workers": args.workers,
        "chunk_rows": args.chunk_rows,
        "reasons": args.reasons,
        "models": dict(bundle.fingerprint),
        "model_load_s": round(load_s, 1),
        "batch_s": round(batch_s, 1),
        "batch_members_per_s": round(summary.members / batch_s),
        "batch_cpu_s": round(batch_cpu, 1),
        "batch_cpu_share": round(batch_cpu / batch_s / args.workers, 2),
        "batch_peak_rss_gib": round(batch_rss, 2),
        "report_s": round(report_s, 1),
        "campaign_build_s": round(campaign_s, 1),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "actions": summary.actions,
    }
    if not args.no_peers:
        results["peers"] = {
            k: round(v) for k, v in peers(settings, bundle, snapshot_path(settings, as_of)).items()
        }
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
