"""Feature store tests: training frames through Feast's point-in-time join, materialize into the
online store, the `show` command, and the production profile against Redis and PostgreSQL.

One Feast repo per module in a temp folder (Feast is slow to import and to apply). Snapshots are
synthetic values for every catalog feature, written where `features build` writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features import build, store
from features.catalog import PANDAS_DTYPES
from memberscore.errors import DataNotFound, MemberNotFound, StoreUnavailable
from memberscore.settings import Settings

FIRST, SECOND = date(2024, 6, 3), date(2024, 6, 10)
MEMBERS = [f"m{i:07d}" for i in range(1, 41)]
GONE = MEMBERS[-1]  # in the first snapshot only: its latest snapshot is the first


def catalog() -> Mapping[str, Sequence[Any]]:
    """The feature catalog."""
    from features.catalog import FAMILIES

    return FAMILIES


def feature_names() -> list[str]:
    """Every catalog feature, in catalog order."""
    return [f.name for family in catalog().values() for f in family]


def fake_snapshot(members: list[str], as_of: date, seed: int) -> pd.DataFrame:
    """Random values of the catalog dtypes, some missing, conformed like a built snapshot."""
    rng = np.random.default_rng(seed)
    n = len(members)
    frame = pd.DataFrame({"member_id": members, "as_of": pd.Timestamp(as_of, tz="UTC")})
    for family in catalog().values():
        for feature in family:
            values: Any = {
                "float": rng.normal(100, 50, n).round(4),
                "int": rng.integers(0, 400, n),
                "string": rng.choice(["a", "b", "c"], n).astype(object),
                "bool": rng.random(n) < 0.5,
            }[feature.dtype]
            column = pd.Series(values).astype(PANDAS_DTYPES[feature.dtype])
            column[rng.random(n) < 0.1] = pd.NA
            frame[feature.name] = column
    return build.conform(frame, catalog())


def write_snapshots(settings: Settings) -> dict[date, pd.DataFrame]:
    """Two weekly snapshots whose values all differ, as `features build` would store them."""
    snapshots = {
        FIRST: fake_snapshot(MEMBERS, FIRST, seed=1),
        SECOND: fake_snapshot(MEMBERS[:-1], SECOND, seed=2),
    }
    for day, frame in snapshots.items():
        build.write_snapshot(frame, store.snapshot_path(settings, day))
    return snapshots


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Catalog columns with catalog dtypes, sorted by member, to compare values not dtypes."""
    out = frame[["member_id", *feature_names()]].copy()
    out["member_id"] = out["member_id"].astype("string")
    for family in catalog().values():
        for feature in family:
            out[feature.name] = out[feature.name].astype(PANDAS_DTYPES[feature.dtype])
    return out.sort_values("member_id", ignore_index=True)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[date, pd.DataFrame]]:
    """A local-profile store in a temp folder: snapshots built, applied and materialized."""
    root = tmp_path_factory.mktemp("feast_local")
    settings = Settings(data_dir=root / "data", feast_repo=root / "feature_repo", profile="local")
    snapshots = write_snapshots(settings)
    store.apply(settings)
    store.materialize(settings, batch_rows=16)  # several batches on purpose
    return settings, snapshots


def test_training_frame_equals_the_snapshot_of_each_cutoff(local: Any) -> None:
    """Given two cutoffs, when every (member, cutoff) goes through get_historical_features,
    then each row holds exactly the features of that cutoff's snapshot."""
    settings, snapshots = local
    for day, snapshot in snapshots.items():
        entity_df = pd.DataFrame(
            {"member_id": snapshot["member_id"], "event_timestamp": snapshot["as_of"]}
        )
        got = store.training_frame(settings, entity_df, "nba_v1")
        pd.testing.assert_frame_equal(
            canonical(got), canonical(snapshot), obj=f"training frame at cutoff {day}"
        )


def test_training_frame_is_point_in_time(local: Any) -> None:
    """Given a timestamp between two snapshots, the earlier snapshot is served, never the later;
    just before the first cutoff nothing is served."""
    settings, snapshots = local
    between = pd.Timestamp(SECOND, tz="UTC") - pd.Timedelta(seconds=1)
    entity_df = pd.DataFrame({"member_id": MEMBERS, "event_timestamp": between})
    got = store.training_frame(settings, entity_df, "nba_v1")
    pd.testing.assert_frame_equal(
        canonical(got), canonical(snapshots[FIRST]), obj="row dated between the two cutoffs"
    )
    before = entity_df.assign(event_timestamp=pd.Timestamp(FIRST, tz="UTC") - pd.Timedelta("1s"))
    early = store.training_frame(settings, before, "nba_v1")
    assert early[feature_names()].isna().all().all(), "no snapshot exists before the first cutoff"


def test_materialize_serves_the_latest_snapshot_of_every_member(local: Any) -> None:
    """After materialize, the online store holds each member's latest snapshot (all members)."""
    settings, snapshots = local
    latest = pd.concat([snapshots[SECOND], snapshots[FIRST].query("member_id == @GONE")])
    online = store.online_features(settings, MEMBERS)
    pd.testing.assert_frame_equal(canonical(online), canonical(latest), obj="online features")
    expected = dict(zip(latest["member_id"].astype(str), latest["as_of"], strict=True))
    served = dict(zip(online["member_id"].astype(str), online["as_of"], strict=True))
    assert served == expected, "each member's freshness is the cutoff of its latest snapshot"


