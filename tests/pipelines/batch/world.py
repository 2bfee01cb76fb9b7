"""Shared by the local and Spark batch tests: the score API's tiny member world (members
m0..m39 with orders, n0..n4 without) as a snapshot, a batch run on it, and checksums."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.store import snapshot_path
from memberscore.settings import Settings
from pipelines.batch import job as batch
from pipelines.batch import manifest as mf
from tests.serving.conftest import CUTOFF, FakeSource


def write_snapshot(settings: Settings, snapshot: pd.DataFrame, **updates: object) -> Settings:
    """Write the 45 members as the snapshot of CUTOFF, m7 without has_ordered (so it cannot be
    scored); returns the settings with `updates` (e.g. chunk_rows)."""
    settings = settings.model_copy(update=updates)
    frame = snapshot.copy()
    frame.loc[frame["member_id"] == "m7", "has_ordered"] = pd.NA
    path = snapshot_path(settings, CUTOFF)
    path.parent.mkdir(parents=True)
    frame.to_parquet(path, index=False)
    return settings


def run(settings: Settings, out: Path, **options: object) -> batch.Summary:
    """A batch run of CUTOFF with the fake models, no progress bar and no report."""
    return batch.run(
        settings,
        CUTOFF,
        out,
        bundle=FakeSource().load(),
        progress=False,
        report=False,
        **options,  # type: ignore[arg-type]
    )


def checksums(out: Path) -> dict[str, str]:
    """sha256 of every Parquet part in `out`, by file name."""
    return {p.name: mf.sha256(p) for p in sorted(out.glob("*.parquet"))}


def run_killed(
    settings: Settings,
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
    after_parts: int = 2,
    workers: int | None = None,
) -> list[str]:
    """A local run into `out` killed (KeyboardInterrupt) once `after_parts` parts are written.
    With `workers=1` exactly `after_parts` parts are recorded; with more threads a part in
    flight beside the dying one may or may not be. Returns the names of the parts written,
    which keeps growing with the parts later runs in the test write."""
    write_part, written, dead = batch._write_part, [], [True]

    def write_or_die(*args: object, **kwargs: object) -> mf.PartRecord:
        if dead and len(written) >= after_parts:  # every later part of the killed run dies
            raise KeyboardInterrupt("killed")
        written.append(str(args[1]))
        return write_part(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "_write_part", write_or_die)
    with pytest.raises(KeyboardInterrupt):
        run(settings.model_copy(update={"batch_workers": workers or settings.batch_workers}), out)
    dead.clear()
    return written
