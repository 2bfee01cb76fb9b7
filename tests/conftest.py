"""Shared fixtures: settings in a temporary folder, so no test touches ./data or ./mlruns."""

from __future__ import annotations

from pathlib import Path

# Before anything imports Feast: `import feast` sets PROMETHEUS_MULTIPROCESS_DIR, and a
# prometheus_client imported after that keeps metric values in files shared by every app of the
# process, so one test's served scores would show in the next app's /metrics. The API process
# imports prometheus_client (serving.api.metrics) before Feast, as this does.
import prometheus_client  # noqa: F401
import pytest

from memberscore.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data dir, Feast repo copy and MLflow store all live under `tmp_path`."""
    return Settings(
        data_dir=tmp_path / "data",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        mlflow_artifact_root=tmp_path / "mlartifacts",
    )
