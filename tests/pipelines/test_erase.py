"""`memberscore erase` (issue 17, erasure): a small world in every store, one member erased,
no trace of the id left under the data dir, other members' rows and scores unchanged, the batch
run still verified, a re-ingest of the original export skipping the member."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from features import store
from memberscore import erasures
from memberscore.settings import Settings
from pipelines import erase
from pipelines.batch import job
from pipelines.batch import manifest as mf
from pipelines.ingest import tables as ingest
from serving.online.consent import open_consent_register
from serving.online.contact_log import open_contact_log
from tests.pipelines.erase_world import (
    AS_OF,
    TABLE_NAMES,
    World,
    add_contacts_and_quarantine,
    build_world,
    files_naming,
    lake_members,
    listed_members,
)
from tests.serving.conftest import FakeSource

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Before:
    """What the stores held for the other members before the erasure."""

    snapshot: pd.DataFrame
    cards: pd.DataFrame
    scores: pd.DataFrame
    online: pd.DataFrame
    lists: dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Erased:
    world: World
    target: str
    others: list[str]
    report: erase.ErasureReport
    before: Before


def _others(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    rows = frame[frame["member_id"] != target]
    return rows.sort_values("member_id").reset_index(drop=True)


def _state(world: World, target: str, others: list[str]) -> Before:
    settings = world.settings
    lists = {
        p.name: _others(pd.read_csv(p), target)
        for p in sorted((world.batch_out / "campaign").glob("*.csv"))
    }
    return Before(
        snapshot=_others(pd.read_parquet(store.snapshot_path(settings, AS_OF)), target),
        cards=_others(pd.read_parquet(store.published_path(settings)), target),
        scores=_others(mf.read_scores(world.batch_out), target),
        online=store.online_features(settings, others),
        lists=lists,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Given a 300-member programme in every store, once for the module."""
    root = tmp_path_factory.mktemp("erase-world")
    settings = Settings(
        data_dir=root / "data",
        feast_repo=root / "feature_repo",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "mlartifacts",
        chunk_rows=120,  # several batch parts
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield build_world(settings, root / "export", monkeypatch)


@pytest.fixture(scope="module")
def erased(world: World) -> Erased:
    """... with contacts and a quarantined row of two listed members, when the first is erased
    (together with an id no store knows)."""
    target, other = listed_members(world)[:2]
    add_contacts_and_quarantine(world, [target, other])
    others = [other, *sorted(lake_members(world.settings) - {target, other})[:5]]
    assert files_naming(world.settings.data_dir, target), "the world holds the member at first"
    before = _state(world, target, others)
    report = erase.erase(world.settings, [target, "nobody-9"])
    return Erased(world, target, others, report, before)


def test_no_trace_of_the_erased_member_is_left_under_the_data_dir(erased: Erased) -> None:
    """Every file under the data dir (lake, quarantine, raw, truth, snapshots, online store,
    cards, contact log, batch parts, unscorable list, campaign lists, report, logs) is read as
    bytes, Parquet values and SQLite rows: none names the erased member."""
    found = files_naming(erased.world.settings.data_dir, erased.target)

    assert not found, f"{erased.target} is still in: {found}"


def test_the_report_counts_what_each_store_held(erased: Erased) -> None:
    """The report names every store and the rows removed from each; the unknown id is said so."""
    removed = {store: sum(c.values()) for store, c in erased.report.removed.items()}
    for store_name in (
        "lake members",
        "lake orders",
        "lake events",
        "quarantine",
        "raw exports",
        "simulator truth",
        "feature snapshots",
        "online store",
        "published cards",
        "contact log",
        "consent register",
        "batch outputs",
        "campaign lists",
    ):
        assert removed.get(store_name, 0) > 0, f"{store_name}: nothing removed ({removed})"
    assert removed["lake members"] == 1 and removed["online store"] == 1
    assert removed["feature snapshots"] == 2, "one row per snapshot"
    assert removed["contact log"] == 1, "the one contact recorded for the member"
    assert removed["consent register"] == 1, "the member's consent change"
    text = erased.report.describe()
    assert "nobody-9: not found in any store" in text, text
    assert erased.report.unknown == ["nobody-9"]


def test_other_members_rows_and_scores_are_unchanged(erased: Erased) -> None:
    """Snapshots, published cards, batch scores, campaign lists and online features of the
    other members are what they were."""
    world, target = erased.world, erased.target
    after = _state(world, target, erased.others)

    pd.testing.assert_frame_equal(after.snapshot, erased.before.snapshot)
    pd.testing.assert_frame_equal(after.cards, erased.before.cards)
    pd.testing.assert_frame_equal(after.scores, erased.before.scores)
    pd.testing.assert_frame_equal(after.online, erased.before.online)
    assert after.lists.keys() == erased.before.lists.keys()
    for name, rows in after.lists.items():
        pd.testing.assert_frame_equal(rows, erased.before.lists[name], obj=name)
    log = open_contact_log(world.settings)
    assert len(log.history([erased.others[0]])) == 1, "the other member's contact is kept"
    log.close()
    register = open_consent_register(world.settings)
    assert register.get(erased.others[0]) is not None, "the other member's consent is kept"
    register.close()


def test_the_batch_run_still_verifies_and_a_rerun_finds_it_complete(erased: Erased) -> None:
    """The manifest's checksums, counts and totals follow the rewritten parts."""
    world = erased.world
    manifest = mf.read(world.batch_out)
    assert manifest is not None
    scores = mf.read_scores(world.batch_out)

    assert job.verify(world.batch_out).ok, job.verify(world.batch_out).describe()
    assert manifest.counts["members"] == len(scores) == 299
    assert sum(manifest.outputs["actions"].values()) == 299
    assert manifest.outputs["expected"]["clv_mean"] == pytest.approx(scores["clv_mean"].sum())
    summary = json.loads((world.batch_out / "campaign" / "campaign.json").read_text())
    listed = sum(len(pd.read_csv(p)) for p in (world.batch_out / "campaign").glob("*.csv"))
    assert sum(row["members"] for row in summary["lists"]) == listed
    rerun = job.run(world.settings, AS_OF, bundle=FakeSource().load(), progress=False)
    assert rerun.already_complete, "same inputs as the (erased) run: nothing to redo"


def test_a_reingest_of_the_original_export_does_not_bring_the_member_back(
    erased: Erased,
) -> None:
    """Every row of the erased member is skipped and counted; the counts add up."""
    world = erased.world
    for name in TABLE_NAMES:
        report = ingest.ingest(
            world.settings, name, str(world.export / f"{name}.parquet"), currency="USD"
        )
        total = report.stored + report.quarantined + report.duplicates + report.erased
        assert report.read == total, report.describe()
        assert report.erased > 0, f"{name}: the member's rows were skipped ({report.describe()})"
        assert "erased members skipped" in report.describe()

    assert erased.target not in lake_members(world.settings)
    assert not files_naming(world.settings.lake_dir, erased.target)


def test_the_erasure_log_names_no_member(erased: Erased) -> None:
    """One line per member: a salted hash (not a plain sha256 of the id), the time and the
    stores with counts, nothing pending."""
    data = erased.world.settings.data_dir
    text = erasures.log_path(data).read_text()
    entries = erasures.read(data)
    key = erasures.salt(data)
    assert key is not None

    assert erased.target not in text and "nobody-9" not in text
    mine = [e for e in entries if e["member"] == erasures.member_hash(key, erased.target)]
    assert len(mine) == 2, "first the request with every store pending, then what was done"
    assert "lake" in mine[0]["pending"] and "online store" in mine[0]["pending"]
    assert mine[1]["pending"] == [] and mine[1]["by"] == "cli"
    assert mine[1]["stores"]["lake orders"] > 0
    plain = __import__("hashlib").sha256(erased.target.encode()).hexdigest()
    assert plain not in text, "the hash is keyed with the installation's salt"


def test_erasing_again_removes_nothing_and_says_so(erased: Erased) -> None:
    report = erase.erase(erased.world.settings, [erased.target])

    assert report.unknown == [erased.target], report.describe()
    assert "not found in any store" in report.describe()


def test_the_api_erases_what_it_serves_and_the_next_pipeline_run_the_rest(
    erased: Erased,
) -> None:
    """`DELETE /v1/members/{id}` with a write key: the online store, cards and contact log at
    once, the rest pending; `memberscore erase --pending` (here `finish_pending`) erases the
    lake and files; then no trace is left."""
    from fastapi.testclient import TestClient

    from memberscore.settings import ServingSettings
    from serving.api.app import create_app
    from serving.api.security import hash_key

    world = erased.world
    member = erased.others[1]
    keys = ((hash_key("erase-write"), "write"),)
    settings = world.settings.model_copy(update={"serving": ServingSettings(api_keys=keys)})
    with TestClient(create_app(settings)) as client:
        answer = client.delete(f"/v1/members/{member}", headers={"X-API-Key": "erase-write"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["found"] and body["removed"]["online store"] == 1, body
    assert "lake" in body["pending"]
    assert store.online_features(world.settings, [member])["as_of"].isna().all()
    assert member in lake_members(world.settings), "the lake waits for the pipelines"
    assert erasures.pending(world.settings.data_dir), "recorded as pending"

    report = erase.finish_pending(world.settings)

    assert report is not None and report.member_ids == [member], report
    assert not erasures.pending(world.settings.data_dir)
    assert not files_naming(world.settings.data_dir, member)
    assert job.verify(world.batch_out).ok


def test_campaign_build_finishes_an_api_erasure_before_it_writes_lists(
    erased: Erased, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `DELETE /v1/members/{id}`, `memberscore campaign build` on a batch run made before
    it finishes the pending erasure first, so no list (and no file) names the member."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    import pipelines.cli as cli
    from memberscore.settings import ServingSettings
    from pipelines.cli import batch_commands
    from serving.api.app import create_app
    from serving.api.security import hash_key

    # Given a member erased through the API (the batch run still names it)
    world, member = erased.world, erased.others[3]
    keys = ((hash_key("erase-write"), "write"),)
    settings = world.settings.model_copy(update={"serving": ServingSettings(api_keys=keys)})
    with TestClient(create_app(settings)) as client:
        answer = client.delete(f"/v1/members/{member}", headers={"X-API-Key": "erase-write"})
    assert answer.status_code == 200, answer.text
    assert files_naming(world.settings.data_dir, member), "the batch run waits for a pipeline"

    # When campaign lists are built from that run
    monkeypatch.setattr(batch_commands, "get_settings", lambda: world.settings)
    built = CliRunner().invoke(
        cli.build_app(), ["campaign", "build", "--run", str(world.batch_out)]
    )

    # Then the erasure was finished first and nothing names the member
    assert built.exit_code == 0, built.output
    assert "finished erasures requested through the API first" in built.output, built.output
    assert not erasures.pending(world.settings.data_dir)
    assert not files_naming(world.settings.data_dir, member)


def test_the_demo_ends_by_erasing_a_member_and_printing_the_counts(
    erased: Erased, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's last step (here on this world's cutoff) erases one member, prints the
    per-store counts and the batch run's verification."""
    from pipelines import demo

    monkeypatch.setattr(demo, "AS_OF", AS_OF)
    member = demo._members(erased.world.settings)[0]

    demo._erase(erased.world.settings)

    out = capsys.readouterr().out
    assert f"erased 1 member(s): {member}" in out and "lake orders" in out, out
    assert "checksums verified" in out, out
    assert not files_naming(erased.world.settings.data_dir, member)


def test_an_erasure_stopped_half_way_is_finished_by_the_next_pending_run(
    erased: Erased, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the lake was rewritten leaves the request pending; `--pending` (which
    ingest and the feature and batch jobs run first) erases the rest."""
    world, member = erased.world, erased.others[2]

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(erase, "_erase_batch_runs", crash)
        with pytest.raises(KeyboardInterrupt):
            erase.erase(world.settings, [member])
    assert erasures.pending(world.settings.data_dir), "the request is on record"
    assert files_naming(world.settings.data_dir, member), "the batch run still names it"

    report = erase.finish_pending(world.settings)

    assert report is not None and report.member_ids == [member]
    assert not erasures.pending(world.settings.data_dir)
    assert not files_naming(world.settings.data_dir, member)


def test_the_cli_command_erases_and_finishes_pending_requests(
    erased: Erased, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`memberscore erase ID...`, `--pending`, and no argument (a usage error)."""
    from typer.testing import CliRunner

    import pipelines.cli as cli
    from pipelines.cli import data_commands

    monkeypatch.setattr(data_commands, "get_settings", lambda: erased.world.settings)
    runner = CliRunner()

    pending = runner.invoke(cli.build_app(), ["erase", "--pending"])
    unknown = runner.invoke(cli.build_app(), ["erase", "nobody-7"])
    nothing = runner.invoke(cli.build_app(), ["erase"])

    assert pending.exit_code == 0 and "no erasure pending" in pending.output, pending.output
    assert unknown.exit_code == 0, unknown.output
    assert "nobody-7: not found in any store" in unknown.output
    assert "lake orders" in unknown.output, "every store is listed, with 0"
    assert nothing.exit_code == 2 and "--pending" in nothing.output, nothing.output


def test_the_ingest_log_loses_examples_naming_the_member(settings: Settings) -> None:
    """Logs of older releases held unknown-member ids and rejected rows as examples."""
    log = settings.lake_dir / ingest.LOG_FILE
    log.parent.mkdir(parents=True)
    entries = [
        {"run_id": "r1", "unknown_member_examples": ["m1", "m12"], "rejected_examples": []},
        {"run_id": "r2", "rejected_examples": ["row 2: amount: must be >= 0 (got 'm1x')"]},
        {"run_id": "r3", "rejected_examples": ["row 3: member_id: bad (got 'm1')"]},
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries) + '{"run_id": "m1 torn')

    removed = erase._scrub_ingest_log(settings.lake_dir, ["m1"])

    assert removed["m1"] == 3, "one unknown example, one rejected example, the torn line"
    kept = ingest.read_log(settings.lake_dir)
    assert [e["run_id"] for e in kept] == ["r1", "r2", "r3"]
    assert kept[0]["unknown_member_examples"] == ["m12"], "another id containing it stays"
    assert kept[1]["rejected_examples"] == entries[1]["rejected_examples"]
    assert kept[2]["rejected_examples"] == []


def test_new_ingest_log_lines_hold_no_examples(settings: Settings, tmp_path: Path) -> None:
    """The log keeps counts only: ids and raw values stay in the printed report."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,member_id,ordered_at,amount,discount,items,channel,is_return\n"
        "o1,m1,2024-05-01T10:00:00Z,-5,0,1,online,false\n"
    )

    report = ingest.ingest(settings, "orders", str(path), currency="USD")

    assert report.rejected_examples and report.unknown_members == 0
    text = (settings.lake_dir / ingest.LOG_FILE).read_text()
    assert "m1" not in text and "examples" not in text, text


def test_a_stopped_publish_runs_parts_lose_the_member(settings: Settings) -> None:
    """A `publish-scores` run stopped half way keeps its finished parts (cards with member
    ids) until it resumes: erasure rewrites them without the member, so their checksums no
    longer match the run's manifest and the resumed run scores them again."""
    from memberscore.erasures import member_counts
    from pipelines import publish

    folder = publish.run_folder(settings)
    folder.mkdir(parents=True)
    first, second = folder / "part-00000.parquet", folder / "part-00001.parquet"
    pd.DataFrame({"member_id": ["m1", "m2"], "card": ["{}", "{}"]}).to_parquet(first)
    pd.DataFrame({"member_id": ["m3"], "card": ["{}"]}).to_parquet(second)
    untouched = second.read_bytes()
    report = erase.ErasureReport(["m1"])

    erase._erase_files(settings, ["m1"], report)

    assert report.member_stores("m1") == {"publish run parts": 1}
    assert pd.read_parquet(first)["member_id"].tolist() == ["m2"]
    assert not member_counts(first, ["m1"]), "no row of the member is left in the part"
    assert second.read_bytes() == untouched, "a part without the member is not rewritten"
