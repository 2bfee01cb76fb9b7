"""CLI commands of the data jobs: simulate, ingest, import, demo."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from memberscore.settings import get_settings

import_app = typer.Typer(
    help="Import real exports that are not in the canonical format.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def simulate(
    members: Annotated[int, typer.Option(help="Number of members to register.")] = 20_000,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 730,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: settings.seed).")] = None,
    start: Annotated[str, typer.Option(help="First simulated day (YYYY-MM-DD).")] = "2024-01-01",
) -> None:
    """Simulate a member programme and write its four tables to <data>/raw and the ground truth
    to <data>/truth.

    Example: memberscore simulate --members 20000 --days 730 --seed 42
    """
    from pipelines import simulate as job

    settings = get_settings()
    summary = job.run(
        settings,
        members=members,
        days=days,
        seed=settings.seed if seed is None else seed,
        start=date.fromisoformat(start),
    )
    typer.echo(summary.describe())


def ingest(
    table: Annotated[str, typer.Argument(help="members, orders, events, contacts or consents.")],
    source: Annotated[
        str, typer.Argument(help="A CSV or Parquet file, or a postgresql:// URL with --pg-table.")
    ],
    pg_table: Annotated[
        str | None, typer.Option(help="Table (or schema.table) to read when SOURCE is a URL.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="IANA zone (e.g. Europe/Berlin) to read timestamps without an offset in "
            "(default: quarantine them)."
        ),
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="Currency of amounts (default: settings.currency).")
    ] = None,
    ignore_unknown_columns: Annotated[
        bool, typer.Option(help="Drop columns that are not in the contract instead of failing.")
    ] = False,
) -> None:
    """Validate a canonical table and store its rows in the lake; rejected rows go to quarantine.

    Prints read = stored + quarantined + duplicates skipped. Re-ingesting a file stores nothing
    twice; a run stores all its rows or none. An unreadable file (not UTF-8, no header, broken
    Parquet) stops with exit code 2 and one line saying what to do.

    Example: memberscore ingest orders data/raw/orders.parquet
    """
    from pipelines.erase import finish_pending_quietly
    from pipelines.ingest import tables as job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)
    report = job.ingest(
        settings,
        table,
        source,
        pg_table=pg_table,
        assume_timezone=timezone,
        currency=currency or settings.currency,
        ignore_unknown=ignore_unknown_columns,
    )
    typer.echo(report.describe())


@import_app.command("orderlines")
def import_orderlines(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file with one row per line item.")],
    order_col: Annotated[str, typer.Option(help="Column with the invoice / order id.")],
    member_col: Annotated[str, typer.Option(help="Column with the customer id.")],
    time_col: Annotated[str, typer.Option(help="Column with the line timestamp.")],
    quantity_col: Annotated[str, typer.Option(help="Column with the quantity.")],
    price_col: Annotated[str, typer.Option(help="Column with the unit price.")],
    cancel_prefix: Annotated[
        str | None, typer.Option(help="Order-id prefix marking a cancellation or return.")
    ] = None,
    channel: Annotated[str, typer.Option(help="Channel to record on every order.")] = "online",
    timezone: Annotated[
        str, typer.Option(help="IANA zone of timestamps that carry no offset.")
    ] = "UTC",
    currency: Annotated[str | None, typer.Option(help="Currency of the prices.")] = None,
) -> None:
    """Aggregate an order-lines export into orders (and derived members) and ingest them.

    Lines with a negative quantity or an order id starting with --cancel-prefix become returns;
    lines without a customer id are quarantined.

    Example: memberscore import orderlines retail.csv --order-col Invoice --member-col
    "Customer ID" --time-col InvoiceDate --quantity-col Quantity --price-col Price
    --cancel-prefix C --timezone Europe/London --currency GBP
    """
    from pipelines.erase import finish_pending_quietly
    from pipelines.ingest import importers as job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)
    mapping = job.LineMapping(
        order=order_col,
        member=member_col,
        time=time_col,
        quantity=quantity_col,
        price=price_col,
        cancel_prefix=cancel_prefix,
        channel=channel,
        timezone=timezone,
    )
    report = job.import_orderlines(settings, path, mapping, currency=currency or settings.currency)
    typer.echo(report.describe())


@import_app.command("cdnow")
def import_cdnow(
    path: Annotated[Path, typer.Argument(help="CDNOW_master.txt or CDNOW_sample.txt.")],
) -> None:
    """Import the CDNOW purchase log (customer id, YYYYMMDD date, CDs, dollars) in one step.

    Example: memberscore import cdnow ../shared/data/cdnow/CDNOW_master.txt
    """
    from pipelines.erase import finish_pending_quietly
    from pipelines.ingest import importers as job

    settings = get_settings()
    finish_pending_quietly(settings, typer.echo)
    report = job.import_cdnow(settings, path)
    typer.echo(report.describe())


def erase(
    member_ids: Annotated[
        list[str] | None, typer.Argument(help="Ids of the members to erase.", show_default=False)
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Finish the erasures requested through the API.")
    ] = False,
) -> None:
    """Erase members from every store: the lake (affected partitions rewritten), quarantine,
    raw exports, ground truth, feature snapshots, online store, published cards, contact log,
    consent register, batch outputs and campaign lists. Prints what was removed per store and
    records each member in the erasure log (a salted hash, never the id), so a later ingest
    skips their rows. An unknown member is not an error: nothing is removed, it is recorded.

    Example: memberscore erase m0000003 m0000004
    """
    from pipelines import erase as job

    settings = get_settings()
    if pending:
        report = job.finish_pending(settings)
        typer.echo("no erasure pending" if report is None else report.describe())
    if member_ids:
        typer.echo(job.erase(settings, member_ids).describe())
    elif not pending:
        raise typer.BadParameter("give member ids to erase, or --pending")


def demo() -> None:
    """Run the whole pipeline end to end on simulated data and print where everything went.

    Example: memberscore demo
    """
    from pipelines import demo as job

    job.run(get_settings())


def register(app: typer.Typer) -> None:
    """Add the data-job commands to the top-level CLI."""
    app.command()(simulate)
    app.command()(ingest)
    app.add_typer(import_app, name="import")
    app.command()(erase)
    app.command()(demo)
