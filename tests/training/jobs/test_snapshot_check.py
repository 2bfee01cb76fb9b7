"""The training jobs check the snapshots they read: the outlook job's snapshot and every file
the Feast join of the train job reads; a broken file is refused before any fit."""

from __future__ import annotations

import pandas as pd
import pytest

from features import build, store
from memberscore.errors import ContractError, DataNotFound
from memberscore.settings import Settings
from tests.features.test_schema import CUTOFF, valid_snapshot
from training.jobs import outlook as outlook_job
from training.jobs import train as train_job

EARLIER = CUTOFF - pd.Timedelta(days=7)


def write(settings: Settings, frame: pd.DataFrame, cutoff: pd.Timestamp) -> None:
    build.write_snapshot(frame, store.snapshot_path(settings, cutoff.date()))


def test_outlook_reads_a_valid_snapshot_as_stored(settings: Settings) -> None:
    write(settings, valid_snapshot(), CUTOFF)

    frame = outlook_job.read_snapshot(settings, CUTOFF)

    pd.testing.assert_frame_equal(frame, valid_snapshot(), obj="the snapshot as built")


def test_outlook_refuses_a_snapshot_with_a_negative_count(settings: Settings) -> None:
    frame = valid_snapshot()
    frame.loc[0, "frequency"] = -3
    write(settings, frame, CUTOFF)

    with pytest.raises(ContractError, match=r"'frequency' fails check '>= 0'.*member_id 'm1'"):
        outlook_job.read_snapshot(settings, CUTOFF)
    with pytest.raises(DataNotFound, match="features build --as-of 2026-05-25"):
        outlook_job.read_snapshot(settings, EARLIER)


def test_train_reader_refuses_any_broken_snapshot_before_feast(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a good latest snapshot and an earlier one without `tier`, the Feast join is never
    reached: the error names the earlier file and the missing column."""

    def no_feast(*_: object) -> pd.DataFrame:
        raise AssertionError("Feast must not read unchecked snapshots")

    monkeypatch.setattr(store, "training_frame", no_feast)
    write(settings, valid_snapshot(), CUTOFF)
    write(settings, valid_snapshot(EARLIER).drop(columns="tier"), EARLIER)
    entities = pd.DataFrame({"member_id": ["m1"], "event_timestamp": [CUTOFF]})

    with pytest.raises(ContractError) as caught:
        train_job.feast_reader(settings, entities, "churn_v1")

    assert "snapshot-2026-05-25.parquet" in str(caught.value)
    assert "column 'tier' is missing" in str(caught.value)


def test_train_reader_passes_valid_snapshots_to_feast(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = pd.DataFrame({"member_id": ["m1"]})
    monkeypatch.setattr(store, "training_frame", lambda *_: joined)
    for cutoff in (EARLIER, CUTOFF):
        write(settings, valid_snapshot(cutoff), cutoff)

    got = train_job.feast_reader(settings, pd.DataFrame(), "churn_v1")

    assert got is joined, "the Feast frame, unchanged"
