"""The CLI edge prints no password: domain errors, bugs' tracebacks and log records
(issue 14 finding 2)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator

import pytest
import typer

import pipelines.cli as cli
from memberscore.console import redact_output
from memberscore.errors import StoreUnavailable
from memberscore.redact import RedactingFilter

UNREACHABLE = "postgresql+psycopg://user:PASSWORD@127.0.0.1:1/db"


def _app_failing_with(error: Exception) -> Callable[[], typer.Typer]:
    """A build_app whose one command raises `error`."""

    def build() -> typer.Typer:
        app = typer.Typer(pretty_exceptions_enable=False)

        @app.command()
        def fail() -> None:
            raise error

        return app

    return build


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """Restore the root logger's handlers after main() added its redacting one."""
    saved = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers = saved


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StoreUnavailable(f"the MLflow registry at {UNREACHABLE} cannot be read"), 2),
        (RuntimeError(f"could not connect to {UNREACHABLE}"), 1),
    ],
)
def test_main_prints_errors_and_tracebacks_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_handlers: None,
    error: Exception,
    code: int,
) -> None:
    # Given a command failing with a message that holds a password URI
    monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", "false")  # main() sets it: undone after
    monkeypatch.setattr(cli, "build_app", _app_failing_with(error))
    monkeypatch.setattr(sys, "argv", ["memberscore"])

    # When the CLI runs it
    with pytest.raises(SystemExit) as stopped:
        cli.main()

    # Then it exits as before (2: a domain error; 1: a bug), the URI shown masked
    printed = capsys.readouterr().err
    assert stopped.value.code == code, printed
    assert "PASSWORD" not in printed, f"the CLI printed the password:\n{printed}"
    assert "user:***@127.0.0.1:1" in printed, printed


def test_log_records_of_any_library_are_redacted(
    capsys: pytest.CaptureFixture[str], root_handlers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the CLI's output set up (twice: one handler)
    monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", "false")
    redact_output()
    redact_output()
    redacting = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactingFilter) for f in h.filters)
    ]
    assert len(redacting) == 1, "one redacting handler on the root logger"

    # When a library logs a URI with its password
    logging.getLogger("sqlalchemy.pool").warning("lost %s", UNREACHABLE)

    # Then stderr shows it masked
    printed = capsys.readouterr().err
    assert "lost postgresql+psycopg://user:***@127.0.0.1:1/db" in printed, printed
    assert "PASSWORD" not in printed, printed
