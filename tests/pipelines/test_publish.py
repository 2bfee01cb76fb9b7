"""`pipelines.publish.run` (`memberscore publish-scores`): features and score cards written in one
pass, resumable part by part, with a real registry and a real local Feast store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features import build, store
from memberscore.settings import Settings
from pipelines import publish
from pipelines.batch import manifest as mf
from serving.online.feast_reader import FeastReader
from serving.scoring.bundle import ModelBundle
from serving.scoring.cards import card_key
from serving.scoring.registry import RegistrySource
from tests.serving.conftest import FAMILIES, _snapshot, member_row
from tests.serving.scoring.test_registry import champions_in

IDS = [f"m{i}" for i in range(40)] + [f"n{i}" for i in range(5)]


@pytest.fixture(scope="module")
def champions(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A temp registry with champions churn, activation and clv."""
    rows = {m: member_row(int(m[1:]), ordered=m.startswith("m")) for m in IDS}
    return champions_in(tmp_path_factory.mktemp("publish_registry"), rows, seed=2)


@pytest.fixture(scope="module")
def bundle(champions: Settings) -> ModelBundle:
    """The champions, loaded once."""
    return RegistrySource(champions).load()


@pytest.fixture
def applied(champions: Settings, tmp_path: Path) -> Settings:
    """The champions with a fresh local store: snapshot written and applied, nothing
    materialized; parts of 10 members on one worker (so a failure stops at a known part)."""
    settings = champions.model_copy(
        update={
            "data_dir": tmp_path / "data",
            "feast_repo": tmp_path / "feature_repo",
            "feast_project": f"publish_{tmp_path.name[-8:].replace('-', '_')}",
            "batch_workers": 1,
        }
    )
    snapshot = _snapshot({m: member_row(int(m[1:]), ordered=m.startswith("m")) for m in IDS})
    build.write_snapshot(snapshot, store.snapshot_path(settings, snapshot["as_of"][0].date()))
    store.apply(settings, FAMILIES)
    return settings


def quiet(
    settings: Settings, bundle: ModelBundle, chunk: int, force: bool = False
) -> publish.PublishReport:
    """A publish run without progress lines."""
    return publish.run(settings, chunk, lambda _: None, force=force, bundle=bundle)


def published(settings: Settings) -> pd.DataFrame:
    """The cards' Parquet copy, by member."""
    return pd.read_parquet(store.published_path(settings)).set_index("member_id")


@pytest.mark.slow
def test_one_pass_writes_features_and_current_cards(applied: Settings, bundle: ModelBundle) -> None:
    """Given a snapshot nobody materialized, one run in two worker processes serves every
    member's features and a current card, writes the Parquet copy and leaves a complete
    manifest without parts."""
    settings = applied.model_copy(update={"batch_workers": 2})  # worker processes
    lines: list[str] = []

    report = publish.run(settings, bundle=bundle, chunk_members=10, progress=lines.append)

    reader = FeastReader(settings)
    key = card_key(bundle, settings)
    assert sorted(reader.read(IDS, ()).rows) == sorted(IDS), "features materialized"
    cards = reader.published(IDS)
    assert sorted(cards) == sorted(IDS) and all(c.current(key) for c in cards.values())
    assert report.published == report.members == len(published(settings)) == len(IDS)
    assert report.parts == 5 and report.skipped == 0 and len(lines) == 5
    folder = publish.run_folder(settings)
    manifest = mf.read(folder)
    assert manifest is not None and manifest.status == mf.COMPLETE
    assert not list(folder.glob("part-*")), "the parts are joined into the copy and removed"


def test_a_stopped_run_resumes_at_the_parts_left(
    applied: Settings, bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a run stopped by a failure in its third part, whose first part was then changed
    on disk, a rerun redoes that part and the parts not recorded, skips the intact one, and
    its cards equal those of a run never stopped."""
    real, scored, stop = publish.card_frame, [], {"at": 3}

    def failing(batch: pd.DataFrame, *args: Any) -> pd.DataFrame:
        scored.append(batch["member_id"].iloc[0])
        if len(scored) == stop["at"]:
            raise RuntimeError("killed")
        return real(batch, *args)

    monkeypatch.setattr(publish, "card_frame", failing)
    with pytest.raises(RuntimeError, match="killed"):
        quiet(applied, bundle, 10)
    folder = publish.run_folder(applied)
    manifest = mf.read(folder)
    assert manifest is not None
    assert [p.file for p in manifest.parts] == ["part-00000.parquet", "part-00001.parquet"]
    part = folder / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:-10])

    scored.clear()
    stop["at"] = 0
    report = quiet(applied, bundle, 10)

    assert report.skipped == 1 and report.parts == 5 and report.published == len(IDS)
    assert scored == ["m0", "m27", "m36", "n0"], "the damaged part and parts 3 to 5 (id order)"
    resumed = published(applied)["card"]
    again = quiet(applied, bundle, 10, force=True)
    assert again.skipped == 0 and len(scored) == 9, "--force publishes every part again"
    assert published(applied)["card"].equals(resumed), "resumed cards equal a full run's"


def test_a_finished_run_is_kept_until_the_snapshot_changes(
    applied: Settings, bundle: ModelBundle
) -> None:
    """A rerun of a finished run only checks its copy and that the store still serves it; a
    store that lost cards or new snapshot contents publish again."""
    quiet(applied, bundle, 20)

    assert quiet(applied, bundle, 20).already_complete
    store.forget_online(applied, ["m0"])
    assert not quiet(applied, bundle, 20).already_complete, "the store lost a card"

    snapshot = pd.read_parquet(store.snapshot_files(applied)[0])
    snapshot.loc[0, "recency_days"] = 999.0
    build.write_snapshot(snapshot, store.snapshot_files(applied)[0])
    report = quiet(applied, bundle, 20)
    assert not report.already_complete and report.skipped == 0
