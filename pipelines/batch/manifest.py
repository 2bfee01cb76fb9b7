"""The manifest of a batch run: what went in, what came out, and which parts are finished.

`manifest.json` in the run folder is rewritten atomically after every part, so a run killed at
any moment leaves a manifest that names only complete, checksummed part files. A rerun with the
same inputs (`run_key`) skips those parts; other inputs in the same folder need `--force`. Every
rerun, finished run or not, rechecks the recorded sha256 of each part (and of the unscorable
list): `damage` names the files that are missing or changed, and the job redoes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from memberscore.errors import DataNotFound

MANIFEST = "manifest.json"
RUNNING, COMPLETE = "running", "complete"
EMPTY = "empty"  # checksum of a part with no rows: no file is written
UNSCORABLE_SHA256 = "unscorable_sha256"  # key in `outputs` of the unscorable list's checksum


@dataclass(frozen=True)
class PartRecord:
    """One finished part file: name, rows, scored and unscorable members, sha256."""

    file: str
    rows: int
    scored: int
    unscorable: int
    sha256: str


@dataclass
class Manifest:
    """Inputs (snapshot file and checksum, model versions, catalogue, settings), the part
    files written so far and, once complete, the totals and extra outputs. `models` holds the
    quality recorded with each model version scored with (grade, notes, horizons in days) and
    `not_served` the optional models the run scored without (name → why; their columns are
    null): they describe the inputs without deciding the rows, so they are not in the run
    key."""

    run_key: str
    as_of: str
    engine: str
    inputs: dict[str, Any]
    parts_total: int
    status: str = RUNNING
    parts: list[PartRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_served: dict[str, str] = field(default_factory=dict)

    def damage(self, folder: Path) -> dict[str, str]:
        """Recorded files of `folder` that are missing or no longer have their recorded sha256
        (the parts; the unscorable list once complete), by name: what is wrong, in words."""
        recorded = {p.file: p.sha256 for p in self.parts if p.sha256 != EMPTY}
        if self.status == COMPLETE and UNSCORABLE_SHA256 in self.outputs:
            recorded[self.outputs["unscorable"]] = self.outputs[UNSCORABLE_SHA256]
        problems = {}
        for name, expected in recorded.items():
            if not (folder / name).is_file():
                problems[name] = f"{name} is missing"
            elif (actual := sha256(folder / name)) != expected:
                problems[name] = (
                    f"{name} has sha256 {actual[:12]}…, the manifest recorded {expected[:12]}…"
                )
        return problems


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def run_key(inputs: dict[str, Any]) -> str:
    """A short hash of everything that decides the output rows."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read(folder: Path) -> Manifest | None:
    """The manifest in `folder`, or None when there is none."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    raw["parts"] = [PartRecord(**p) for p in raw["parts"]]
    return Manifest(**raw)


def write(folder: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically (temp file, then rename)."""
    path = folder / MANIFEST
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(asdict(manifest), indent=2, default=str) + "\n")
    os.replace(temp, path)
    return path


def read_scores(
    out: Path, columns: Sequence[str] | None = None, optional: Sequence[str] = ()
) -> pd.DataFrame:
    """The output rows of a complete batch run in `out` (all parts, in order); see
    `read_parts` for `columns` and `optional`."""
    manifest = read(out)
    if manifest is None or manifest.status != COMPLETE:
        raise DataNotFound(f"no complete batch run in {out}; run `memberscore batch-score` first")
    return read_parts(out, manifest, columns, optional)


def read_parts(
    out: Path,
    manifest: Manifest,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """The rows of every non-empty part of `manifest`, in part order: `columns` (all when
    None) and those of `optional` the parts hold (runs of older releases lack some)."""
    files = [str(out / p.file) for p in sorted(manifest.parts, key=lambda p: p.file) if p.rows]
    if not files:
        raise DataNotFound(f"the batch run in {out} selected no members")
    dataset = pq.ParquetDataset(files)
    wanted = None
    if columns is not None:
        held = set(dataset.schema.names)
        wanted = [*columns, *(c for c in optional if c in held and c not in columns)]
    return dataset.read(columns=wanted).to_pandas()
