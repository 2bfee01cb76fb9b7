"""Append-only JSON-lines journals (the ingest log, the erasure log): durable appends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def append_lines(path: Path, text: str) -> None:
    """Append `text` (whole lines, each ending in a newline) to `path` under an exclusive lock,
    flushed and fsynced before returning. A last line a killed writer left without its newline
    is closed first, so the new lines never join it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as journal:  # "a": every write lands at the end
        fcntl.flock(journal, fcntl.LOCK_EX)
        size = journal.seek(0, os.SEEK_END)
        if size:
            journal.seek(size - 1)
            if journal.read(1) != b"\n":
                text = "\n" + text
        journal.write(text.encode("utf-8"))
        journal.flush()
        os.fsync(journal.fileno())
