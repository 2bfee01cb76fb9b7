"""The end-to-end demo behind `make demo`: every job of the project, in order, on simulated data.

Each step prints what it did and where its output went. Rerunning it is safe: the simulator is
seeded, so the second ingest finds every row already stored and skips it as a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import typer

from memberscore.contract import TABLES
from memberscore.settings import Settings

DEMO_MEMBERS = 20_000
DEMO_DAYS = 730
DEMO_START = date(2024, 1, 1)


def run(settings: Settings) -> None:
    """Run every demo step; a failing step stops the demo with its error."""
    started = time.perf_counter()
    for title, step in _steps():
        typer.secho(f"\n== {title}", bold=True)
        step(settings)
    typer.secho(f"\nDemo finished in {time.perf_counter() - started:.0f} s.", bold=True)
    typer.echo(f"Data: {settings.data_dir.resolve()}  (lake, quarantine, raw, truth)")


def _steps() -> list[tuple[str, Callable[[Settings], None]]]:
    return [
        (f"Simulate {DEMO_MEMBERS:,} members over {DEMO_DAYS} days", _simulate),
        ("Ingest the four tables into the lake", _ingest),
    ]


def _simulate(settings: Settings) -> None:
    from pipelines import simulate

    summary = simulate.run(
        settings, members=DEMO_MEMBERS, days=DEMO_DAYS, seed=settings.seed, start=DEMO_START
    )
    typer.echo(summary.describe())


def _ingest(settings: Settings) -> None:
    from pipelines import ingest

    for name in TABLES:
        source = settings.raw_dir / f"{name}.parquet"
        report = ingest.ingest(settings, name, str(source), currency=settings.currency)
        typer.echo(report.describe())
