"""`memberscore kpis` at the CLI edge: the headline printed, the files where --out says, and a
clear refusal of a malformed --as-of."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from memberscore import lake
from memberscore.contract import MEMBERS, ORDERS
from memberscore.settings import Settings
from pipelines.cli import build_app
from tests.features.lake import table
from tests.pipelines.kpis import tiny_lake


@pytest.fixture
def tiny(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Given the tiny programme in the lake of the settings the CLI reads."""
    lake.write(table("members", tiny_lake.MEMBERS), MEMBERS, settings.lake_dir, "t")
    lake.write(table("orders", tiny_lake.ORDERS), ORDERS, settings.lake_dir, "t")
    monkeypatch.setattr("pipelines.cli.kpi_commands.get_settings", lambda: settings)
    return settings


def test_kpis_prints_the_headline_and_writes_the_report(tiny: Settings, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(build_app(), ["kpis", "--as-of", "2024-04-15", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "KPIs as of 2024-04-15" in result.output
    assert "members          5: 4 active, 0 dormant, 0 churned, 1 without" in result.output
    assert f"report: {out / 'report.html'}" in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "cohorts.csv",
        "cohorts.parquet",
        "kpis_monthly.csv",
        "kpis_monthly.parquet",
        "report.html",
    ]


def test_kpis_refuses_a_malformed_as_of_day(tiny: Settings) -> None:
    result = CliRunner().invoke(build_app(), ["kpis", "--as-of", "15/04/2024"])
    assert result.exit_code == 2
    assert "is not a date YYYY-MM-DD" in result.output
