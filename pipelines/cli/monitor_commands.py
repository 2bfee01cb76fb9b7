"""CLI command of the monitor: `memberscore monitor`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from memberscore.settings import get_settings

DRIFT_EXIT = 3  # a champion drifted or decayed; 2 stays the exit code of a domain error


def monitor(
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Snapshot to check (default: the latest)."),
    ] = None,
    track: Annotated[
        bool, typer.Option(help="Log the figures to MLflow (experiment memberscore-monitor).")
    ] = True,
) -> None:
    """Check every champion (churn, activation, clv) for drift and decay.

    Drift: PSI of each feature and of the score, and missing-share changes, between the
    champion's training snapshots and the latest snapshot. Decay: predictions at the latest
    snapshot cutoff whose horizon has matured (from its batch run, or recomputed) against what
    happened since (ROC AUC, ECE, Gini, total bias), beside the backtest the version was
    promoted on. Thresholds: `[monitor]` in settings. Writes
    `<data>/monitor/<date>/report.html` and one MLflow run per invocation.

    Exit codes: 0 every champion stable; **3 drift or decay found** (the output says what and
    the `memberscore train ...` command to run); 2 missing data or models; 1 a bug.

    Example: memberscore monitor
    """
    from pipelines.erase import finish_pending_quietly
    from pipelines.monitor import job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # no erased member's rows in the figures
    report = job.run(
        settings,
        as_of=None if as_of is None else as_of.date(),
        track=track,
        progress=typer.echo,
    )
    typer.echo(report.headline())
    if report.drifted:
        raise typer.Exit(DRIFT_EXIT)


def register(app: typer.Typer) -> None:
    """Add the monitor command to the top-level CLI."""
    app.command()(monitor)
