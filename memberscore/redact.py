"""Secrets out of every text that leaves the process: answers, logs and MLflow tags.

`redact` masks the password of a URI (`postgresql+psycopg://user:***@host/db`,
`redis://:***@host:6379`) and `password=`/`passwd=`/`pwd=` pairs (libpq DSNs, Feast's Redis
connection strings, query strings). It is the only redaction there is: call it on any text built
from a URI or an exception message before it is shown or stored.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# scheme://user:password@  (the user part may be empty, as Redis URIs have it)
_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@\s/]+)@")
# password=secret in DSNs, query strings and comma-separated option lists
_KEY_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<secret>'[^']*'|\"[^\"]*\"|[^\s,&;'\"]+)",
    re.IGNORECASE,
)


def redact(text: object) -> str:
    """`text` (or its str) with every URI password and `password=` value replaced by ***."""
    masked = _URI_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    return _KEY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", masked)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback text before any
    handler formats it (install it on handlers: `logging.config` `filters`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted form; always keeps the record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
