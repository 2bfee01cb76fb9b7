"""Batch scoring: counts, unscorable members, resume after a kill, no silent redo, expected
values and model quality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.btyd.outlook import outlook_from_params
from memberscore.errors import ContractError, DataNotFound
from memberscore.settings import Settings
from pipelines.batch import job as batch
from pipelines.batch import manifest as mf
from tests.pipelines.batch import world as batch_world
from tests.serving import conftest as serving_world
from tests.serving.conftest import CUTOFF, FakeSource, FakeSpendModel

# The score API's tiny member world, reused as fixtures here (members m0..m39, n0..n4).
member_rows, snapshot = serving_world.member_rows, serving_world.snapshot


@pytest.fixture
def batch_settings(settings: Settings, snapshot: pd.DataFrame) -> Settings:
    """The serving test members (45) as the snapshot of CUTOFF, read 10 rows a chunk; member
    m7 lacks has_ordered, so it cannot be scored."""
    return batch_world.write_snapshot(settings, snapshot, chunk_rows=10)


def test_every_member_gets_a_row_and_unscorable_ones_are_listed(
    batch_settings: Settings, tmp_path: Path
) -> None:
    summary = batch_world.run(batch_settings, tmp_path / "run")
    rows = mf.read_scores(tmp_path / "run")
    unscorable = pd.read_parquet(tmp_path / "run" / batch.UNSCORABLE)

    assert (summary.members, summary.parts, len(rows)) == (45, 5, 45), "one row per member"
    assert summary.scored + summary.unscorable == summary.members
    assert unscorable.to_dict("records") == [
        {"member_id": "m7", "reason": "has_ordered missing: cannot tell which models apply"}
    ]
    m7 = rows.set_index("member_id").loc["m7"]
    assert m7["action_id"] == "no_action" and pd.isna(m7["churn"])
    scored = rows[rows["scored"]]
    assert scored["churn"].notna().sum() == 39, "39 scorable members have orders"
    assert scored.loc[scored["insufficient_history"], "activation"].notna().all()
    assert set(scored["reason_model"].dropna()) == {"churn", "activation"}


def test_a_killed_run_resumes_to_the_uninterrupted_output(
    batch_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a run killed after part 2, when it is rerun, then it skips the finished parts the
    manifest recorded and writes files byte-identical to a run that was never interrupted.

    With two workers the kill can land while part 2's record is still on its way to the
    manifest: then only part 1 counts as finished, and part 2 is scored again."""
    batch_world.run(batch_settings, tmp_path / "whole")
    batch_world.run_killed(batch_settings, tmp_path / "killed", monkeypatch)
    half = mf.read(tmp_path / "killed")
    assert half is not None and half.status == mf.RUNNING and len(half.parts) in (1, 2)

    resumed = batch_world.run(batch_settings, tmp_path / "killed")

    assert resumed.skipped == len(half.parts) and resumed.parts == 5
    assert batch_world.checksums(tmp_path / "killed") == batch_world.checksums(tmp_path / "whole")
    manifests = [json.loads((tmp_path / d / mf.MANIFEST).read_text()) for d in ("whole", "killed")]
    assert manifests[0] == manifests[1], "same inputs, parts, checksums and counts"


