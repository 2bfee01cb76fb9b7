"""The monitor's MLflow run: one run per invocation in experiment `memberscore-monitor`, every
figure logged with step = the checked snapshot's cutoff (days since 1970-01-01) and the
invocation's timestamp, so repeated runs form a time series per metric. Aggregates only: PSIs
and missing shares by feature name, matured figures, thresholds and versions; the HTML report
and the drift tables as artifacts."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from memberscore.settings import Settings

if TYPE_CHECKING:
    from pipelines.monitor.results import ModelCheck, MonitorReport

TASK = "monitor"  # experiment memberscore-monitor (`training.tracking.experiment_id`)


def figures(check: ModelCheck) -> dict[str, float]:
    """The metrics of one champion's check, by MLflow key (`<model>/...`)."""
    name = check.name
    out = {
        f"{name}/score_psi": float(check.scores["psi"].iloc[0]),
        f"{name}/max_feature_psi": float(check.features["psi"].max()),
        f"{name}/findings": float(len(check.findings)),
        f"{name}/reference_rows": float(check.reference_rows),
        f"{name}/current_rows": float(check.current_rows),
    }
    for row in check.features.to_dict("records"):
        out[f"{name}/psi/{row['variable']}"] = float(row["psi"])
        out[f"{name}/missing/{row['variable']}"] = float(row["missing_current"])
    if check.matured is not None:
        out |= {f"{name}/matured_{k}": float(v) for k, v in check.matured.figures.items()}
        out |= {f"{name}/promoted_{k}": float(v) for k, v in check.matured.promoted.items()}
    return {k: v for k, v in out.items() if math.isfinite(v)}


def log(settings: Settings, report: MonitorReport, now: datetime) -> str:
    """Log `report` as one run (at `now`) and return its id."""
    import mlflow
    from mlflow.entities import Metric

    from training import tracking

    client = tracking.client(settings)
    experiment = tracking.experiment_id(settings, TASK)
    step, stamp = int(report.as_of.timestamp() // 86_400), int(now.timestamp() * 1000)
    values = {"findings": float(len(report.findings)), "drifted": float(report.drifted)}
    for check in report.checks.values():
        values |= figures(check)
    with mlflow.start_run(experiment_id=experiment, run_name=f"monitor {report.as_of:%Y-%m-%d}"):
        run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
        mlflow.log_params(
            {
                "as_of": f"{report.as_of:%Y-%m-%d}",
                "observed_until": f"{report.observed_until:%Y-%m-%d}",
                "seed": settings.seed,
                **settings.monitor.model_dump(),
            }
        )
        mlflow.set_tags(
            {
                "drifted": str(report.drifted).lower(),
                "git_commit": tracking.git_commit(),
                **{f"{n}_version": c.version for n, c in report.checks.items()},
            }
        )
        metrics = [Metric(k, v, stamp, step) for k, v in sorted(values.items())]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 per batch
            client.log_batch(run_id, metrics=metrics[start : start + 900])
        for check in report.checks.values():
            table = pd.concat([check.scores, check.features], ignore_index=True)
            mlflow.log_text(table.to_csv(index=False), f"drift/{check.name}.csv")
        findings = [vars(f) for f in report.findings]
        mlflow.log_text(json.dumps(findings, indent=2), "findings.json")
        if report.report_path is not None:
            mlflow.log_artifact(str(report.report_path))
    return run_id
