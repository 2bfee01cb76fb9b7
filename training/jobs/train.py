"""Jobs: backtest, train (+ register as challenger) and promote a task's model.

Thin orchestration, no maths: canonical tables from the lake → the task's population per
cutoff → point-in-time features from Feast (`features.store.training_frame`, feature service
of the task) → data gates → rolling-origin backtest beside the BTYD forecast and the naive
baseline → quality grade → final model (latest labelable cutoff calibrates) → MLflow.

Cutoffs are 00:00 UTC instants: by default every feature snapshot (as dense as built, or
thinned with `every_days`). The label horizon and the folds come from
`training.core.horizons`: the requested horizon when the history labels it, else the longest
one that does, carried to the requested horizon with the BTYD prior.
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
from training.core import backtest, dataset, gates, horizons, labels, plots
from training.core.season import season
from training.core.tasks import Task, default_horizon
from training.models.boosting import BoostParams, prior_only
from training.models.persistence import Model
from training.models.prior import BtydPrior

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FeatureReader = Callable[[Settings, pd.DataFrame, str], pd.DataFrame]
Progress = Callable[[str], None]
DEFAULT_FOLDS = 3
MAX_TRAIN_CUTOFFS = 12  # the final model and every fold train on at most this many cutoffs
MIN_TRAIN_CUTOFFS = 3  # a backtest fold needs at least this many
ROLLING_EVERY_DAYS = 7  # cutoffs of a rolling series when there are no snapshots


@dataclass(frozen=True)
class TrainReport:
    """A finished training run: the registry record, the backtest behind it and its grade."""

    record: tracking.RunRecord
    result: backtest.BacktestResult
    cutoffs: tuple[pd.Timestamp, ...]
    grade: gates.Grade
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


def thin(cutoffs: Sequence[pd.Timestamp], every_days: int | None) -> list[pd.Timestamp]:
    """`cutoffs` kept at least `every_days` apart, counted back from the latest (all of them
    when `every_days` is None)."""
    ordered = sorted(cutoffs)
    if every_days is None or not ordered:
        return ordered
    if every_days <= 0:
        raise ValueError(f"every must be a positive number of days, got {every_days}")
    kept = [ordered[-1]]
    for cutoff in reversed(ordered[:-1]):
        if (kept[-1] - cutoff).days >= every_days:
            kept.append(cutoff)
    return kept[::-1]


def candidate_cutoffs(
    settings: Settings,
    orders: pd.DataFrame,
    cutoffs: Sequence[date] | None,
    every_days: int | None,
) -> list[pd.Timestamp]:
    """The given cutoffs, else the feature snapshots before the end of the data (as dense as
    built, or thinned to `every_days`), else a rolling series from the day after the first
    order; which of them are used depends on the horizon (`training.core.horizons`)."""
    end = labels.observed_until(orders)
    if cutoffs:
        return sorted(labels.as_cutoff(c) for c in cutoffs)
    snapshots = [s for s in snapshot_cutoffs(settings) if s < end]
    if snapshots:
        return thin(snapshots, every_days)
    first = labels.as_cutoff(orders["ordered_at"].min()).floor("D") + pd.Timedelta(days=1)
    every = every_days or ROLLING_EVERY_DAYS
    return dataset.rolling_cutoffs(first, end, every, every)


@dataclass(frozen=True)
class Plan:
    """What a job works on: the task, the horizon plan (forecast and label horizons, folds),
    the cutoffs with rows, the end of the data and the boosting parameters."""

    task: Task
    horizon: horizons.HorizonPlan
    cutoffs: tuple[pd.Timestamp, ...]
    end: pd.Timestamp
    params: BoostParams
    train_cutoffs: int = MAX_TRAIN_CUTOFFS

    @property
    def horizon_days(self) -> int:
        """The forecast horizon (days)."""
        return self.horizon.horizon_days

    @property
    def label_days(self) -> int:
        """The horizon the final model's labels cover (days)."""
        return self.horizon.label_days

    def final_split(self) -> backtest.Fold:
        """The production split: the latest labelable cutoff calibrates."""
        return backtest.final_split(self.cutoffs, self.end, self.label_days, self.train_cutoffs)


