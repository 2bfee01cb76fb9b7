"""The snapshot build job: cutoff series, one Parquet file per cutoff, idempotent rebuilds, and
snapshots that come back unchanged through Feast."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import build, store
from memberscore import lake
from memberscore.contract import CONTACTS, EVENTS, MEMBERS, ORDERS, Table, validate
from memberscore.errors import ContractError, DataNotFound
from memberscore.settings import Settings

CUTOFFS = [date(2024, 3, 4), date(2024, 3, 11), date(2024, 3, 18)]


def canonical_rows(spec: Table, rows: list[dict]) -> pd.DataFrame:
    """Contract-validated rows; fails loudly if the fixture itself breaks the contract."""
    checked = validate(pd.DataFrame(rows), spec)
    assert checked.rejected.empty, checked.rejected.to_string()
    return checked.accepted


def write_tiny_lake(lake_dir: Path) -> None:
    """Four members over three months: buyers, a browser, a lapsed member and a newcomer."""
    members = [
        {
            "member_id": f"m{i:07d}",
            "registered_at": f"2024-01-{i + 1:02d}T09:00:00Z",
            "acquisition_channel": "web",
            "region": "north" if i % 2 else "south",
            "gender": "female",
            "birth_year": 1980 + i,
            "tier": "basic",
            "consent_marketing": "true",
            "consent_personalization": "false",
        }
        for i in range(1, 4)
    ] + [
        {
            "member_id": "m0000004",
            "registered_at": "2024-03-08T12:00:00Z",
            "acquisition_channel": "store",
            "region": "east",
            "tier": "basic",
            "consent_marketing": "false",
            "consent_personalization": "true",
        }
    ]
    orders = [
        {
            "order_id": f"o{k}",
            "member_id": member,
            "ordered_at": when,
            "amount": amount,
            "discount": 0,
            "items": 1,
            "channel": "online",
            "is_return": "false",
        }
        for k, (member, when, amount) in enumerate(
            [
                ("m0000001", "2024-01-10T10:00:00Z", 120.0),
                ("m0000001", "2024-02-20T10:00:00Z", 80.0),
                ("m0000001", "2024-03-12T10:00:00Z", 60.0),
                ("m0000002", "2024-01-15T10:00:00Z", 40.0),
                ("m0000004", "2024-03-09T10:00:00Z", 25.0),
            ]
        )
    ]
    events = [
        {"event_id": f"e{k}", "member_id": member, "occurred_at": when, "event_type": kind}
        for k, (member, when, kind) in enumerate(
            [
                ("m0000001", "2024-03-01T08:00:00Z", "login"),
                ("m0000003", "2024-03-02T08:00:00Z", "page_view"),
                ("m0000003", "2024-03-13T08:00:00Z", "add_to_cart"),
            ]
        )
    ]
    contacts = [
        {
            "contact_id": "c1",
            "member_id": "m0000002",
            "sent_at": "2024-02-01T08:00:00Z",
            "action_id": "winback",
            "channel": "email",
            "group": "treatment",
        }
    ]
    for spec, rows in (
        (MEMBERS, members),
        (ORDERS, orders),
        (EVENTS, events),
        (CONTACTS, contacts),
    ):
        lake.write(canonical_rows(spec, rows), spec, lake_dir, part="test-0")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Path], list[str]]:
    """A tiny lake and the weekly snapshots built from it, with the progress lines printed."""
    root = tmp_path_factory.mktemp("build")
    settings = Settings(data_dir=root / "data", feast_repo=root / "feature_repo", profile="local")
    write_tiny_lake(settings.lake_dir)
    lines: list[str] = []
    paths = build.run(settings, build.cutoffs(CUTOFFS[-1], CUTOFFS[0], 7), echo=lines.append)
    return settings, paths, lines


def test_every_and_cutoffs() -> None:
    """--every accepts days or weeks; a series runs from --from up to and including --as-of."""
    assert build.parse_every("7d") == build.parse_every("1w") == build.parse_every("7") == 7
    with pytest.raises(ValueError, match="7d or 2w"):
        build.parse_every("weekly")
    assert build.cutoffs(date(2024, 3, 18)) == [date(2024, 3, 18)]
    assert build.cutoffs(date(2024, 3, 20), date(2024, 3, 4), 7) == CUTOFFS
    with pytest.raises(ValueError, match="after"):
        build.cutoffs(date(2024, 3, 1), date(2024, 3, 4), 7)


def test_one_file_per_cutoff_with_a_progress_line(built) -> None:
    """Each cutoff gets its own file, named by the cutoff, and one line of progress."""
    settings, paths, lines = built
    assert paths == [store.snapshot_path(settings, day) for day in CUTOFFS]
    assert store.snapshot_files(settings) == paths
    assert [line.split(":")[0] for line in lines] == [str(day) for day in CUTOFFS]


def test_snapshot_schema_is_the_catalog_with_microsecond_utc_cutoffs(built) -> None:
    """Columns: member_id, as_of (= the cutoff, datetime64[us, UTC]) and every catalog feature."""
    from features.catalog import FAMILIES

    _, paths, _ = built
    names = [f.name for family in FAMILIES.values() for f in family]
    for day, path in zip(CUTOFFS, paths, strict=True):
        frame = pd.read_parquet(path)
        assert list(frame.columns) == ["member_id", "as_of", *names]
        assert str(frame["as_of"].dtype) == "datetime64[us, UTC]"
        assert (frame["as_of"] == pd.Timestamp(day, tz="UTC")).all()
        assert frame["member_id"].is_unique
    schemas = {pq.read_schema(path) for path in paths}
    assert len(schemas) == 1, "every snapshot file has the same schema (one FileSource)"


def test_rebuilding_a_cutoff_replaces_it(built) -> None:
    """Rebuilding a cutoff leaves one file with the same content (idempotent)."""
    settings, paths, _ = built
    before = pd.read_parquet(paths[1])
    build.run(settings, [CUTOFFS[1]], echo=lambda _: None)
    assert store.snapshot_files(settings) == paths
    pd.testing.assert_frame_equal(pd.read_parquet(paths[1]), before)
    assert not list(settings.snapshots_dir.glob("*.partial"))


def test_conform_names_missing_columns() -> None:
    """A snapshot lacking a catalog column is refused with the column's name."""
    from features.catalog import FAMILIES

    first = next(iter(FAMILIES.values()))[0].name
    frame = pd.DataFrame({"member_id": ["m1"], "as_of": [pd.Timestamp("2024-01-01", tz="UTC")]})
    with pytest.raises(ContractError, match=first):
        build.conform(frame, FAMILIES)


def test_empty_lake_says_to_ingest_first(tmp_path: Path) -> None:
    """Building from an empty lake names the command to run first."""
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(DataNotFound, match="memberscore ingest"):
        build.run(settings, [CUTOFFS[0]])


def test_built_snapshots_come_back_unchanged_through_feast(built) -> None:
    """Snapshots computed from the lake, applied to Feast, return identical per cutoff."""
    settings, paths, _ = built
    store.apply(settings)
    for day, path in zip(CUTOFFS, paths, strict=True):
        snapshot = pd.read_parquet(path)
        entity_df = pd.DataFrame(
            {"member_id": snapshot["member_id"], "event_timestamp": snapshot["as_of"]}
        )
        got = store.training_frame(settings, entity_df, "nba_v1")
        got = got.sort_values("member_id", ignore_index=True)[snapshot.columns.drop("as_of")]
        expected = snapshot.drop(columns="as_of")
        for column in expected.columns:
            left = got[column].astype(expected[column].dtype)
            pd.testing.assert_series_equal(left, expected[column], obj=f"{column} at {day}")
