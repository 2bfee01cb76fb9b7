"""The Feast declarations follow the catalog, and feature_store.yaml follows the profile."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from features import store
from memberscore.settings import Settings


@pytest.fixture(scope="module")
def objects() -> dict[str, list]:
    """The declarations for a snapshot glob, grouped by Feast class name."""
    from features.feature_repo.definitions import declarations

    grouped: dict[str, list] = {}
    for obj in declarations("/snapshots/snapshot-*.parquet"):
        grouped.setdefault(type(obj).__name__, []).append(obj)
    return grouped


def test_one_feature_view_per_family_with_the_catalog_schema(objects: dict[str, list]) -> None:
    """Every catalog feature appears once, in its family's view, with the catalog's type."""
    from features.catalog import FAMILIES
    from features.feature_repo.definitions import FEAST_TYPES

    views = {view.name: view for view in objects["FeatureView"]}
    assert set(views) == set(FAMILIES), "one feature view per catalog family"
    for family, features in FAMILIES.items():
        declared = [(f.name, f.dtype) for f in views[family].features]
        expected = [(f.name, FEAST_TYPES[f.dtype]) for f in features]
        assert declared == expected, f"view {family} drifted from the catalog"
        assert views[family].entities == ["member"]


def test_views_read_the_snapshots_and_find_last_weeks_cutoff(objects: dict[str, list]) -> None:
    """Views read the snapshot files by `as_of`, with a TTL covering one weekly interval."""
    for view in objects["FeatureView"]:
        assert view.batch_source.path == "/snapshots/snapshot-*.parquet"
        assert view.batch_source.timestamp_field == "as_of"
        assert timedelta(days=7) < view.ttl <= timedelta(days=14), view.name
    (entity,) = objects["Entity"]
    assert entity.join_key == "member_id"


def test_one_feature_service_per_model(objects: dict[str, list]) -> None:
    """churn, activation, CLV and next-best-action each get a non-empty service."""
    services = {s.name: s for s in objects["FeatureService"]}
    assert set(services) == {"churn_v1", "activation_v1", "clv_v1", "nba_v1"}
    for name, service in services.items():
        assert service.feature_view_projections, f"{name} has no features"
    nba = {p.name for p in services["nba_v1"].feature_view_projections}
    assert nba == {v.name for v in objects["FeatureView"]}, "nba_v1 sees every family"


def test_local_config_lives_under_the_data_dir(tmp_path: Path) -> None:
    """Local: file registry and SQLite under <data>/feast, DuckDB offline; nothing hard-coded."""
    settings = Settings(data_dir=tmp_path / "data", feast_repo=tmp_path / "repo", profile="local")
    config = yaml.safe_load(store.write_config(settings).read_text())
    feast_dir = (tmp_path / "data" / "feast").resolve()
    assert config["project"] == settings.feast_project
    assert config["offline_store"] == {"type": "duckdb"}
    assert config["registry"] == {"registry_type": "file", "path": str(feast_dir / "registry.db")}
    assert config["online_store"] == {"type": "sqlite", "path": str(feast_dir / "online.db")}


def test_production_config_uses_redis_and_postgres(tmp_path: Path) -> None:
    """Production: Redis online store and SQL registry from settings, psycopg 3 driver."""
    settings = Settings(
        data_dir=tmp_path / "data",
        feast_repo=tmp_path / "repo",
        profile="production",
        redis_url="redis.internal:6380",
        postgres_url="postgresql://feast:secret@db.internal:5432/features",
    )
    config = yaml.safe_load(store.write_config(settings).read_text())
    assert config["online_store"]["type"] == "redis"
    assert config["online_store"]["connection_string"] == "redis.internal:6380"
    assert config["registry"]["registry_type"] == "sql"
    assert (
        config["registry"]["path"] == "postgresql+psycopg://feast:secret@db.internal:5432/features"
    )
    assert config["offline_store"] == {"type": "duckdb"}
    assert not (tmp_path / "data").exists(), "production keeps nothing in the data dir"


def test_imports_touch_nothing_and_leave_feast_unloaded(tmp_path: Path) -> None:
    """Importing the CLI and feature modules writes no file and does not import Feast (slow)."""
    import subprocess
    import sys

    code = (
        "import sys, pipelines.cli, pipelines.cli.feature_commands, features.store, "
        "features.build; "
        "pipelines.cli.build_app(); print('feast' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False", "Feast must be imported lazily, inside functions"
    assert list(tmp_path.iterdir()) == [], "imports must not create files or folders"
