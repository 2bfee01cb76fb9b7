"""The batch job checks its snapshot before scoring: a broken file is refused, naming the
column, the check and a member, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.store import snapshot_path
from memberscore.errors import ContractError
from memberscore.settings import Settings
from tests.pipelines.batch import world as batch_world
from tests.serving import conftest as serving_world
from tests.serving.conftest import CUTOFF

# The score API's tiny member world (members m0..m39, n0..n4), as in test_job.
member_rows, snapshot = serving_world.member_rows, serving_world.snapshot


@pytest.fixture
def batch_settings(settings: Settings, snapshot: pd.DataFrame) -> Settings:
    """The 45 members as the snapshot of CUTOFF, read 10 rows a chunk."""
    return batch_world.write_snapshot(settings, snapshot, chunk_rows=10)


def corrupt(settings: Settings, change: dict[str, tuple[str, object]]) -> None:
    """Rewrite the snapshot with `column -> (member_id, value)` changed."""
    path = snapshot_path(settings, CUTOFF)
    frame = pd.read_parquet(path)
    for column, (member, value) in change.items():
        frame.loc[frame["member_id"] == member, column] = value
    frame.to_parquet(path, index=False)


def test_a_snapshot_with_an_impossible_value_is_refused_before_any_part(
    batch_settings: Settings, tmp_path: Path
) -> None:
    corrupt(batch_settings, {"btyd_p_alive": ("m23", 1.7)})
    out = tmp_path / "run"

    with pytest.raises(ContractError) as caught:
        batch_world.run(batch_settings, out)

    message = str(caught.value)
    assert "column 'btyd_p_alive' fails check 'in [0, 1]'" in message
    assert "member_id 'm23'" in message and "snapshot-2026-06-01.parquet" in message
    assert "memberscore features build --as-of 2026-06-01" in message, "what to do next"
    assert not out.exists(), "refused before the manifest or any part is written"


def test_a_member_twice_in_different_chunks_is_refused(
    batch_settings: Settings, tmp_path: Path
) -> None:
    """Chunks hold 10 rows: m0 is in the first, and its copy replaces a member of the last."""
    corrupt(batch_settings, {"member_id": ("n4", "m0")})

    with pytest.raises(ContractError, match=r"column 'member_id' is not unique.*'m0'"):
        batch_world.run(batch_settings, tmp_path / "run")


def test_a_count_stored_as_text_is_refused(batch_settings: Settings, tmp_path: Path) -> None:
    path = snapshot_path(batch_settings, CUTOFF)
    frame = pd.read_parquet(path)
    frame["frequency"] = frame["frequency"].astype("string")
    frame.to_parquet(path, index=False)

    with pytest.raises(ContractError, match="column 'frequency' must hold integers"):
        batch_world.run(batch_settings, tmp_path / "run")
