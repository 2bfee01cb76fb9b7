"""The batch report: expected values per stage with totals, model quality, CLV by its mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.settings import Settings
from pipelines.batch import job as batch
from pipelines.batch import manifest as mf
from pipelines.batch import report
from tests.pipelines.batch import world as batch_world
from tests.serving import conftest as serving_world
from tests.serving.conftest import CUTOFF, FakeSource, FakeSpendModel

member_rows, snapshot = serving_world.member_rows, serving_world.snapshot


def scores(**columns: list[float]) -> pd.DataFrame:
    """Output rows of four members: two `new`, one `growing`, one `registered` (no orders)."""
    base = {"member_id": ["a", "b", "c", "d"], "stage": ["new", "new", "growing", "registered"]}
    return pd.DataFrame(base | columns)


def test_expected_table_sums_the_means_per_stage_and_in_total() -> None:
    rows = scores(
        orders_mean=[1.0, 2.0, 0.5, np.nan],
        spend_mean=[10.0, 30.0, 5.0, np.nan],
        clv_mean=[9.0, 27.0, 4.5, np.nan],
        p_alive=[0.5, 0.7, 0.9, np.nan],
    )

    table = report.expected_table(rows)

    assert table.loc["new", ["members", "with_expected"]].tolist() == [2, 2]
    assert table.loc["new", "spend_mean"] == pytest.approx(40.0)
    assert table.loc["total", "spend_mean"] == pytest.approx(45.0), "the sum over members"
    assert table.loc["total", "orders_mean"] == pytest.approx(3.5)
    assert table.loc["total", ["members", "with_expected"]].tolist() == [4, 3]
    assert table.loc["total", "mean_p_alive"] == pytest.approx(0.7)
    assert np.isnan(table.loc["registered", "spend_mean"]), "no expected values: not 0"
    assert table.index[-1] == "total" and "declining" in table.index, "every stage is listed"


def test_runs_without_expected_values_rank_clv_by_p50() -> None:
    older = scores(clv_p50=[1.0, 2.0, 3.0, np.nan])
    assert report.clv_column(older) == "clv_p50"
    assert np.isnan(report.expected_table(older).loc["total", "spend_mean"])
    valued = older.assign(clv_mean=[2.0, 3.0, 4.0, np.nan])
    assert report.clv_column(valued) == "clv_mean"
    assert report.clv_column(older.assign(clv_mean=np.nan)) == "clv_p50", "a model without means"


def test_report_shows_expected_totals_and_model_quality(
    settings: Settings, snapshot: pd.DataFrame, tmp_path: Path
) -> None:
    """Given a run with expected values, the report's header has the expected spend and CLV
    totals over the clv horizon and each model's grade (and labelled horizon when tagged), and
    a table lists the models' quality."""
    settings = batch_world.write_snapshot(settings, snapshot)
    out = tmp_path / "run"
    bundle = FakeSource(clv=FakeSpendModel()).load()
    batch.run(settings, CUTOFF, out, bundle=bundle, progress=False)
    rows = mf.read_scores(out)

    page = (out / report.REPORT).read_text()

    total = rows["spend_mean"].sum()
    assert f"expected spend over the next 365 days</b>: {total:,.2f} USD" in page, page[:2000]
    assert "clv v1 (grade C, labels 180 of 365 days)" in page
    assert "churn v1 (grade A)" in page and "activation v1," in page
    assert "Expected orders, spend and CLV" in page and "interval too narrow" in page
    assert "CLV deciles (CLV p50" not in page, "deciles of the expected CLV"


def test_report_renders_a_run_without_activation(
    settings: Settings, snapshot: pd.DataFrame, tmp_path: Path
) -> None:
    """Given a run scored without an activation model, the report renders and its header
    names activation as not served and why; so does a run of an older release whose parts
    have no activation column at all."""
    settings = batch_world.write_snapshot(settings, snapshot)
    out = tmp_path / "run"
    bundle = FakeSource(without=("activation",)).load()
    batch.run(settings, CUTOFF, out, bundle=bundle, progress=False)

    page = (out / report.REPORT).read_text()

    assert "<b>not served (scores null)</b>: activation (no champion; train activation" in page
    assert "activation v1" not in page and "Score distributions" in page
    for part in out.glob(batch.PART_GLOB):  # as an older release wrote them
        pd.read_parquet(part).drop(columns="activation").to_parquet(part, index=False)
    assert "not served (scores null)" in report.write(settings, out).read_text()
