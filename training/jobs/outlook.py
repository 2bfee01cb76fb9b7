"""Job: fit the BTYD outlook model on the feature snapshots, backtest it and register it.

The model (`features.families.btyd`: Pareto/NBD + Gamma-Gamma on the rfm features) is fitted on the
snapshot of one cutoff, i.e. on purchases strictly before it. Backtest: fitted on the latest
snapshot whose churn window is fully observed, its P(no purchase in the churn horizon) is
scored against the churn labels of that window. Registered as `btyd` (alias `challenger`,
primary metric `backtest_roc_auc`, so `memberscore promote btyd` gates it like the others);
the score API serves the `champion` for P(alive) and the expected next-order date.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.btyd.outlook import BtydOutlook, outlook_frame, outlook_from_params
from features.families.btyd import DAYS_PER_WEEK, btyd_inputs, fit_family
from memberscore.errors import DataNotFound
from memberscore.settings import Settings
from training import tracking
from training.core import labels, metrics
from training.core.tasks import Task

MODEL_NAME = "btyd"
ARTIFACT_DIR = "btyd"
ARTIFACT_FILE = "outlook.json"
TASK = Task(MODEL_NAME, "binary", "churned", "btyd (rfm family)", "roc_auc")


@dataclass(frozen=True)
class OutlookReport:
    """What `run` fitted, measured and registered."""

    outlook: BtydOutlook
    as_of: pd.Timestamp
    backtest: dict[str, float]
    record: tracking.RunRecord


def read_snapshot(settings: Settings, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The stored feature snapshot of `cutoff` (features from data strictly before it), checked
    against the snapshot schema (`features.reader.read_snapshot`): DataNotFound when it is not
    built, ContractError when it does not fit."""
    from features.reader import read_snapshot as read_checked

    return read_checked(settings, cutoff.date())


def backtest(
    snapshot: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int
) -> dict[str, float]:
    """Churn metrics of P(no purchase in `horizon_days`) from a model fitted on `snapshot`
    (as of `cutoff`) against the churn labels of the window after it."""
    outlook = fit_family(snapshot)
    if outlook is None:
        raise DataNotFound(f"no repeat purchase before {cutoff:%Y-%m-%d}: nothing to fit")
    truth = labels.churn_labels(orders, cutoff, horizon_days, labels.observed_until(orders))
    summary = btyd_inputs(snapshot)
    scored = outlook_frame(outlook, summary, horizon_days / DAYS_PER_WEEK)
    p_none = scored["p_no_purchase"].reindex(truth["member_id"].astype(str)).to_numpy()
    if np.isnan(p_none).any():
        raise DataNotFound(f"snapshot {cutoff:%Y-%m-%d} lacks buyers that the labels have")
    return metrics.binary_report(truth["churned"].to_numpy(), p_none)