def make_plan(
    settings: Settings,
    task: Task,
    orders: pd.DataFrame,
    *,
    horizon_days: int | None = None,
    cutoffs: Sequence[date] | None = None,
    every_days: int | None = None,
    folds: int = DEFAULT_FOLDS,
) -> Plan:
    """A plan with the settings' default horizon and seed unless given. Its cutoffs are the
    ones the final model and the folds use, so a long series of snapshots costs no more
    feature rows than the plan needs."""
    horizon = horizon_days or default_horizon(settings, task)
    end = labels.observed_until(orders)
    candidates = candidate_cutoffs(settings, orders, cutoffs, every_days)
    if task.name in dataset.PRIOR_TASKS:
        fitting = dataset.with_repeat_buyers(orders, candidates)
        if candidates and not fitting:
            raise dataset.NotEnoughHistory(
                f"fewer than {dataset.MIN_REPEAT_BUYERS} members had bought twice before the "
                f"latest cutoff {max(candidates):%Y-%m-%d}: the BTYD forecast the {task.name} "
                "model starts from cannot be fitted; add history"
            )
        candidates = fitting
    chosen = horizons.plan_horizon(
        candidates,
        end,
        horizon,
        folds=folds,
        train_cutoffs=MAX_TRAIN_CUTOFFS,
        min_train=MIN_TRAIN_CUTOFFS,
    )
    final = backtest.final_split(candidates, end, chosen.label_days, MAX_TRAIN_CUTOFFS)
    used = {*final.train, final.calibrate}
    for fold in chosen.folds:
        used |= {*fold.train, fold.calibrate, *([fold.evaluate] if fold.evaluate else [])}
    return Plan(task, chosen, tuple(sorted(used)), end, BoostParams(seed=settings.seed))


def build_data(
    settings: Settings,
    plan: Plan,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    reader: FeatureReader,
) -> dataset.TrainingData:
    """The task's population at every cutoff joined with its point-in-time features."""
    members, orders = tables
    shortest = min(plan.label_days, plan.horizon.folds[0].label_days)
    entities = dataset.entity_frame(
        plan.task, members, orders, plan.cutoffs, shortest, plan.end, settings.monthly_discount_rate
    )
    keys = entities[[labels.MEMBER_ID, dataset.EVENT_TIMESTAMP]]
    frame = dataset.join_features(entities, reader(settings, keys, plan.task.feature_service))
    return dataset.training_data(plan.task, members, orders, frame, settings.monthly_discount_rate)


def data_gates(settings: Settings) -> gates.Gates:
    """The minimums of settings."""
    return gates.Gates(settings.min_history_days, settings.min_population, settings.min_class_rows)


def check_data(settings: Settings, plan: Plan, data: dataset.TrainingData) -> None:
    """Refuse (gates.NotEnoughData) data too small to train on."""
    split = plan.final_split()
    train = data.rows(split.train, plan.label_days)
    values = backtest.target(plan.task, train)
    first = labels.as_cutoff(data.orders["ordered_at"].min()).floor("D")
    latest = data.features.loc[data.features[labels.CUTOFF] == split.calibrate]
    gates.check_data(
        plan.task,
        data_gates(settings),
        history_days=(plan.end - first).days,
        population=len(latest),
        training_labels=values,
    )


def assess(
    settings: Settings, plan: Plan, data: dataset.TrainingData, result: backtest.BacktestResult
) -> gates.Grade:
    """The quality grade of a backtested plan (`training.core.gates.grade`)."""
    split = plan.final_split()
    values = backtest.target(plan.task, data.rows(split.train, plan.label_days))
    return gates.grade(
        plan.task,
        family_means(result),
        result.mean,
        folds=len(result.folds),
        smallest_class=min(gates.class_sizes(plan.task, values).values()),
        gates=data_gates(settings),
        chosen=chosen_family(result),
    )


def run_backtest(
    plan: Plan, data: dataset.TrainingData, progress: Progress = _quiet
) -> backtest.BacktestResult:
    """Rolling-origin backtest of `plan` on its training data."""
    folds = plan.horizon.folds
    progress(f"backtest {plan.task.name}: {len(folds)} folds over {len(plan.cutoffs)} cutoffs")
    if len(folds) < DEFAULT_FOLDS:
        progress(
            f"only {len(folds)} fold(s) fit the history ({DEFAULT_FOLDS} wanted): the "
            "backtest figures rest on fewer evaluation cutoffs"
        )
    return backtest.run(plan.task, data, folds, plan.params, progress)


def read_truth(settings: Settings) -> pd.DataFrame | None:
    """The simulator's truth members table, or None when the data did not come from it."""
    from simulator.truth import TRUTH_FILES

    path = settings.truth_dir / TRUTH_FILES["members"]
    return pd.read_parquet(path) if path.exists() else None