def test_show_prints_features_and_freshness(local: Any, monkeypatch, capsys) -> None:
    """`memberscore features show` prints the cutoff and the member's online features."""
    settings, _ = local
    output = run_cli(["features", "show", MEMBERS[0]], settings, monkeypatch, capsys)
    assert output.exit_code == 0, output.err
    assert f"as of {SECOND:%Y-%m-%d} 00:00 UTC" in output.out
    assert all(name in output.out for name in feature_names()), "every feature is listed"


def test_show_unknown_member_gives_a_clear_message(local: Any, monkeypatch, capsys) -> None:
    """An unknown member id exits with code 2 and says what to check, without a traceback."""
    settings, _ = local
    with pytest.raises(MemberNotFound):
        store.online_member(settings, "nobody")
    output = run_cli(["features", "show", "nobody"], settings, monkeypatch, capsys)
    assert output.exit_code == 2
    assert "member 'nobody' has no features in the online store" in output.err


def test_missing_snapshots_and_registry_say_what_to_run(tmp_path: Path) -> None:
    """With nothing built, reads name the command to run next."""
    settings = Settings(data_dir=tmp_path / "data", feast_repo=tmp_path / "repo", profile="local")
    with pytest.raises(DataNotFound, match="memberscore features build"):
        store.materialize(settings)
    build.write_snapshot(fake_snapshot(MEMBERS[:3], FIRST, 0), store.snapshot_path(settings, FIRST))
    with pytest.raises(DataNotFound, match="memberscore features apply"):
        store.materialize(settings)


class CliOutput:
    """Exit code and captured streams of one CLI run."""

    def __init__(self, exit_code: int, out: str, err: str) -> None:
        self.exit_code, self.out, self.err = exit_code, out, err


def run_cli(args: list[str], settings: Settings, monkeypatch, capsys) -> CliOutput:
    """Run `memberscore ARGS` through `main()` (where errors become exit codes)."""
    from memberscore import settings as settings_module
    from pipelines import cli

    # Import every command module before the patch: a module first imported under it would
    # keep the fake `get_settings` it bound (`from ... import get_settings`) for later tests.
    cli.build_app()
    monkeypatch.setattr("sys.argv", ["memberscore", *args])
    monkeypatch.setattr(settings_module, "get_settings", lambda: settings)
    monkeypatch.setattr("pipelines.cli.feature_commands.get_settings", lambda: settings)
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return CliOutput(code, captured.out, captured.err)


# --- production profile ---------------------------------------------------------------------


def services_reachable(settings: Settings) -> str | None:
    """None when Redis and PostgreSQL answer, else why not."""
    import psycopg
    import redis

    host, _, port = settings.redis_url.partition(":")
    try:
        redis.Redis(host=host, port=int(port or 6379), socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as error:
        return f"Redis at {settings.redis_url} unreachable: {error}"
    try:
        psycopg.connect(settings.postgres_url, connect_timeout=2).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {settings.postgres_url} unreachable: {error}"
    return None


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Production-profile settings with a unique Feast project and Postgres schema; cleaned up."""
    import psycopg

    base = Settings()
    reason = services_reachable(base)
    if reason is not None:
        pytest.skip(f"production services not reachable: {reason}")
    run_id = f"mstest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.postgres_url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {run_id}")
    root = tmp_path_factory.mktemp("feast_production")
    settings = Settings(
        data_dir=root / "data",
        feast_repo=root / "feature_repo",
        profile="production",
        feast_project=run_id,
        postgres_url=f"{base.postgres_url}?options=-csearch_path%3D{run_id}",
    )
    try:
        yield settings
    finally:
        store.feature_store(settings).teardown()  # drops the project's Redis keys
        with psycopg.connect(base.postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {run_id} CASCADE")


@pytest.mark.production
def test_services_down_raise_store_unavailable(production: Settings) -> None:
    """A stopped Redis or PostgreSQL gives StoreUnavailable naming the URL, not a traceback."""
    store.apply(production)
    no_redis = production.model_copy(update={"redis_url": "127.0.0.1:1"})
    with pytest.raises(StoreUnavailable, match=r"Redis online store at 127\.0\.0\.1:1"):
        store.online_features(no_redis, MEMBERS[:2])
    no_postgres = production.model_copy(
        update={"postgres_url": "postgresql://postgres@127.0.0.1:1/test"}
    )
    with pytest.raises(StoreUnavailable, match="PostgreSQL registry"):
        store.online_features(no_postgres, MEMBERS[:2])


@pytest.mark.production
def test_production_profile_round_trip(production: Settings) -> None:
    """Against real Redis and PostgreSQL: apply, materialize, then online and historical reads
    return the snapshot values."""
    snapshots = write_snapshots(production)
    store.apply(production)
    report = store.materialize(production)
    assert report.members == len(MEMBERS)
    online = store.online_features(production, MEMBERS, "nba_v1")
    latest = pd.concat([snapshots[SECOND], snapshots[FIRST].query("member_id == @GONE")])
    pd.testing.assert_frame_equal(canonical(online), canonical(latest), obj="Redis features")
    entity_df = pd.DataFrame({"member_id": MEMBERS, "event_timestamp": snapshots[FIRST]["as_of"]})
    historical = store.training_frame(production, entity_df, "nba_v1")
    pd.testing.assert_frame_equal(
        canonical(historical), canonical(snapshots[FIRST]), obj="historical features"
    )
    config = (production.feast_repo / "feature_store.yaml").read_text()
    assert "type: redis" in config and "registry_type: sql" in config
