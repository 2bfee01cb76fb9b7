"""CLI commands of the feature store: `memberscore features build|apply|materialize|show`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from memberscore.settings import get_settings
from pipelines.spark import Engine

app = typer.Typer(
    help="Build member feature snapshots and serve them through Feast "
    "(profile: MEMBERSCORE_PROFILE=local|production).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command()
def build(
    as_of: Annotated[
        str | None, typer.Option(help="Cutoff day YYYY-MM-DD, 00:00 UTC (default: today).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First cutoff of a series (YYYY-MM-DD).")
    ] = None,
    every: Annotated[str, typer.Option(help="Spacing of a series: 7d, 14d, 2w.")] = "7d",
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: DuckDB in this process; spark: Apache Spark at the spark_master "
            "setting (docs/batch.md). Both write the same files.",
        ),
    ] = Engine.local,
) -> None:
    """Compute per-member feature snapshots from the lake, one Parquet file per cutoff under
    data/features (the data dir). Rebuilding a cutoff replaces its file.

    Example: memberscore features build --from 2025-01-06 --every 7d --as-of 2025-12-29
    """
    from features import build as job

    last = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    first = date.fromisoformat(start) if start else None
    days = job.cutoffs(last, first, job.parse_every(every))
    _finish_erasures()
    if engine is Engine.spark:
        from pipelines.spark import features as spark_job

        spark_job.run(get_settings(), days, echo=typer.echo)
    else:
        job.run(get_settings(), days, echo=typer.echo)


@app.command()
def apply() -> None:
    """Write feature_store.yaml for the profile and register the member entity, the snapshot
    source, one feature view per catalog family and the feature services of the models.

    Example: memberscore features apply
    """
    from features import store

    settings = get_settings()
    names = store.apply(settings)
    typer.echo(
        f"applied {len(names)} Feast objects to project {settings.feast_project!r} "
        f"({settings.profile} profile): {', '.join(names)}"
    )


@app.command()
def materialize(
    batch_rows: Annotated[int, typer.Option(min=1, help="Members written per batch.")] = 100_000,
    method: Annotated[
        str,
        typer.Option(
            help="bulk: Feast's online layout written in bulk (fast); feast: Feast's own "
            "write_to_online_store, one protobuf per value (slow, for comparison)."
        ),
    ] = "bulk",
) -> None:
    """Load the latest snapshot of every member into the online store (SQLite locally, Redis
    in production). Published score cards of older features stop being served (members are
    scored live): `memberscore publish-scores` writes these features and the cards in one pass.

    Example: memberscore features materialize
    """
    from features import store
    from features.reader import check_snapshots

    if method not in ("bulk", "feast"):
        raise typer.BadParameter(f"--method must be bulk or feast, not {method!r}")
    settings = get_settings()
    _finish_erasures()
    check_snapshots(settings, chunk_rows=settings.chunk_rows)  # the API predicts on these rows
    report = store.materialize(settings, batch_rows=batch_rows, method=method)  # type: ignore[arg-type]
    typer.echo(report.describe())


@app.command()
def show(
    member_id: Annotated[str, typer.Argument(help="The member id, e.g. m0000001.")],
) -> None:
    """Print a member's features as served by the online store, and the cutoff they date from.

    Example: memberscore features show m0000001
    """
    from features import store
    from features.catalog import FAMILIES

    row = store.online_member(get_settings(), member_id)
    typer.echo(f"member {member_id}: features as of {row[store.AS_OF]:%Y-%m-%d %H:%M} UTC")
    width = max(len(str(name)) for name in row.index)
    for family, features in FAMILIES.items():
        typer.echo(f"[{family}]")
        for feature in features:
            typer.echo(f"  {feature.name:<{width}}  {row.get(feature.name)}")


def _finish_erasures() -> None:
    """Erasures the API recorded are finished before the lake or snapshots are read."""
    from pipelines.erase import finish_pending_quietly

    finish_pending_quietly(get_settings(), typer.echo)
