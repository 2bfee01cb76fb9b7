"""CLI commands of the training jobs: train, backtest, promote."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from memberscore.settings import get_settings

if TYPE_CHECKING:
    from training.core.tasks import Task

TaskArg = Annotated[str, typer.Argument(help="churn, activation or clv.")]
CutoffsOpt = Annotated[
    str | None,
    typer.Option(help="Comma-separated cutoff dates (YYYY-MM-DD); default: a rolling series."),
]
EveryOpt = Annotated[
    int | None,
    typer.Option(help="Days between cutoffs (default: every feature snapshot, as built)."),
]
HorizonOpt = Annotated[
    int | None, typer.Option(help="Label horizon in days (default: the task's from settings).")
]
FoldsOpt = Annotated[int, typer.Option(help="Backtest folds (latest evaluation cutoffs).")]


def _dates(text: str | None) -> list[date] | None:
    """Parse '2024-01-01,2024-01-29' into dates."""
    if not text:
        return None
    try:
        return [date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise typer.BadParameter(f"--cutoffs must be YYYY-MM-DD dates: {error}") from None


def _task(name: str) -> Task:
    """The task called `name`, or a usage error."""
    from training.core.tasks import get_task

    try:
        return get_task(name)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="TASK") from None


def train(
    task: TaskArg,
    cutoffs: CutoffsOpt = None,
    every: EveryOpt = None,
    horizon: HorizonOpt = None,
    folds: FoldsOpt = 3,
) -> None:
    """Backtest, train and register a model; the new version gets alias `challenger`.

    Needs the lake (`memberscore ingest`) and feature snapshots in Feast (`memberscore features
    build` and `apply`). Refuses data below the minimums of settings (min_history_days,
    min_population, min_class_rows); prints the model beside the BTYD forecast and the naive
    baseline on the same folds and the version's quality grade (D is never promoted). When the
    history cannot label the horizon, trains on the longest one it can and carries the forecast
    with BTYD (said in the output and the MLflow tags). Example: memberscore train churn
    """
    from pipelines.erase import finish_pending_quietly
    from training.jobs import train as job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # no erased member's rows in training
    plan, frame = job.prepare(
        settings,
        _task(task),
        horizon_days=horizon,
        cutoffs=_dates(cutoffs),
        every_days=every,
        folds=folds,
        progress=typer.echo,
    )
    report = job.train(settings, plan, frame, progress=typer.echo)
    typer.echo(job.metric_table(report.result))
    record = report.record
    typer.echo(
        f"registered {record.model_name} version {record.version} as challenger "
        f"(run {record.run_id}); next: memberscore promote {record.model_name}"
    )


def backtest(
    task: TaskArg,
    cutoffs: CutoffsOpt = None,
    every: EveryOpt = None,
    horizon: HorizonOpt = None,
    folds: FoldsOpt = 3,
) -> None:
    """Rolling-origin backtest without registering anything; prints the metric table and, on
    simulator data, the comparison with the ground truth.

    Example: memberscore backtest clv --folds 3
    """
    from pipelines.erase import finish_pending_quietly
    from training.jobs import train as job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # no erased member's rows in training
    plan, frame = job.prepare(
        settings,
        _task(task),
        horizon_days=horizon,
        cutoffs=_dates(cutoffs),
        every_days=every,
        folds=folds,
        progress=typer.echo,
    )
    result = job.run_backtest(plan, frame, typer.echo)
    typer.echo(job.metric_table(result))
    typer.echo(job.family_table(plan.task, result))
    compared = job.truth_metrics(settings, plan, frame, result)
    if compared:
        typer.echo("vs ground truth: " + ", ".join(f"{k} {v:.4f}" for k, v in compared.items()))


def promote(
    task: Annotated[str, typer.Argument(help="Registered model name, e.g. churn or churn_30d.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses.")] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why the gate is overridden (required with --force).")
    ] = None,
) -> None:
    """Move alias `champion` to the challenger if it beats the champion on the backtest's
    primary metric (churn/activation: ROC AUC; clv: normalized Gini).

    Example: memberscore promote churn
    """
    from training import tracking

    typer.echo(tracking.promote(get_settings(), task, force=force, reason=reason).describe())


def train_btyd() -> None:
    """Fit the BTYD outlook (Pareto/NBD + Gamma-Gamma on the latest feature snapshot),
    backtest its P(no purchase) against churn and register it as `btyd` challenger.

    The score API serves the `btyd` champion for P(alive) and the expected next-order date.
    Example: memberscore train-btyd && memberscore promote btyd
    """
    from pipelines.erase import finish_pending_quietly
    from training.jobs import outlook as outlook_job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # no erased member's rows in training
    report = outlook_job.run(settings, progress=typer.echo)
    record = report.record
    typer.echo(
        f"registered {record.model_name} version {record.version} as challenger "
        f"(run {record.run_id}); next: memberscore promote btyd"
    )


def register(app: typer.Typer) -> None:
    """Add the training commands to the top-level CLI."""
    app.command()(train)
    app.command("train-btyd")(train_btyd)
    app.command()(backtest)
    app.command()(promote)
