"""`memberscore monitor` prints the headline and exits 3 on drift or decay, 0 when stable."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from memberscore.settings import Settings
from pipelines.cli import build_app, monitor_commands
from pipelines.monitor import job
from training.monitoring.verdict import Finding

DAY = pd.Timestamp("2025-03-10", tz="UTC")


def report(findings: tuple[Finding, ...]) -> job.MonitorReport:
    """A report whose one champion check has `findings` (other fields are not printed here)."""

    class Check:
        def __init__(self) -> None:
            self.findings, self.retrain = (
                findings,
                "memberscore train clv && memberscore promote clv",
            )
            self.drifted = bool(findings)

        def line(self) -> str:
            return "clv v3: checked"

    return job.MonitorReport(DAY, DAY, {"clv": Check()})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("findings", "code"),
    [((), 0), ((Finding("clv", "drift", "monetary", 0.4, 0.25, "clv: monetary drifted"),), 3)],
)
def test_exit_code_and_headline(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, findings: tuple[Finding, ...], code: int
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(given: Settings, **options: Any) -> job.MonitorReport:
        calls.append(options)
        return report(findings)

    monkeypatch.setattr(monitor_commands, "get_settings", lambda: settings)
    monkeypatch.setattr(job, "run", fake_run)
    result = CliRunner().invoke(build_app(), ["monitor", "--as-of", "2025-03-10", "--no-track"])
    assert result.exit_code == code, result.output
    assert "clv v3: checked" in result.output
    assert ("retrain: memberscore train clv" in result.output) == bool(findings)
    assert calls[0]["as_of"] == DAY.date() and calls[0]["track"] is False
