"""CLI of the programme KPIs: `memberscore kpis`.

Thin: arguments in, one job call, the headline out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from memberscore.settings import get_settings


def kpis(
    as_of: Annotated[
        str | None,
        typer.Option(help="Use rows before this day YYYY-MM-DD, 00:00 UTC (default: today)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the report and tables (default: DATA_DIR/kpis/AS_OF/)."),
    ] = None,
) -> None:
    """Programme KPIs per month, by acquisition channel, tier and RFM segment (members,
    registrations, activation, repurchase, active / dormant / churned, churn and win-back,
    tier changes, order value, spend) and acquisition-cohort tables, from the lake: an HTML
    report with plots plus Parquet and CSV tables (definitions: docs/kpis.md).

    Example: memberscore kpis --as-of 2025-12-29
    """
    from pipelines.erase import finish_pending_quietly
    from pipelines.kpis import job

    try:
        day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    except ValueError:
        raise typer.BadParameter(f"--as-of {as_of!r} is not a date YYYY-MM-DD") from None
    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # no erased member in the figures
    typer.echo(job.run(settings, day, out).headline())


def register(app: typer.Typer) -> None:
    """Add `kpis` to the top-level CLI."""
    app.command()(kpis)
