"""Campaign jobs: lists from a batch run, the refreshed report, lift from a contact export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.store import snapshot_path
from memberscore.errors import DataNotFound
from memberscore.settings import Settings
from pipelines import campaign
from pipelines.batch import job as batch
from pipelines.batch import manifest as mf
from pipelines.batch.report import REPORT
from pipelines.cli import build_app
from tests.serving import conftest as serving_world
from tests.serving.conftest import CUTOFF, FakeSource, FakeSpendModel

member_rows, snapshot = serving_world.member_rows, serving_world.snapshot


@pytest.fixture
def batch_run(settings: Settings, snapshot: pd.DataFrame, tmp_path: Path) -> Path:
    """A finished batch run over the serving test members, with its HTML report (spend model
    with expected values)."""
    path = snapshot_path(settings, CUTOFF)
    path.parent.mkdir(parents=True)
    snapshot.to_parquet(path, index=False)
    out = tmp_path / "run"
    bundle = FakeSource(clv=FakeSpendModel()).load()
    batch.run(settings, CUTOFF, out, bundle=bundle, progress=False)
    return out


def test_lists_hold_each_action_with_a_marked_control_group(
    settings: Settings, batch_run: Path
) -> None:
    scores = mf.read_scores(batch_run)
    sendable = scores[(scores["action_id"] != "no_action") & ~scores["control_group"]]

    summary = campaign.build(settings, batch_run, control_share=0.3)

    files = sorted((batch_run / campaign.FOLDER).glob("*.csv"))
    lists = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    assert [f.stem for f in files] == sorted(sendable["action_id"].unique())
    assert list(lists.columns) == campaign.LIST_COLUMNS
    assert len(lists) == len(sendable), "no budget: every member with an action is listed"
    assert set(lists["group"]) == {"treatment", "control"}
    assert lists["reason"].str.contains("drivers: ").all(), "reason codes of actioned members"
    assert summary.spent == pytest.approx(
        sendable.set_index("member_id")
        .loc[lists.loc[lists["group"] == "treatment", "member_id"], "unit_cost"]
        .sum()
    )
    values = scores.set_index("member_id").loc[lists["member_id"], ["spend_mean", "clv_mean"]]
    pd.testing.assert_frame_equal(
        lists[["spend_mean", "clv_mean"]], values.reset_index(drop=True), check_dtype=False
    )  # each member's expected spend and CLV beside the action
    assert "Campaign lists" in (batch_run / REPORT).read_text()
    assert "No campaign built yet" not in (batch_run / REPORT).read_text()


def test_lists_from_a_run_without_an_activation_model(
    settings: Settings, snapshot: pd.DataFrame, tmp_path: Path
) -> None:
    """Given a run scored without an activation model, lists are built and the report is
    refreshed; members without orders listed carry their stage as the reason, with no driver
    codes (no model to explain them)."""
    path = snapshot_path(settings, CUTOFF)
    path.parent.mkdir(parents=True)
    snapshot.to_parquet(path, index=False)
    out = tmp_path / "run"
    bundle = FakeSource(clv=FakeSpendModel(), without=("activation",)).load()
    batch.run(settings, CUTOFF, out, bundle=bundle, progress=False)

    summary = campaign.build(settings, out, control_share=0.0)

    files = sorted((out / campaign.FOLDER).glob("*.csv"))
    lists = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    never = lists[lists["member_id"].str.startswith("n")]
    assert summary.lists["members"].sum() == len(lists) > 0
    assert len(never) and (never["reason"] == "registered (registered_no_order)").all()
    assert "not served (scores null)" in (out / REPORT).read_text()


def test_budget_limits_the_listed_cost(settings: Settings, batch_run: Path) -> None:
    summary = campaign.build(settings, batch_run, budget=1.0, control_share=0.0)
    assert 0 < summary.spent <= 1.0
    assert "budget 1.00" in summary.describe()


def test_report_is_self_contained(batch_run: Path) -> None:
    page = (batch_run / REPORT).read_text()
    for section in ("Lifecycle stages", "Score distributions", "CLV deciles", "per action"):
        assert section in page, section
    assert page.count("data:image/png;base64,") >= 4, "plots are embedded"
    assert 'src="http' not in page, "nothing loaded from elsewhere"


def test_measure_reads_a_contact_export(settings: Settings, tmp_path: Path) -> None:
    sent = pd.Timestamp("2025-05-01", tz="UTC")
    export = pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(8)],
            "action_id": "coupon",
            "group": ["treatment"] * 4 + ["control"] * 4,
            "sent_at": sent,
            "responded_at": [sent, sent, sent, pd.NaT, sent, pd.NaT, pd.NaT, pd.NaT],
            "response_value": [10.0, 10.0, 10.0, None, 10.0, None, None, None],
        }
    )
    path = tmp_path / "contacts.parquet"
    export.to_parquet(path)
    table = campaign.measure(
        settings, since=date(2025, 5, 1), until=date(2025, 6, 1), contacts=path
    ).set_index("metric")
    assert table.loc["responded", "lift"] == pytest.approx(0.75 - 0.25)
    assert table.loc["revenue", "lift"] == 0.0, "no orders in the lake"
    with pytest.raises(DataNotFound, match="no treatment or control contacts"):
        campaign.measure(settings, since=date(2024, 1, 1), until=date(2024, 2, 1), contacts=path)


def test_batch_score_command_names_the_missing_snapshot(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipelines.cli.batch_commands.get_settings", lambda: settings)
    result = CliRunner().invoke(build_app(), ["batch-score", "--as-of", "2026-06-01"])
    assert isinstance(result.exception, DataNotFound)
    assert "memberscore features build --as-of 2026-06-01" in str(result.exception)
