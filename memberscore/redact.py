"""Secrets and request data out of every text that leaves the process: answers, logs and
MLflow tags.

`redact` masks the password of a URI (`postgresql+psycopg://user:***@host/db`,
`redis://:***@host:6379`) and `password=`/`passwd=`/`pwd=` pairs (libpq DSNs, Feast's Redis
connection strings, query strings). It is the only redaction there is: call it on any text built
from a URI or an exception message before it is shown or stored.

`frames_only` is a traceback without exception messages: a server's exceptions carry request
data in their text (SQLAlchemy and psycopg put the SQL parameters there, a `KeyError` its key),
so the score API logs the frames and the exception types only (`RedactingFilter(messages=False)`).
"""

from __future__ import annotations

import logging
import re
import traceback

MASK = "***"
WITHHELD = "(message withheld: it may carry request data)"
# scheme://user:password@  (the user part may be empty, as Redis URIs have it)
_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@\s/]+)@")
# password=secret in DSNs, query strings and comma-separated option lists
_KEY_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<secret>'[^']*'|\"[^\"]*\"|[^\s,&;'\"]+)",
    re.IGNORECASE,
)
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def redact(text: object) -> str:
    """`text` (or its str) with every URI password and `password=` value replaced by ***."""
    masked = _URI_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    return _KEY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", masked)


def frames_only(error: BaseException) -> str:
    """The traceback of `error` and of the exceptions chained to it (cause or context), each
    exception named by its type only: file, line, function and source line of every frame, no
    exception message and no local value."""
    chain: list[tuple[BaseException, str]] = []
    current: BaseException | None = error
    link = ""
    while current is not None and all(current is not seen for seen, _ in chain):
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for exception, link_after in reversed(chain):
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(exception.__traceback__))
        kind = type(exception)
        parts.append(f"{kind.__module__}.{kind.__qualname__} {WITHHELD}\n{link_after}")
    return "".join(parts).rstrip("\n")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback text before any
    handler formats it (install it on handlers: `logging.config` `filters`).

    With `messages=False` a record's traceback keeps its frames and exception types but no
    exception message (`frames_only`): for processes whose exceptions may carry request data.
    """

    def __init__(self, name: str = "", *, messages: bool = True) -> None:
        super().__init__(name)
        self.messages = messages

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted form; always keeps the record."""
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None and not self.messages:
            record.exc_text = frames_only(record.exc_info[1])
        elif record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
