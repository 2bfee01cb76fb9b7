"""Quarantine files: every rejected input row, with its source row number and the reason.

One CSV per run and table: `<quarantine>/<table>/<run id>.csv`, columns `_row`, `_reason`,
`_source`, then the raw fields as they were read. The file is created on the first rejected row
only, so a clean run leaves no file behind.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memberscore.contract import REASON, ROW

SOURCE = "_source"
EXAMPLES = 5


class QuarantineWriter:
    """Appends rejected rows of successive chunks to one CSV and keeps the first few as examples."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self.count = 0
        self.examples: list[str] = []
        self._columns: list[str] | None = None

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
            frame.to_csv(self.path, index=False)
        else:
            frame.reindex(columns=self._columns).to_csv(
                self.path, mode="a", header=False, index=False
            )
        self._keep_examples(frame)
        self.count += len(frame)
        return len(frame)

    @property
    def file(self) -> Path | None:
        """The quarantine file, or None when nothing was rejected."""
        return self.path if self.count else None

    def _keep_examples(self, frame: pd.DataFrame) -> None:
        for row, reason in (
            frame[[ROW, REASON]].head(EXAMPLES - len(self.examples)).itertuples(index=False)
        ):
            self.examples.append(f"row {row}: {reason}")
