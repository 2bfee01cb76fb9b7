"""Jobs: backtest, train (+ register as challenger) and promote a task's model.

Thin orchestration, no maths: canonical tables from the lake → labelled entity rows per cutoff
→ point-in-time features from Feast (`features.store.training_frame`, feature service of the
task) → rolling-origin backtest → final model (latest cutoff calibrates) → MLflow.

Cutoffs are 00:00 UTC instants. By default they run every `every_days` back from the latest
labelable cutoff (data end − horizon) to the first feature snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from memberscore.contract import MEMBERS, ORDERS
from memberscore.settings import Settings
from training import tracking
from training.core import backtest, dataset, labels, plots
from training.core.tasks import Task, default_horizon
from training.models.boosting import BoostParams
from training.models.persistence import Model
from training.models.spend import SpendModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FeatureReader = Callable[[Settings, pd.DataFrame, str], pd.DataFrame]
Progress = Callable[[str], None]
DEFAULT_EVERY_DAYS = 28
DEFAULT_FOLDS = 3


@dataclass(frozen=True)
class TrainReport:
    """A finished training run: the registry record and the backtest behind it."""

    record: tracking.RunRecord
    result: backtest.BacktestResult
    cutoffs: tuple[pd.Timestamp, ...]
    truth: dict[str, float] = field(default_factory=dict)


def _quiet(_: str) -> None:
    """Progress sink that prints nothing."""


def feast_reader(settings: Settings, entities: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time features from the Feast offline store, once every snapshot file it joins
    from fits the snapshot schema (`features.reader.check_snapshots`; ContractError if not)."""
    from features.reader import check_snapshots
    from features.store import training_frame

    check_snapshots(settings, chunk_rows=settings.chunk_rows)
    return training_frame(settings, entities, service)


