"""What the commands print: keep third-party chatter out of the user's terminal, and secrets
out of everything they print (log records and tracebacks are redacted: `memberscore.redact`)."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from typing import TextIO

from memberscore.redact import RedactingFilter, redact

NOISY_LIBRARIES = ("ibis", "sqlalchemy", "mlflow", "feast", "starlette")
_QUIETED = (DeprecationWarning, FutureWarning)


def quiet_libraries() -> None:
    """Hide MLflow's INFO lines and download bars and the deprecation notices that third-party
    libraries raise about each other; they say nothing about the user's job. Other warnings and
    every error still show.

    Done when warnings are shown rather than with filters, because Feast resets the filters
    whenever one of its modules is imported (`simplefilter("once", DeprecationWarning)`)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if getattr(warnings.showwarning, "quiet", False):
        return
    shown = warnings.showwarning

    def show_unless_noisy(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not (issubclass(category, _QUIETED) and from_noisy_library(filename)):
            shown(message, category, filename, lineno, file, line)

    show_unless_noisy.quiet = True  # type: ignore[attr-defined]
    warnings.showwarning = show_unless_noisy


def from_noisy_library(filename: str) -> bool:
    """True when `filename` is a module of one of NOISY_LIBRARIES."""
    parts = filename.replace("\\", "/").split("/")
    return any(library in parts for library in NOISY_LIBRARIES)


def redact_output() -> None:
    """Send every log record (MLflow's, SQLAlchemy's, ours) through one stderr handler that
    masks URI passwords. Records show as Python's last-resort handler showed them (WARNING and
    above, the message alone)."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")  # no handler of MLflow's own
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)


def print_traceback(error: BaseException, stream: TextIO | None = None) -> None:
    """The traceback Python prints for an uncaught `error`, passwords masked (to stderr)."""
    (stream or sys.stderr).write(redact("".join(traceback.format_exception(error))))
