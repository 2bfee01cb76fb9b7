"""Logging of the API process: one line per request naming the route template, never a body.

Uvicorn's own access log is switched off because it prints concrete paths and query strings;
`serving.api.middleware.RequestMetrics` logs method, route template, status and latency instead.
"""

from __future__ import annotations

from typing import Any


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict for uvicorn and the `memberscore` loggers."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        },
        "loggers": {
            "memberscore": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
