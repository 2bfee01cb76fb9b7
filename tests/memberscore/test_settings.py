"""Settings: defaults, environment variables and the optional TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from memberscore.settings import Settings


def test_defaults_use_the_embedded_stores() -> None:
    settings = Settings()

    assert settings.profile == "local"
    assert settings.mlflow_tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert settings.lake_dir == Path("data/lake")


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMBERSCORE_CHURN_HORIZON_DAYS", "30")
    monkeypatch.setenv("MEMBERSCORE_DATA_DIR", "/tmp/elsewhere")

    settings = Settings()

    assert settings.churn_horizon_days == 30
    assert settings.quarantine_dir == Path("/tmp/elsewhere/quarantine")


def test_config_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "prod.toml"
    config.write_text('profile = "production"\nseed = 7\n')
    monkeypatch.setenv("MEMBERSCORE_CONFIG", str(config))
    monkeypatch.setenv("MEMBERSCORE_SEED", "11")

    settings = Settings()

    assert settings.profile == "production", "value from the config file"
    assert settings.seed == 11, "environment beats the config file"


def test_settings_are_frozen_and_reject_unknown_keys() -> None:
    settings = Settings()

    with pytest.raises(ValidationError):
        settings.seed = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="colour"):
        Settings(colour="blue")  # type: ignore[call-arg]


def test_production_profile_tracks_mlflow_in_postgres_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMBERSCORE_PROFILE", "production")
    monkeypatch.setenv("MEMBERSCORE_POSTGRES_URL", "postgresql://ml@db:5432/registry")

    assert Settings().mlflow_tracking_uri == "postgresql+psycopg://ml@db:5432/registry"
    assert Settings(mlflow_tracking_uri="sqlite:///x.db").mlflow_tracking_uri == "sqlite:///x.db"
