"""The online-store timeouts of the score API in the Feast config (issue 14 finding 4)."""

from __future__ import annotations

from pathlib import Path

from feast.infra.online_stores.redis import RedisOnlineStore

from features import store
from memberscore.settings import Settings


def test_redis_connection_string_gets_socket_timeouts_and_keeps_given_options() -> None:
    """Issue 14 finding 4: the timeouts reach redis-py as Feast parses the string; options in
    `redis_url` stay, and a timeout it sets itself wins."""
    # Given an address with a password and its own read timeout
    url = "redis.internal:6380,password=s3cret,socket_timeout=5"

    # When the score API's connection string is built with a 0.5 s timeout
    text = store.redis_connection_string(url, 0.5)
    nodes, options = RedisOnlineStore._parse_connection_string(text)

    # Then Feast hands redis.Redis both timeouts, the given one untouched
    assert nodes == [{"host": "redis.internal", "port": "6380"}]
    assert options == {"password": "s3cret", "socket_timeout": 5, "socket_connect_timeout": 0.5}
    assert store.redis_connection_string(url, None) == url, "batch jobs: no timeouts added"


def test_only_the_score_apis_store_config_carries_timeouts(tmp_path: Path) -> None:
    """Issue 14 finding 4: `store_config(..., timeout_seconds=)` bounds the Redis client's
    waits; feature_store.yaml (Feast's CLI) and batch jobs keep the plain address."""
    settings = Settings(
        data_dir=tmp_path, feast_repo=tmp_path / "repo", profile="production", redis_url="r:1"
    )

    served = store.store_config(settings, timeout_seconds=1.0)["online_store"]
    batch = store.store_config(settings)["online_store"]

    assert served["connection_string"] == "r:1,socket_timeout=1.0,socket_connect_timeout=1.0"
    assert batch["connection_string"] == "r:1"
