"""The KPI job on a simulated programme: the figures the simulator's ground truth defines
(registrations, activation, tier changes) equal those computed from the truth, and the member
states behind the counts equal the feature snapshot's tiers and segments and the stage engine's
stages."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisions.stages import assign_stages
from features.build import open_lake
from features.families.segments import segment_features
from features.snapshot import member_features
from memberscore import lake
from memberscore.contract import EVENTS, MEMBERS, ORDERS
from memberscore.settings import Settings
from pipelines import simulate
from pipelines.kpis import job
from pipelines.kpis.definitions import months
from pipelines.kpis.inputs import read_inputs
from pipelines.kpis.tables import state_at

START, DAYS, AS_OF = date(2024, 1, 1), 500, date(2025, 5, 1)
CUTOFF = pd.Timestamp(AS_OF, tz="UTC")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Given 1,500 simulated members over 500 days, their members, orders and events in a lake."""
    root = tmp_path_factory.mktemp("kpis-sim")
    settings = Settings(data_dir=root / "data")
    simulate.run(settings, members=1500, days=DAYS, seed=7, start=START)
    for spec in (MEMBERS, ORDERS, EVENTS):
        frame = pd.read_parquet(settings.raw_dir / f"{spec.name}.parquet")
        lake.write(frame, spec, settings.lake_dir, "sim")
    return settings


@pytest.fixture(scope="module")
def report(world: Settings) -> job.KpiReport:
    """When the KPI job runs as of 2025-05-01."""
    return job.run(world, AS_OF)


def _all(report: job.KpiReport) -> pd.DataFrame:
    rows = report.monthly[report.monthly["dimension"] == "all"]
    return rows.set_index("month")


def _truth(world: Settings) -> pd.DataFrame:
    return pd.read_parquet(world.truth_dir / "members.parquet")


def _by_month(stamps: pd.Series, labels: pd.Index) -> pd.Series:
    counts = stamps.dropna().dt.strftime("%Y-%m").value_counts()
    return counts.reindex(labels, fill_value=0).astype("int64")


def test_registrations_and_members_equal_the_truth(world: Settings, report: job.KpiReport) -> None:
    truth = _truth(world)
    rows = _all(report)
    registered = truth["registered_at"][truth["registered_at"] < CUTOFF]
    expected = _by_month(registered, rows.index)
    assert rows["new_registrations"].tolist() == expected.tolist()
    assert rows["members"].tolist() == expected.cumsum().tolist()


@pytest.mark.parametrize("days", [7, 30, 90])
def test_activation_equals_the_truth_first_order_time(
    world: Settings, report: job.KpiReport, days: int
) -> None:
    # The truth's activation_at is the (hidden) time of the first order
    truth = _truth(world)
    close = truth["registered_at"] + pd.Timedelta(days=days)
    closed = close[close < CUTOFF]
    activated = closed[truth.loc[closed.index, "activation_at"] < closed]
    rows = _all(report)
    assert rows[f"activation_base_{days}d"].tolist() == _by_month(closed, rows.index).tolist()
    assert rows[f"activated_{days}d"].tolist() == _by_month(activated, rows.index).tolist()
    assert rows[f"activated_{days}d"].sum() > 50, "the check needs activations to compare"


def _true_ranks(changes: pd.DataFrame, members: pd.Index, at: pd.Timestamp) -> pd.Series:
    """Each member's tier rank at `at` by the simulator's own tier ledger (its tier_change
    events: value = new rank), 0 before any change."""
    before = changes[changes["occurred_at"] < at].sort_values("occurred_at", kind="stable")
    last = before.drop_duplicates("member_id", keep="last").set_index("member_id")["value"]
    return last.reindex(members, fill_value=0.0).astype("int64")


def test_tier_upgrades_and_downgrades_equal_the_simulated_tier_ledger(
    world: Settings, report: job.KpiReport
) -> None:
    events = pd.read_parquet(world.raw_dir / "events.parquet")
    changes = events[events["event_type"] == "tier_change"].astype({"member_id": str})
    members = pd.read_parquet(world.raw_dir / "members.parquet").astype({"member_id": str})
    rows = _all(report)
    up, down = [], []
    for month in months(members["registered_at"].min(), CUTOFF):
        registered = members.loc[members["registered_at"] < month.end, "member_id"]
        ids = pd.Index(registered)
        start = _true_ranks(changes, ids, month.start)
        end = _true_ranks(changes, ids, month.end)
        up.append(int((end > start).sum()))
        down.append(int((end < start).sum()))
    assert rows["tier_upgrades"].tolist() == up
    assert rows["tier_downgrades"].tolist() == down
    assert sum(up) > 50 and sum(down) > 10, "the check needs tier changes to compare"


def test_member_states_equal_snapshot_tiers_segments_and_stages(world: Settings) -> None:
    # Given the snapshot's member features and segments at the cutoff (the BTYD outlook and
    # tags left out) and the stage engine on them (no churn scores: dormant, churned and
    # registered rest on recency alone)
    definitions = job.definitions_from(world)
    with open_lake(world) as con:
        features = member_features(con, CUTOFF, tier_thresholds=world.tier_thresholds)
        states = state_at(read_inputs(con, CUTOFF), CUTOFF, definitions).set_index("member_id")
    features["segment"] = segment_features(features)["segment"]
    snapshot = features.set_index(features["member_id"].astype(object))
    stages = assign_stages(snapshot, None, world.decisions.stages, sentences=False)["stage"]
    # Then every member has the snapshot's tier and segment and the stage's status
    assert states.index.equals(snapshot.index)
    assert (states["tier"] == snapshot["tier"].astype(object)).all()
    assert (states["segment"] == snapshot["segment"].astype(object)).all()
    status = {"registered": "no_purchase", "dormant": "dormant", "churned": "churned"}
    expected = stages.astype(object).map(status).fillna("active")
    assert (states["status"] == expected).all()
    assert set(np.unique(states["status"])) == {"no_purchase", "active", "dormant", "churned"}


def test_the_job_writes_the_tables_and_one_self_contained_report(
    report: job.KpiReport, world: Settings
) -> None:
    out = world.data_dir / "kpis" / AS_OF.isoformat()
    assert report.out_dir == out
    for name in ("kpis_monthly", "cohorts"):
        parquet = pd.read_parquet(out / f"{name}.parquet")
        assert len(parquet) == len(getattr(report, name.removeprefix("kpis_")))
        assert len(pd.read_csv(out / f"{name}.csv")) == len(parquet)
    page = Path(report.report_path).read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 10, "eight monthly plots and two cohort plots"
    assert 'src="http' not in page and "<link" not in page, "nothing outside the file"
    lines = report.headline().splitlines()
    assert lines[0].startswith(f"KPIs as of {AS_OF}")
    assert "activation 30 d" in lines[2] and "churn" in lines[2]
    assert str(report.report_path) in lines[-1]
