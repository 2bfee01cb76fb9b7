"""The `memberscore` command, the one composition root: each module here contributes the
subcommands of one area (data, features, training, decisions, serving, batch). Heavy libraries
(Feast, MLflow, LightGBM) are imported inside the commands so that `memberscore --help` stays
fast. Domain errors become exit code 2 with a one-line message here; that message, log records
and tracebacks are printed with URI passwords masked (`memberscore.redact`)."""

from __future__ import annotations

import sys

import typer

from memberscore.console import print_traceback, quiet_libraries, redact_output
from memberscore.errors import MemberscoreError
from memberscore.redact import redact


def build_app() -> typer.Typer:
    """Assemble the CLI from its command modules."""
    from pipelines.cli import data_commands as pipeline_commands

    app = typer.Typer(
        help="Member lifecycle scoring: simulate or ingest member data, build features, "
        "train models, score members and choose next-best actions.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    pipeline_commands.register(app)
    from pipelines.cli import feature_commands as features_commands

    app.add_typer(features_commands.app, name="features")
    from pipelines.cli import serving_commands

    serving_commands.register(app)
    from pipelines.cli import training_commands

    training_commands.register(app)
    from pipelines.cli import decision_commands

    decision_commands.register(app)
    from pipelines.cli import batch_commands

    batch_commands.register(app)
    from pipelines.cli import kpi_commands

    kpi_commands.register(app)
    from pipelines.cli import monitor_commands

    monitor_commands.register(app)
    return app


def main() -> None:
    """Entry point of the console script."""
    quiet_libraries()
    redact_output()
    try:
        build_app()()
    except MemberscoreError as error:
        typer.secho(f"error: {redact(error)}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except Exception as error:  # a bug: the traceback Python would print, passwords masked
        print_traceback(error)
        sys.exit(1)