def truth_metrics(
    settings: Settings, plan: Plan, data: dataset.TrainingData, result: backtest.BacktestResult
) -> dict[str, float]:
    """Backtest predictions vs the simulator's ground truth (`training.core.truth`); empty when
    there is no truth or the task has none (activation)."""
    from training.core import truth

    members = read_truth(settings)
    if members is None or not (plan.task.name == "churn" or plan.task.kind == "spend"):
        return {}
    scored = result.predictions
    cutoffs = sorted(scored[labels.CUTOFF].unique())
    days = plan.horizon.folds[0].predict_days
    table = truth.truth_frame(plan.task, members, data.orders, cutoffs, days)
    return truth.compare(plan.task, truth.join_truth(scored, table, data.features))


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


def final_prior(settings: Settings, plan: Plan, data: dataset.TrainingData) -> BtydPrior | None:
    """The prior the registered model scores with: BTYD fitted on the latest feature snapshot
    (the data scoring will use; the latest training cutoff without snapshots), over the
    forecast horizon in average-rate days of the season from that date."""
    if not data.priors:
        return None
    from features.families.btyd import fit_family

    snapshots = snapshot_cutoffs(settings)
    if snapshots:
        from features.reader import read_snapshot

        as_of = snapshots[-1]
        outlook = fit_family(read_snapshot(settings, as_of.date()))
    else:
        as_of = max(data.priors)
        outlook = data.priors[as_of]
    if outlook is None:
        raise dataset.NotEnoughHistory(
            f"no BTYD model could be fitted as of {as_of:%Y-%m-%d}: no repeat purchases"
        )
    days = season(data.orders, as_of).effective_days(as_of, plan.horizon_days)
    return BtydPrior(outlook, days)


def chosen_family(result: backtest.BacktestResult) -> str:
    """`btyd` when the BTYD forecast alone beats the LightGBM correction on the folds' primary
    metric (the champion across families), else `lightgbm`."""
    means = family_means(result)
    return "btyd" if "btyd" in means and means["btyd"] > means["lightgbm"] else "lightgbm"


def fit_final(
    settings: Settings, plan: Plan, data: dataset.TrainingData, family: str = "lightgbm"
) -> Model:
    """The production model of `family`: the latest labelable cutoff calibrates, the
    `train_cutoffs` before it train; it scores with `final_prior`. The `btyd` family is the
    same estimator without splits (`prior_only`): the BTYD forecast, calibrated."""
    params = plan.params if family == "lightgbm" else prior_only(plan.params)
    model = backtest.fit(plan.task, data, plan.final_split(), params)
    return model.with_prior(final_prior(settings, plan, data))


def family_means(result: backtest.BacktestResult) -> pd.Series:
    """Mean primary metric per family over the folds."""
    return result.families.drop(columns=["evaluate"]).mean()


def family_table(task: Task, result: backtest.BacktestResult) -> str:
    """The model, the BTYD forecast and the naive baseline side by side, per fold and mean."""
    table = result.families.copy()
    table["evaluate"] = table["evaluate"].dt.strftime("%Y-%m-%d")
    mean = family_means(result).to_frame().T.assign(evaluate="mean")
    text = pd.concat([table, mean], ignore_index=True).to_string(
        index=False, float_format=lambda v: f"{v:.4f}"
    )
    return f"{task.primary_metric} by family (same folds, same rows):\n{text}"


