"""Ingest: every row read is stored, quarantined or skipped as a duplicate, and said so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from memberscore import lake
from memberscore.contract import MEMBERS, ORDERS
from memberscore.errors import ContractError
from memberscore.settings import Settings, get_settings
from pipelines.ingest.tables import IngestReport, duplicate_mask, ingest

HEADER = "order_id,member_id,ordered_at,amount,discount,items,channel,is_return"
GOOD = [
    "o1,m1,2024-05-01T10:00:00Z,10.5,0,1,online,false",
    "o2,m2,2024-05-02T10:00:00+02:00,20,1,2,store,false",
    "o3,m1,2024-06-03T10:00:00Z,5,0,1,app,true",
]


def _file(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "o.csv") -> str:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def _ingest(
    settings: Settings, source: str, table: str = "orders", **options: object
) -> IngestReport:
    return ingest(settings, table, source, currency=options.pop("currency", "USD"), **options)  # type: ignore[arg-type]


def _adds_up(report: IngestReport) -> bool:
    return report.read == report.stored + report.quarantined + report.duplicates


def test_bad_rows_are_quarantined_with_field_and_rule(settings: Settings, tmp_path: Path) -> None:
    # given two good rows and two bad ones (negative amount; unknown channel)
    rows = [
        GOOD[0],
        "o9,m1,2024-05-01T10:00:00Z,-5,0,1,online,false",
        GOOD[1],
        "o8,m1,2024-05-01T10:00:00Z,3,0,1,web,false",
    ]

    # when the file is ingested
    report = _ingest(settings, _file(tmp_path, rows))

    # then the good rows are stored and the bad ones quarantined with field + rule
    assert (report.stored, report.quarantined, report.duplicates) == (2, 2, 0)
    assert report.rejected_examples[0] == "row 2: amount: must be >= 0 (got '-5')"
    assert "channel: must be one of online" in report.rejected_examples[1]
    quarantined = pd.read_csv(report.quarantine_file, dtype=str)
    assert list(quarantined.columns[:4]) == ["_row", "_reason", "_source", "order_id"], (
        "quarantine files start with _row, _reason, _source, then the raw fields"
    )
    assert quarantined["_row"].tolist() == ["2", "4"] and quarantined["amount"][0] == "-5"
    text = report.describe()
    assert "orders: read 4 = stored 2 + quarantined 2 + duplicates skipped 0" in text
    assert str(report.quarantine_file) in text, "describe() says where the rejected rows went"


@pytest.mark.parametrize("chunk_rows", [1, 2, 100])
def test_counts_add_up_whatever_the_chunk_size(
    settings: Settings, tmp_path: Path, chunk_rows: int
) -> None:
    # given good, bad and repeated rows, read in chunks of various sizes
    rows = [*GOOD, GOOD[0], "o9,m1,not a time,1,0,1,online,false", GOOD[1]]
    small = settings.model_copy(update={"chunk_rows": chunk_rows})

    # when ingested
    report = _ingest(small, _file(tmp_path, rows))

    # then read = stored + quarantined + duplicates, and the lake holds exactly the stored rows
    assert _adds_up(report), f"counts must add up: {report}"
    assert (report.read, report.stored, report.quarantined, report.duplicates) == (6, 3, 1, 2)
    assert len(lake.read(small.lake_dir, ORDERS)) == 3


def test_second_run_of_the_same_file_stores_nothing(settings: Settings, tmp_path: Path) -> None:
    # given a file already ingested once
    source = _file(tmp_path, GOOD)
    first = _ingest(settings, source)

    # when it is ingested again
    second = _ingest(settings, source)

    # then every row is a skipped duplicate and the lake is unchanged
    assert first.stored == 3
    assert (second.stored, second.duplicates) == (0, 3), "re-ingest must store nothing twice"
    assert len(lake.read(settings.lake_dir, ORDERS)) == 3
    assert first.run_id != second.run_id, "each run has its own id"
    log = (settings.lake_dir / "_ingest_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["stored"] for line in log] == [3, 0], "one log line per run"


def test_duplicate_keys_within_a_file_keep_the_first(settings: Settings, tmp_path: Path) -> None:
    # given the same order id twice with different amounts
    rows = [GOOD[0], "o1,m1,2024-05-01T10:00:00Z,99,0,1,online,false"]

    # when ingested
    report = _ingest(settings, _file(tmp_path, rows))

    # then the first is stored and the second counted as a duplicate
    assert (report.stored, report.duplicates) == (1, 1)
    assert lake.read(settings.lake_dir, ORDERS)["amount"].tolist() == [10.5], "first one wins"


def test_duplicate_mask_covers_known_and_repeated_keys() -> None:
    keys = pd.Series(["a", "b", "a", "c"])
    assert duplicate_mask(keys, {"c"}).tolist() == [False, False, True, True]


def test_offsets_become_utc_and_naive_times_need_a_timezone(
    settings: Settings, tmp_path: Path
) -> None:
    # given one time with an offset and one without
    rows = [GOOD[1], "o4,m1,2024-07-01 12:00:00,1,0,1,online,false"]
    source = _file(tmp_path, rows)

    # when ingested without, then with --timezone
    strict = _ingest(settings, source)
    lenient = _ingest(settings, source, assume_timezone="Europe/Berlin")

    # then the offset is converted to UTC, the naive time rejected first and read in Berlin after
    assert (
        strict.quarantined == 1
        and "ordered_at: must be a timestamp with a timezone" in (strict.rejected_examples[0])
    )
    assert lenient.stored == 1 and lenient.duplicates == 1
    stored = lake.read(settings.lake_dir, ORDERS).set_index("order_id")["ordered_at"]
    assert stored["o2"] == pd.Timestamp("2024-05-02T08:00:00Z"), "+02:00 is converted to UTC"
    assert stored["o4"] == pd.Timestamp("2024-07-01T10:00:00Z"), "Berlin summer time is UTC+2"


def test_empty_and_header_only_files_read_nothing(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for source in (str(empty), _file(tmp_path, [], name="header.csv")):
        report = _ingest(settings, source)
        assert (report.read, report.stored, report.quarantine_file) == (0, 0, None)
        assert "holds no rows" in report.describe()


def test_header_only_file_still_has_its_columns_checked(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="missing required column"):
        _ingest(settings, _file(tmp_path, [], header="order_id,member_id"))


def test_wrong_types_are_rejected_per_field(settings: Settings, tmp_path: Path) -> None:
    rows = ["o1,m1,2024-05-01T10:00:00Z,ten,0,two,online,maybe"]
    report = _ingest(settings, _file(tmp_path, rows))
    reason = report.rejected_examples[0]
    for expected in (
        "amount: must be a number",
        "items: must be a whole number",
        "is_return: must be true or false",
    ):
        assert expected in reason, f"{expected!r} missing from {reason!r}"


def test_unknown_columns_fail_unless_ignored(settings: Settings, tmp_path: Path) -> None:
    source = _file(tmp_path, [f"{GOOD[0]},x"], header=f"{HEADER},note")
    with pytest.raises(ContractError, match="not in the contract: note"):
        _ingest(settings, source)
    report = _ingest(settings, source, ignore_unknown=True)
    assert report.stored == 1, "with ignore_unknown the extra column is dropped, the row kept"


def test_missing_required_column_names_it(settings: Settings, tmp_path: Path) -> None:
    header = HEADER.replace(",channel", "")
    with pytest.raises(ContractError, match=r"missing required column.*channel"):
        _ingest(
            settings, _file(tmp_path, ["o1,m1,2024-05-01T10:00:00Z,1,0,1,false"], header=header)
        )


def test_parquet_input_with_typed_columns(settings: Settings, tmp_path: Path) -> None:
    # given a Parquet file with real types (timestamps, floats, booleans)
    frame = pd.DataFrame(
        {
            "order_id": ["p1", "p2"],
            "member_id": ["m1", "m2"],
            "ordered_at": pd.to_datetime(["2024-05-01T10:00Z", "2024-05-02T10:00Z"], utc=True),
            "amount": [1.5, -2.0],
            "discount": [0.0, 0.0],
            "items": [1, 2],
            "channel": ["online", "online"],
            "is_return": [False, True],
        }
    )
    path = tmp_path / "o.parquet"
    frame.to_parquet(path)

    # when ingested
    report = _ingest(settings, str(path))

    # then the good row is stored and the negative amount quarantined
    assert (report.stored, report.quarantined) == (1, 1)
    assert "amount: must be >= 0" in report.rejected_examples[0]


def test_currency_mismatch_is_refused(settings: Settings, tmp_path: Path) -> None:
    source = _file(tmp_path, GOOD)
    _ingest(settings, source, currency="EUR")
    with pytest.raises(ContractError, match="holds amounts in EUR, not USD"):
        _ingest(settings, source, currency="USD")
    with pytest.raises(ContractError, match="not an ISO 4217 code"):
        _ingest(settings, source, currency="euro")


def test_orders_of_unknown_members_are_kept_and_reported(
    settings: Settings, tmp_path: Path
) -> None:
    # given member m1 in the lake and orders of m1 and m2
    members = (
        "member_id,registered_at,acquisition_channel,region,tier,"
        "consent_marketing,consent_personalization"
    )
    _ingest(
        settings,
        _file(
            tmp_path,
            ["m1,2024-01-01T00:00:00Z,web,north,basic,true,false"],
            header=members,
            name="m.csv",
        ),
        table="members",
    )

    # when the orders are ingested
    report = _ingest(settings, _file(tmp_path, GOOD))

    # then all orders are stored and the one of m2 is reported, with the next step
    assert report.stored == 3, "orders of unknown members are never dropped"
    assert report.unknown_members == 1 and report.unknown_member_examples == ("m2",)
    assert "memberscore ingest members" in report.describe()
    assert lake.dataset_currency(settings.lake_dir) == "USD"
    assert len(lake.read(settings.lake_dir, MEMBERS)) == 1


def test_postgres_source_is_ingested(settings: Settings, pg_url: str, pg_table: str) -> None:
    # given a PostgreSQL table of five orders, read two rows at a time
    small = settings.model_copy(update={"chunk_rows": 2})

    # when it is ingested
    report = ingest(small, "orders", pg_url, pg_table=pg_table, currency="USD")

    # then every row is stored with its types converted to the contract's
    assert (report.read, report.stored) == (5, 5), report.describe()
    assert report.source.endswith(f"#{pg_table}")
    stored = lake.read(small.lake_dir, ORDERS).set_index("order_id")
    assert stored.loc["o1", "ordered_at"] == pd.Timestamp("2024-05-02T08:00:00Z")
    assert stored.loc["o5", "is_return"] and stored.loc["o3", "amount"] == 4.5


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Given the CLI's settings pointed at the test's data dir."""
    monkeypatch.setenv("MEMBERSCORE_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_cli_ingest_prints_reasons_and_exits_0(cli_env: Settings, tmp_path: Path) -> None:
    from pipelines.cli import build_app

    source = _file(tmp_path, [GOOD[0], "o9,m1,2024-05-01T10:00:00Z,-5,0,1,online,false"])
    result = CliRunner().invoke(build_app(), ["ingest", "orders", source])
    assert result.exit_code == 0, result.output
    assert "stored 1 + quarantined 1" in result.output
    assert "row 2: amount: must be >= 0 (got '-5')" in result.output


def test_cli_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "memberscore"
    env = {**os.environ, "MEMBERSCORE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [str(script), "ingest", "orders", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0, f"one line expected: {done.stderr!r}"
    assert "nope.csv does not exist" in done.stderr