def evaluation_window(
    cutoffs: list[pd.Timestamp], orders: pd.DataFrame, horizon_days: int
) -> tuple[pd.Timestamp, int]:
    """(cutoff, days) of the backtest: the latest snapshot cutoff whose `horizon_days` window
    is fully observed; when none is, the window shortens to half the snapshots' span (whole
    weeks), so the fit still sees half of the history."""
    end = labels.observed_until(orders)
    days = horizon_days
    if not [c for c in cutoffs if c + pd.Timedelta(days=days) <= end]:
        days = min(horizon_days, 7 * (((end - cutoffs[0]).days // 2) // 7))
    usable = [c for c in cutoffs if c + pd.Timedelta(days=days) <= end] if days > 0 else []
    if not usable:
        raise DataNotFound(
            f"no snapshot cutoff has {horizon_days} days (or a week) of data after it; build "
            "snapshots further back (`memberscore features build --from ...`)"
        )
    return usable[-1], days


def log_outlook(
    settings: Settings, outlook: BtydOutlook, as_of: pd.Timestamp, scores: dict[str, float],
    params: dict[str, Any],
) -> tracking.RunRecord:  # fmt: skip
    """Log params, fitted parameters and backtest metrics; register a `btyd` version whose
    source is the `btyd/outlook.json` artifact, with alias `challenger`."""
    import mlflow

    params = {**params, "kind": outlook.kind, "as_of": f"{as_of:%Y-%m-%d}"}
    fitted = {f"fitted_{k}": v for k, v in outlook.params().items()}
    backtest = {f"backtest_{k}": float(v) for k, v in scores.items()}
    with tracking.training_run(
        settings, MODEL_NAME, MODEL_NAME, params=params, tags={}, metrics={**fitted, **backtest}
    ) as run:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ARTIFACT_FILE
            path.write_text(json.dumps(outlook_document(outlook, as_of), indent=2))
            mlflow.log_artifact(str(path), ARTIFACT_DIR)
        source = f"{run.info.artifact_uri}/{ARTIFACT_DIR}"
    client = tracking.client(settings)
    if client.search_registered_models(f"name = '{MODEL_NAME}'") == []:
        client.create_registered_model(MODEL_NAME)
    version = str(client.create_model_version(MODEL_NAME, source, run.info.run_id).version)
    key = f"backtest_{TASK.primary_metric}"
    return tracking.register_challenger(settings, run, MODEL_NAME, version, key, backtest[key])


def outlook_document(outlook: BtydOutlook, as_of: pd.Timestamp) -> dict[str, Any]:
    """The registered artifact: model kind, fitted parameters and the fit's cutoff."""
    return {"kind": outlook.kind, "params": outlook.params(), "as_of": f"{as_of:%Y-%m-%d}"}


def outlook_from_document(document: dict[str, Any]) -> BtydOutlook:
    """The `BtydOutlook` of an `outlook_document`."""
    return outlook_from_params(str(document["kind"]), dict(document["params"]))


def run(settings: Settings, progress: Callable[[str], None] = print) -> OutlookReport:
    """Backtest on the latest fully observed cutoff, fit on the latest snapshot, register."""
    from training.jobs.train import load_tables, snapshot_cutoffs

    cutoffs = snapshot_cutoffs(settings)
    if not cutoffs:
        raise DataNotFound("no feature snapshots; run `memberscore features build` first")
    _, orders = load_tables(settings)
    evaluated, horizon = evaluation_window(cutoffs, orders, settings.churn_horizon_days)
    if horizon < settings.churn_horizon_days:
        progress(
            f"the data cannot observe a {settings.churn_horizon_days}-day window after any "
            f"snapshot: the backtest uses {horizon} days"
        )
    progress(f"backtest: fitted on the snapshot of {evaluated:%Y-%m-%d}, churn window {horizon} d")
    scores = backtest(read_snapshot(settings, evaluated), orders, evaluated, horizon)
    progress(", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    latest = cutoffs[-1]
    outlook = fit_family(read_snapshot(settings, latest))
    if outlook is None:
        raise DataNotFound(f"no repeat purchase before {latest:%Y-%m-%d}: nothing to fit")
    progress(f"fitted on {latest:%Y-%m-%d}: " + ", ".join(
        f"{k}={v:.4g}" for k, v in outlook.params().items()))  # fmt: skip
    params = {"seed": settings.seed, "horizon_days": horizon, "evaluated": f"{evaluated:%Y-%m-%d}"}
    record = log_outlook(settings, outlook, latest, scores, params)
    return OutlookReport(outlook, latest, scores, record)


def load_champion(settings: Settings, alias: str = tracking.CHAMPION) -> BtydOutlook | None:
    """The `btyd` version holding `alias`, rebuilt from its artifact; None if none holds it."""
    version = tracking.aliased(tracking.client(settings), MODEL_NAME, alias)
    return None if version is None else load_version(str(version.run_id))


def load_version(run_id: str) -> BtydOutlook:
    """The `BtydOutlook` logged by the run `run_id` (a registered `btyd` version's run)."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        folder = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=ARTIFACT_DIR, dst_path=tmp
        )
        document = json.loads((Path(folder) / ARTIFACT_FILE).read_text())
    return outlook_from_document(document)
