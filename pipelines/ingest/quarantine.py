"""Quarantine files: every rejected input row, with its source row number and the reason.

One CSV per run and table: `<quarantine>/<table>/<run id>.csv`, columns `_row`, `_reason`,
`_source`, then the raw fields as they were read. The file is created on the first rejected row
only, so a clean run leaves no file behind. While the run lasts it is `<run id>.csv.partial`;
`finish` gives it its name when the run commits, `discard` deletes it when the run fails.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memberscore.contract import REASON, ROW

SOURCE = "_source"
EXAMPLES = 5
PARTIAL = ".partial"


class QuarantineWriter:
    """Appends rejected rows of successive chunks to one CSV and keeps the first few as examples."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self.count = 0
        self.examples: list[str] = []
        self._columns: list[str] | None = None
        self._partial = path.with_name(path.name + PARTIAL)

    def write(self, rejected: pd.DataFrame) -> int:
        """Append `rejected` (validator output: `_row`, raw fields, `_reason`); returns its size."""
        if rejected.empty:
            return 0
        frame = rejected.assign(**{SOURCE: self.source})
        raw = [c for c in frame.columns if c not in (ROW, REASON, SOURCE)]
        frame = frame[[ROW, REASON, SOURCE, *raw]]
        if self._columns is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._columns = list(frame.columns)
            frame.to_csv(self._partial, index=False)
        else:
            frame.reindex(columns=self._columns).to_csv(
                self._partial, mode="a", header=False, index=False
            )
        self._keep_examples(frame)
        self.count += len(frame)
        return len(frame)

    def finish(self) -> None:
        """Give the file its final name (the run is about to commit)."""
        if self.count:
            self._partial.replace(self.path)

    def discard(self) -> None:
        """Delete the file of a run that failed (finished or not): none of its rows count."""
        self._partial.unlink(missing_ok=True)
        if self.count:
            self.path.unlink(missing_ok=True)

    @property
    def file(self) -> Path | None:
        """The quarantine file, or None when nothing was rejected."""
        return self.path if self.count else None

    def _keep_examples(self, frame: pd.DataFrame) -> None:
        for row, reason in (
            frame[[ROW, REASON]].head(EXAMPLES - len(self.examples)).itertuples(index=False)
        ):
            self.examples.append(f"row {row}: {reason}")
