"""CLI of batch scoring and campaigns: `memberscore batch-score` and
`memberscore campaign build|measure`. Thin: arguments in, one job call, text out."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from memberscore.settings import get_settings

campaign_app = typer.Typer(
    help="Campaign lists for the CRM from a batch run, and their measured lift.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


def batch_score(
    as_of: Annotated[str, typer.Option(help="Snapshot cutoff to score (YYYY-MM-DD).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: data/outputs/batch-AS_OF)."),
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="Only members of this RFM segment (repeatable).")
    ] = None,
    csv: Annotated[bool, typer.Option(help="Also write each part as CSV.")] = False,
    force: Annotated[bool, typer.Option(help="Redo a finished (or different) run.")] = False,
    engine: Annotated[
        str, typer.Option(help="Execution engine: local, or spark (docs/batch.md).")
    ] = "local",
    reasons: Annotated[
        int, typer.Option(help="Reason codes per member (SHAP, ~4 ms a member; 0: none).")
    ] = 3,
    reasons_for: Annotated[
        str, typer.Option(help="Members given reason codes: actioned (sent an action) or all.")
    ] = "actioned",
    catalogue: Annotated[
        Path | None, typer.Option(help="Action catalogue YAML (default: the shipped one).")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            help="Only recheck the run's part checksums against its manifest; exit 1 if any "
            "part is missing or changed (a rerun without --verify repairs it)."
        ),
    ] = False,
) -> None:
    """Score every member of a feature snapshot (three models, stage, reason codes, next-best
    action) into Parquet parts with a manifest and an HTML report. A killed run resumes where
    it stopped; a finished run is not redone without --force, but its part checksums are
    rechecked and a missing or changed part is rescored.

    Example: memberscore batch-score --as-of 2025-12-29 --segment at_risk --csv
    """
    from decisions.catalogue import load_catalogue
    from pipelines.batch import job as batch

    settings = get_settings()
    day = _day(as_of, "--as-of")
    if verify:
        checked = batch.verify(out or batch.default_out(settings, day))
        typer.echo(checked.describe())
        raise typer.Exit(0 if checked.ok else 1)
    from pipelines.erase import finish_pending_quietly

    finish_pending_quietly(settings, typer.echo)  # erasures the API recorded, first
    summary = batch.run(
        settings,
        day,
        out,
        segments=segment or (),
        csv=csv,
        force=force,
        engine=engine,
        catalogue=load_catalogue(catalogue) if catalogue else None,
        reasons=reasons,
        reasons_for=reasons_for,
    )
    typer.echo(summary.describe())


@campaign_app.command()
def build(
    run: Annotated[Path, typer.Option(help="Folder of a finished batch-score run.")],
    budget: Annotated[
        float | None, typer.Option(help="Offer budget in the dataset currency (default: none).")
    ] = None,
    max_per_action: Annotated[
        int | None, typer.Option(help="At most this many members per action list.")
    ] = None,
    control_share: Annotated[
        float, typer.Option(help="Share of each list held out as its control group.")
    ] = 0.1,
) -> None:
    """One CSV per action for the CRM (member_id, action, channel, expected_value, reason,
    group, spend_mean, clv_mean), members picked by expected value per unit cost until the
    budget is spent, with a random control group per action marked `group=control` (do not
    contact them).

    Example: memberscore campaign build --run data/outputs/batch-2025-12-29 --budget 5000
    """
    from pipelines import campaign
    from pipelines.erase import finish_pending_quietly

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)  # erasures the API recorded leave the lists
    summary = campaign.build(
        settings,
        run,
        budget=budget,
        max_per_action=max_per_action,
        control_share=control_share,
    )
    typer.echo(summary.describe())


@campaign_app.command()
def measure(
    since: Annotated[str, typer.Option("--from", help="First day of sends (YYYY-MM-DD).")],
    until: Annotated[str, typer.Option("--to", help="Day after the last send (YYYY-MM-DD).")],
    contacts: Annotated[
        Path | None,
        typer.Option(help="Contact log export, CSV or Parquet (default: the lake's contacts)."),
    ] = None,
    window_days: Annotated[int, typer.Option(help="Days after a send that count.")] = 30,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
) -> None:
    """Lift of each action against its control group: response rate, response value and net
    revenue per contact in the window after sending, with confidence intervals; also saved as
    CSV under data/outputs.

    Example: memberscore campaign measure --from 2025-10-01 --to 2026-01-01
    """
    import pandas as pd

    from pipelines import campaign

    settings = get_settings()
    start, end = _day(since, "--from"), _day(until, "--to")
    table = campaign.measure(
        settings,
        since=start,
        until=end,
        contacts=contacts,
        window_days=window_days,
        confidence=confidence,
    )
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    path = settings.outputs_dir / f"campaign-lift-{start}-{end}.csv"
    table.to_csv(path, index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        typer.echo(table.round(4).to_string(index=False))
    typer.echo(f"saved: {path}")


def register(app: typer.Typer) -> None:
    """Add `batch-score` and the `campaign` group to the top-level CLI."""
    app.command("batch-score")(batch_score)
    app.add_typer(campaign_app, name="campaign")
