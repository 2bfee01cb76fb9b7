"""The production profile: runs, versions and aliases live in the real PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from memberscore.settings import Settings
from training import tracking

SCHEMA = "memberscore_mlflow_test"  # kept between runs: MLflow's migrations take ~20 s once


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Production settings whose MLflow store is a schema of the local PostgreSQL."""
    import psycopg

    base = Settings(profile="production")
    try:
        with psycopg.connect(base.postgres_url, autocommit=True, connect_timeout=2) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL at {base.postgres_url} unreachable: {error}")
    url = f"{base.postgres_url}?options=-csearch_path%3D{SCHEMA}"
    root = tmp_path_factory.mktemp("artifacts")
    return Settings(profile="production", postgres_url=url, mlflow_artifact_root=Path(root))


def test_registry_and_promotion_run_on_postgres(production: Settings) -> None:
    """Given the production profile, a registered challenger is promoted through aliases that
    are read back from PostgreSQL."""
    from tests.training.test_tracking import fake_version

    assert production.mlflow_tracking_uri.startswith("postgresql+psycopg://")
    name = f"gate_{uuid.uuid4().hex[:8]}"
    version = fake_version(production, name, 0.71)

    promoted = tracking.promote(production, name)

    champion = tracking.aliased(tracking.client(production), name, tracking.CHAMPION)
    assert champion is not None and str(champion.version) == version == promoted.version