def test_a_finished_run_is_not_redone_unless_forced(
    batch_settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    batch_world.run(batch_settings, out)
    before = (out / "part-00000.parquet").stat().st_mtime_ns

    again = batch_world.run(batch_settings, out)
    assert again.already_complete and "already complete" in again.describe()
    assert (out / "part-00000.parquet").stat().st_mtime_ns == before, "nothing rewritten"

    other = batch_settings.model_copy(update={"chunk_rows": 20})
    with pytest.raises(ContractError, match="other inputs"):
        batch_world.run(other, out)
    quarter = batch_settings.model_copy(update={"tier_period_days": 90})
    with pytest.raises(ContractError, match="other inputs"):
        batch_world.run(quarter, out)  # the tier period shapes next_tier_probability
    forced = batch_world.run(other, out, force=True)
    assert not forced.already_complete and forced.parts == 3


def test_segment_filter_and_csv(
    batch_settings: Settings, snapshot: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    champions = int((snapshot["segment"] == "champions").sum())
    summary = batch_world.run(batch_settings, out, segments=["champions"], csv=True)
    rows = mf.read_scores(out)
    assert summary.members == champions and set(rows["segment"]) == {"champions"}
    csv_rows = sum(len(pd.read_csv(p)) for p in out.glob("part-*.csv"))
    assert csv_rows == champions, "the CSV copy holds the same rows"


def test_threads_and_reason_scope_do_not_change_the_scores(
    batch_settings: Settings, tmp_path: Path
) -> None:
    """One thread and two give byte-identical parts; reason codes for every member agree with
    the codes given only to members with an action."""
    one = batch_settings.model_copy(update={"batch_workers": 1})
    batch_world.run(one, tmp_path / "one")
    batch_world.run(batch_settings.model_copy(update={"batch_workers": 2}), tmp_path / "two")
    assert batch_world.checksums(tmp_path / "one") == batch_world.checksums(tmp_path / "two")

    batch_world.run(one, tmp_path / "all", reasons_for="all")
    some, every = (mf.read_scores(tmp_path / d).set_index("member_id") for d in ("one", "all"))
    actioned = some["action_id"] != "no_action"
    assert some.loc[~actioned, "reason_1"].isna().all(), "no codes without an action"
    assert every["reason_1"].notna().sum() > actioned.sum()
    pd.testing.assert_frame_equal(
        some.loc[actioned, ["reason_model", "reason_1", "reason_2", "reason_3"]],
        every.loc[actioned, ["reason_model", "reason_1", "reason_2", "reason_3"]],
    )


def test_reason_codes_do_not_depend_on_the_threads(snapshot: pd.DataFrame) -> None:
    """SHAP over 4,500 members in one slice or in two threaded slices gives the same codes."""
    from pipelines.batch.chunk import _reasons

    frame = pd.concat([snapshot] * 100, ignore_index=True)
    frame.index = pd.Index([f"x{i}" for i in range(len(frame))])
    wanted = np.arange(len(frame)) % 3 != 0
    bundle = FakeSource().load()
    one, two = (_reasons(frame, wanted, bundle, 3, workers) for workers in (1, 2))
    pd.testing.assert_frame_equal(one, two)
    assert one.loc[~wanted, "reason_1"].isna().all(), "no codes where none were wanted"
    assert one.loc[wanted, "reason_model"].notna().all()


OUTLOOK = outlook_from_params("bgnbd", {"tx_r": 0.8, "tx_alpha": 6.0, "tx_a": 0.6, "tx_b": 2.5})


@pytest.fixture
def valued_settings(settings: Settings, snapshot: pd.DataFrame) -> Settings:
    """The snapshot of `batch_settings` with the rfm amounts BTYD needs (P(alive))."""
    frame = snapshot.assign(
        avg_order_value=30.0 + np.arange(len(snapshot)), first_order_amount=25.0
    )
    return batch_world.write_snapshot(settings, frame, chunk_rows=10)


def test_rows_carry_expected_values_p_alive_and_the_manifest_their_totals(
    valued_settings: Settings, snapshot: pd.DataFrame, tmp_path: Path
) -> None:
    """Given a spend model with expected values and a served BTYD outlook, every scored member
    with orders gets orders_mean, spend_mean, clv_mean and p_alive; the manifest sums the
    expected values and records each model's quality; the summary prints both."""
    bundle = FakeSource(clv=FakeSpendModel(), outlook=OUTLOOK).load()
    out = tmp_path / "run"
    summary = batch.run(valued_settings, CUTOFF, out, bundle=bundle, progress=False, report=False)
    rows = mf.read_scores(out).set_index("member_id")
    manifest = mf.read(out)
    assert manifest is not None

    buyers = rows["scored"] & ~rows["insufficient_history"]
    for column in ("orders_mean", "spend_mean", "clv_mean", "p_alive"):
        assert rows.loc[buyers, column].notna().all(), column
        assert rows.loc[~buyers, column].isna().all(), f"{column}: members with orders only"
    chance = rows["next_tier_probability"]
    assert chance[buyers].between(0, 1).all() and chance[~buyers].isna().all(), "upgrade timing"
    assert rows["next_tier_days"].dropna().between(0, valued_settings.tier_period_days).all()
    assert "next_tier" in rows.columns, "the next tier's name beside the tier"
    m3, features = rows.loc["m3"], snapshot.set_index("member_id").loc["m3"]
    want = FakeSpendModel.expected(features["frequency"], features["monetary"])
    assert [m3["orders_mean"], m3["spend_mean"]] == pytest.approx(
        [want["orders_mean"], want["spend_mean"]]
    )
    assert m3["clv_mean"] < m3["spend_mean"], "CLV is discounted spend"
    assert manifest.outputs["expected"] == pytest.approx(
        {name: rows[name].sum() for name in ("orders_mean", "spend_mean", "clv_mean")}
    )
    assert manifest.models["clv"] == {
        "version": "1",
        "grade": "C",
        "notes": "interval too narrow",
        "horizon_days": 365,
        "label_horizon_days": 180,
    }
    assert manifest.models["activation"]["grade"] is None
    text = summary.describe()
    assert f"spend {rows['spend_mean'].sum():,.2f}" in text, text
    assert "next 365 days" in text and "clv C" in text, text


def test_optional_columns_are_read_when_the_parts_hold_them(
    batch_settings: Settings, tmp_path: Path
) -> None:
    """Readers of older runs ask for newer columns as optional: read when present, else left
    out (no error)."""
    batch_world.run(batch_settings, tmp_path / "run")
    rows = mf.read_scores(tmp_path / "run", ["member_id"], optional=["p_alive", "not_written"])
    assert list(rows.columns) == ["member_id", "p_alive"]


def test_a_run_without_an_activation_model_keeps_the_schema_with_null_activation(
    batch_settings: Settings, tmp_path: Path
) -> None:
    """Given no activation champion (every member has bought), a batch run writes every row
    with the columns and types of a run with one: activation null for everybody; members
    without orders are scored (stage registered, an action chosen, no reason codes); the
    manifest and the summary say activation was not served and why."""
    batch_world.run(batch_settings, tmp_path / "full")
    bundle = FakeSource(without=("activation",)).load()
    out = tmp_path / "run"

    summary = batch.run(batch_settings, CUTOFF, out, bundle=bundle, progress=False, report=False)

    rows = mf.read_scores(out).set_index("member_id")
    parts = [p for d in (tmp_path / "full", out) for p in sorted(d.glob(batch.PART_GLOB))]
    schemas = {pq.read_schema(p).remove_metadata() for p in parts}
    assert len(parts) == 10 and len(schemas) == 1, "every part of both runs: one schema"
    assert summary.members == 45 and summary.unscorable == 1, "only m7 (has_ordered missing)"
    assert rows["activation"].isna().all(), "no activation model: null, never invented"
    never = rows.loc[rows["scored"] & rows["insufficient_history"]]
    assert len(never) == 5 and (never["stage"] == "registered").all()
    assert never["action_id"].notna().all() and never["reason_model"].isna().all()
    manifest = mf.read(out)
    assert manifest is not None and "activation" not in manifest.models
    assert manifest.not_served == {
        "activation": "no champion; train activation when the programme has members without orders"
    }
    assert "not served: activation (no champion;" in summary.describe(), summary.describe()


def _corrupt(path: Path) -> None:
    """Overwrite 16 bytes in the middle of `path`, keeping its size (a bit-rotted copy)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)
    path.write_bytes(bytes(data))


def test_a_corrupted_part_of_a_finished_run_is_named_and_rescored_on_rerun(
    batch_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 finding 10: a finished run was "already complete" whatever its parts held; a
    rerun now rechecks each part's sha256, names the damaged part and rescores it."""
    # given a finished run whose part 2 is then corrupted in place
    out = tmp_path / "run"
    batch_world.run(batch_settings, out)
    original = batch_world.checksums(out)
    manifest_before = (out / mf.MANIFEST).read_text()
    _corrupt(out / "part-00002.parquet")
    untouched = (out / "part-00000.parquet").stat().st_mtime_ns

    # when the same command runs again
    with caplog.at_level("WARNING", logger="pipelines.batch.job"):
        repaired = batch_world.run(batch_settings, out)

    # then the damaged part is named, rescored alone, and the output is byte-identical again
    assert not repaired.already_complete, "a damaged run is not 'already complete'"
    assert repaired.repaired == ("part-00002.parquet",) and repaired.skipped == 4
    assert "repaired: part-00002.parquet" in repaired.describe()
    assert any("part-00002.parquet has sha256" in r.getMessage() for r in caplog.records), (
        "a log line names the damaged part"
    )
    assert batch_world.checksums(out) == original, "the repaired parts equal the original ones"
    assert (out / mf.MANIFEST).read_text() == manifest_before, "the manifest is the same"
    assert (out / "part-00000.parquet").stat().st_mtime_ns == untouched, "intact parts stay"
    again = batch_world.run(batch_settings, out)
    assert again.already_complete and "checksums verified" in again.describe()


def test_a_missing_part_or_unscorable_list_is_written_again(
    batch_settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 10: a deleted part and a changed unscorable list are redone too."""
    # given a finished run with part 4 deleted and the unscorable list corrupted
    out = tmp_path / "run"
    batch_world.run(batch_settings, out)
    original = batch_world.checksums(out)
    (out / "part-00004.parquet").unlink()
    _corrupt(out / batch.UNSCORABLE)

    # when rerun
    repaired = batch_world.run(batch_settings, out)

    # then both are back, byte for byte
    assert repaired.repaired == ("part-00004.parquet", batch.UNSCORABLE)
    assert batch_world.checksums(out) == original


def test_verify_checks_a_finished_run_without_scoring(
    batch_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 finding 10: `batch-score --verify` names a damaged part and exits 1; it only
    checks (the repair is a rerun)."""
    from typer.testing import CliRunner

    from pipelines.cli import build_app

    # given a finished run
    out = tmp_path / "run"
    batch_world.run(batch_settings, out)
    monkeypatch.setattr("pipelines.cli.batch_commands.get_settings", lambda: batch_settings)
    command = ["batch-score", "--as-of", str(CUTOFF), "--out", str(out), "--verify"]

    # when it is verified intact, then after corrupting part 1
    intact = CliRunner().invoke(build_app(), command)
    _corrupt(out / "part-00001.parquet")
    damaged_bytes = (out / "part-00001.parquet").read_bytes()
    damaged = CliRunner().invoke(build_app(), command)

    # then the first passes, the second names the part, exits 1 and leaves the file as it was
    assert intact.exit_code == 0 and "checksums verified" in intact.output, intact.output
    assert damaged.exit_code == 1, damaged.output
    assert "part-00001.parquet has sha256" in damaged.output, damaged.output
    assert "rerun the same `memberscore batch-score` command" in damaged.output
    assert (out / "part-00001.parquet").read_bytes() == damaged_bytes, "verify only checks"
    assert not batch.verify(out).ok and batch.verify(tmp_path / "run").damaged.keys() == {
        "part-00001.parquet"
    }
    missing = CliRunner().invoke(build_app(), [*command[:-2], str(tmp_path / "none"), "--verify"])
    assert isinstance(missing.exception, DataNotFound), "no run there: a domain error (exit 2)"