def load_tables(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(members, orders) from the lake, as canonical typed tables."""
    from memberscore import lake

    lake.require(settings.lake_dir, ORDERS)
    return lake.read(settings.lake_dir, MEMBERS), lake.read(settings.lake_dir, ORDERS)


def snapshot_cutoffs(settings: Settings) -> list[pd.Timestamp]:
    """Cutoffs of the built feature snapshots, oldest first (empty when none are built)."""
    from features.store import SNAPSHOT_PREFIX, snapshot_files

    return [
        labels.as_cutoff(f.stem.removeprefix(SNAPSHOT_PREFIX)) for f in snapshot_files(settings)
    ]


def choose_cutoffs(
    settings: Settings,
    orders: pd.DataFrame,
    horizon_days: int,
    cutoffs: Sequence[date] | None,
    every_days: int,
) -> list[pd.Timestamp]:
    """The given cutoffs (each checked to be labelable), or a rolling series.

    The series ends at the latest labelable snapshot cutoff (so features are as of the cutoff
    itself, not an older snapshot) and starts no earlier than the first snapshot; without
    snapshots it spans from the day after the first order to data end − horizon.
    """
    end = labels.observed_until(orders)
    if cutoffs:
        chosen = sorted(labels.as_cutoff(c) for c in cutoffs)
        for cutoff in chosen:
            labels.check_labelable(cutoff, horizon_days, end)
        return chosen
    window = pd.Timedelta(days=horizon_days)
    snapshots = snapshot_cutoffs(settings)
    fitting = [s for s in snapshots if s + window <= end]
    if fitting:
        return dataset.rolling_cutoffs(snapshots[0], fitting[-1] + window, horizon_days, every_days)
    first = labels.as_cutoff(orders["ordered_at"].min()).floor("D") + pd.Timedelta(days=1)
    return dataset.rolling_cutoffs(
        snapshots[0] if snapshots else first, end, horizon_days, every_days
    )


def build_frame(
    settings: Settings,
    task: Task,
    cutoffs: Sequence[pd.Timestamp],
    horizon_days: int,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    reader: FeatureReader,
) -> pd.DataFrame:
    """Labelled rows for every cutoff joined with the task's point-in-time features."""
    members, orders = tables
    end = labels.observed_until(orders)
    entities = dataset.entity_frame(
        task, members, orders, cutoffs, horizon_days, end, settings.monthly_discount_rate
    )
    keys = entities[[labels.MEMBER_ID, dataset.EVENT_TIMESTAMP]]
    return dataset.join_features(entities, reader(settings, keys, task.feature_service))


@dataclass(frozen=True)
class Plan:
    """What a job works on: the task, horizon (days), cutoffs and boosting parameters."""

    task: Task
    horizon_days: int
    cutoffs: tuple[pd.Timestamp, ...]
    params: BoostParams
    folds: int = DEFAULT_FOLDS


def make_plan(
    settings: Settings,
    task: Task,
    orders: pd.DataFrame,
    *,
    horizon_days: int | None = None,
    cutoffs: Sequence[date] | None = None,
    every_days: int = DEFAULT_EVERY_DAYS,
    folds: int = DEFAULT_FOLDS,
) -> Plan:
    """A plan with the settings' default horizon and seed unless given."""
    horizon = horizon_days or default_horizon(settings, task)
    chosen = choose_cutoffs(settings, orders, horizon, cutoffs, every_days)
    return Plan(task, horizon, tuple(chosen), BoostParams(seed=settings.seed), folds)


def run_backtest(
    plan: Plan, frame: pd.DataFrame, progress: Progress = _quiet
) -> backtest.BacktestResult:
    """Rolling-origin backtest of `plan` on a built frame."""
    folds = backtest.plan_folds(plan.cutoffs, plan.horizon_days, plan.folds)
    progress(f"backtest {plan.task.name}: {len(folds)} folds over {len(plan.cutoffs)} cutoffs")
    return backtest.run(plan.task, frame, folds, plan.params, progress)


def read_truth(settings: Settings) -> pd.DataFrame | None:
    """The simulator's truth members table, or None when the data did not come from it."""
    from simulator.truth import TRUTH_FILES

    path = settings.truth_dir / TRUTH_FILES["members"]
    return pd.read_parquet(path) if path.exists() else None


def truth_metrics(
    settings: Settings, plan: Plan, frame: pd.DataFrame, result: backtest.BacktestResult
) -> dict[str, float]:
    """Backtest predictions vs the simulator's ground truth (`training.core.truth`); empty when
    there is no truth or the task has none (activation)."""
    from training.core import truth

    members = read_truth(settings)
    if members is None or not (plan.task.name == "churn" or plan.task.kind == "spend"):
        return {}
    _, orders = load_tables(settings)
    scored = result.predictions
    cutoffs = sorted(scored[labels.CUTOFF].unique())
    table = truth.truth_frame(plan.task, members, orders, cutoffs, plan.horizon_days)
    return truth.compare(plan.task, truth.join_truth(scored, table, frame))


def figures(task: Task, model: Model, result: backtest.BacktestResult) -> dict[str, Figure]:
    """Evaluation plots of the latest backtest fold and the final model's importance."""
    latest = result.predictions.loc[
        result.predictions[labels.CUTOFF] == result.predictions[labels.CUTOFF].max()
    ]
    y, p = latest["actual"].to_numpy(), latest["prediction"].to_numpy()
    booster = next(iter(model.boosters.values()))
    out: dict[str, Figure] = {
        "gains": plots.gains_figure(y.clip(0), p),
        "importance": plots.importance_figure(
            model.encoding_.feature_names, booster.feature_importance("gain")
        ),
    }
    if task.kind == "binary":
        out.update(roc=plots.roc_figure(y, p), calibration=plots.calibration_figure(y, p))
    else:
        from training.core.metrics import decile_table

        out["deciles"] = plots.decile_figure(decile_table(y, p))
    return out


def fit_final(plan: Plan, frame: pd.DataFrame) -> Model:
    """The production model: every cutoff but the latest trains, the latest calibrates."""
    return backtest.fit(plan.task, frame, backtest.final_split(plan.cutoffs), plan.params)


def log(
    settings: Settings,
    plan: Plan,
    model: Model,
    frame: pd.DataFrame,
    result: backtest.BacktestResult,
    truth: Mapping[str, float] | None = None,
) -> tracking.RunRecord:
    """Log the run (with the ground-truth comparison `truth`, if any, as `backtest_truth_*`)
    and register the model as challenger."""
    task, split = plan.task, backtest.final_split(plan.cutoffs)
    name = tracking.registry_name(task, plan.horizon_days, default_horizon(settings, task))
    outputs = ("expected_spend", *SpendModel.outputs) if task.kind == "spend" else ("probability",)
    meta = {
        "task": task.name,
        "horizon_days": plan.horizon_days,
        "feature_service": task.feature_service,
        "serving_outputs": list(model.outputs),
    }
    return tracking.log_run(
        settings,
        task,
        name,
        model,
        params={
            **vars(plan.params),
            "horizon_days": plan.horizon_days,
            "cutoffs": len(plan.cutoffs),
            "backtest_folds": len(result.folds),
            "calibration_cutoff": f"{split.calibrate:%Y-%m-%d}",
            "rows": len(frame),
        },
        tags={
            "feature_service": task.feature_service,
            "outputs": ",".join(outputs),
            "data_window": f"{plan.cutoffs[0]:%Y-%m-%d}..{plan.cutoffs[-1]:%Y-%m-%d}"
            f" +{plan.horizon_days}d",
            "cutoffs": tracking.cutoff_text(plan.cutoffs),
        },
        metrics={f"backtest_{k}": v for k, v in {**result.mean, **(truth or {})}.items()},
        figures=figures(task, model, result),
        tables={"backtest_folds": result.folds},
        example=tracking.input_example(model, frame[list(model.encoding_.feature_names)]),
        meta=meta,
    )


def train(
    settings: Settings,
    plan: Plan,
    frame: pd.DataFrame,
    progress: Progress = _quiet,
) -> TrainReport:
    """Backtest, fit the final model, log it and set alias `challenger` on the new version."""
    result = run_backtest(plan, frame, progress)
    compared = truth_metrics(settings, plan, frame, result)
    if compared:
        progress("vs ground truth: " + ", ".join(f"{k} {v:.4f}" for k, v in compared.items()))
    progress(f"final model: {len(plan.cutoffs) - 1} training cutoffs, calibrated on the latest")
    model = fit_final(plan, frame)
    progress("logging to MLflow and registering the version")
    record = log(settings, plan, model, frame, result, compared)
    return TrainReport(record, result, plan.cutoffs, compared)


def prepare(
    settings: Settings,
    task: Task,
    *,
    horizon_days: int | None = None,
    cutoffs: Sequence[date] | None = None,
    every_days: int = DEFAULT_EVERY_DAYS,
    folds: int = DEFAULT_FOLDS,
    reader: FeatureReader = feast_reader,
    progress: Progress = _quiet,
) -> tuple[Plan, pd.DataFrame]:
    """Read the lake, choose cutoffs and build the labelled feature frame."""
    progress("reading members and orders from the lake")
    tables = load_tables(settings)
    plan = make_plan(
        settings,
        task,
        tables[1],
        horizon_days=horizon_days,
        cutoffs=cutoffs,
        every_days=every_days,
        folds=folds,
    )
    progress(
        f"{task.name}: {len(plan.cutoffs)} cutoffs {tracking.cutoff_text(plan.cutoffs)}, "
        f"horizon {plan.horizon_days} days; joining features of {task.feature_service}"
    )
    frame = build_frame(settings, task, plan.cutoffs, plan.horizon_days, tables, reader)
    progress(f"{len(frame):,} labelled rows, {len(dataset.feature_columns(frame))} features")
    return plan, frame


def metric_table(result: backtest.BacktestResult) -> str:
    """Per-fold metrics and their mean as aligned text."""
    table = result.folds.copy()
    for column in ("evaluate", "calibrate"):
        table[column] = table[column].dt.strftime("%Y-%m-%d")
    mean = result.mean.to_frame().T.assign(evaluate="mean", calibrate="", train_cutoffs="")
    return pd.concat([table, mean], ignore_index=True).to_string(
        index=False, float_format=lambda v: f"{v:.4f}"
    )
