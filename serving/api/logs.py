"""Logging of the API process: one line per request naming the route template, never a body,
and no secret or request data in any record.

Uvicorn's own access log is switched off because it prints concrete paths and query strings;
`serving.api.middleware.RequestMetrics` logs method, route template, status and latency instead.
Every handler redacts (`memberscore.redact.RedactingFilter`): URI passwords are masked and
tracebacks keep their frames and exception types but no exception message, since SQLAlchemy,
psycopg and `KeyError` put request values (member and action ids) there. Records of other
libraries (MLflow, SQLAlchemy, Feast, Redis) reach the same handler through the root logger;
the CLI sets MLFLOW_CONFIGURE_LOGGING=false (`memberscore.console.redact_output`) so MLflow
installs no handler of its own. A 500 is logged once, by `serving.api.errors.unexpected_error`;
uvicorn's second record of it ("Exception in ASGI application") is dropped (`DropLoggedErrors`).
"""

from __future__ import annotations

import logging
from typing import Any

# Set on an exception whose traceback the app has logged already.
LOGGED = "_memberscore_logged"


class DropLoggedErrors(logging.Filter):
    """Drop a record carrying an exception the app has already logged (`LOGGED`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat of an exception already logged."""
        error = record.exc_info[1] if record.exc_info else None
        return not getattr(error, LOGGED, False)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict for uvicorn, the `memberscore` loggers and (at
    WARNING, through the root logger) every other library."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "memberscore.redact.RedactingFilter", "messages": False},
            "once": {"()": "serving.api.logs.DropLoggedErrors"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["once", "redact"],
            },
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "memberscore": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