def log(
    settings: Settings,
    plan: Plan,
    model: Model,
    data: dataset.TrainingData,
    result: backtest.BacktestResult,
    grade: gates.Grade,
    truth: Mapping[str, float] | None = None,
) -> tracking.RunRecord:
    """Log the run (with the ground-truth comparison `truth`, if any, as `backtest_truth_*`)
    and register the model as challenger, tagged with its grade and horizons. Only aggregates
    and the model go to MLflow: the feature rows give the schema and a synthetic input example
    (`tracking.typical_row`), never a member's row or id."""
    task, split = plan.task, plan.final_split()
    name = tracking.registry_name(task, plan.horizon_days, default_horizon(settings, task))
    meta = {
        "task": task.name,
        "horizon_days": plan.horizon_days,
        "label_horizon_days": plan.label_days,
        "feature_service": task.feature_service,
        "serving_outputs": list(model.outputs),
    }
    means = family_means(result)
    families = {f"backtest_{k}_{task.primary_metric}": v for k, v in means.items()}
    family = chosen_family(result)
    version_tags = {
        "family": family,
        tracking.GRADE_TAG: grade.letter,
        tracking.NOTES_TAG: "; ".join(grade.notes) or "none",
        "horizon_days": str(plan.horizon_days),
        "label_horizon_days": str(plan.label_days),
    }
    train_rows = data.rows(split.train, plan.label_days)
    return tracking.log_run(
        settings,
        task,
        name,
        model,
        params={
            **vars(plan.params),
            "horizon_days": plan.horizon_days,
            "label_horizon_days": plan.label_days,
            "cutoffs": len(plan.cutoffs),
            "train_cutoffs": len(split.train),
            "backtest_folds": len(result.folds),
            "calibration_cutoff": f"{split.calibrate:%Y-%m-%d}",
            "rows": len(train_rows),
        },
        tags={
            "feature_service": task.feature_service,
            "outputs": ",".join(model.outputs),
            "data_window": f"{split.train[0]:%Y-%m-%d}..{split.calibrate:%Y-%m-%d}"
            f" +{plan.label_days}d",
            "cutoffs": tracking.cutoff_text((*split.train, split.calibrate)),
            "horizon": plan.horizon.describe(),
            **version_tags,
        },
        metrics={f"backtest_{k}": v for k, v in {**result.mean, **(truth or {})}.items()}
        | families
        | {f"backtest_{task.primary_metric}": float(means[family])},
        figures=figures(task, model, result),
        tables={"backtest_folds": result.folds, "backtest_families": result.families},
        features=data.features[list(model.encoding_.feature_names)],
        meta=meta,
        version_tags=version_tags,
    )


def train(
    settings: Settings,
    plan: Plan,
    data: dataset.TrainingData,
    progress: Progress = _quiet,
) -> TrainReport:
    """Check the data, backtest, grade, fit the final model, log it and set alias
    `challenger` on the new version."""
    check_data(settings, plan, data)
    result = run_backtest(plan, data, progress)
    progress(family_table(plan.task, result))
    grade = assess(settings, plan, data, result)
    progress(grade.describe() + ("" if grade.promotable else " — it will not be promoted"))
    compared = truth_metrics(settings, plan, data, result)
    if compared:
        progress("vs ground truth: " + ", ".join(f"{k} {v:.4f}" for k, v in compared.items()))
    split = plan.final_split()
    progress(
        f"final model: {len(split.train)} training cutoffs, calibrated on "
        f"{split.calibrate:%Y-%m-%d}, labels over {plan.label_days} d"
    )
    family = chosen_family(result)
    if family != "lightgbm":
        progress(
            f"the BTYD forecast alone beats the LightGBM correction on the folds: the "
            f"registered {plan.task.name} model is the calibrated BTYD forecast"
        )
    model = fit_final(settings, plan, data, family)
    progress("logging to MLflow and registering the version")
    record = log(settings, plan, model, data, result, grade, compared)
    return TrainReport(record, result, plan.cutoffs, grade, compared)


def prepare(
    settings: Settings,
    task: Task,
    *,
    horizon_days: int | None = None,
    cutoffs: Sequence[date] | None = None,
    every_days: int | None = None,
    folds: int = DEFAULT_FOLDS,
    reader: FeatureReader = feast_reader,
    progress: Progress = _quiet,
) -> tuple[Plan, dataset.TrainingData]:
    """Read the lake, plan horizons and cutoffs and build the training data."""
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
        f"{task.name}: horizon {plan.horizon_days} days, {plan.horizon.describe()}; "
        f"{len(plan.cutoffs)} cutoffs {plan.cutoffs[0]:%Y-%m-%d}..{plan.cutoffs[-1]:%Y-%m-%d}; "
        f"joining features of {task.feature_service}"
    )
    data = build_data(settings, plan, tables, reader)
    progress(f"{len(data.features):,} member-cutoff rows, {len(data.feature_names)} features")
    return plan, data


def metric_table(result: backtest.BacktestResult) -> str:
    """Per-fold metrics and their mean as aligned text."""
    table = result.folds.copy()
    for column in ("evaluate", "calibrate"):
        table[column] = table[column].dt.strftime("%Y-%m-%d")
    mean = result.mean.to_frame().T.assign(evaluate="mean", calibrate="", train_cutoffs="")
    return pd.concat([table, mean], ignore_index=True).to_string(
        index=False, float_format=lambda v: f"{v:.4f}"
    )
