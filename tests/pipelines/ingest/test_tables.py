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


def test_a_nul_in_a_member_id_is_quarantined_not_truncated(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 6: 'm1\\x00x' was read as 'm1', moving the order to member m1."""
    # given an order whose member id holds a NUL byte, and a good order
    path = tmp_path / "o.csv"
    path.write_bytes(
        f"{HEADER}\no1,m1\x00x,2024-05-01T10:00:00Z,10,0,1,online,false\n{GOOD[1]}\n".encode()
    )

    # when ingested
    report = _ingest(settings, str(path))

    # then it is quarantined naming the field, and nothing is stored for member m1
    assert (report.stored, report.quarantined) == (1, 1), report.describe()
    assert "member_id: contains control character U+0000" in report.rejected_examples[0]
    stored = lake.read(settings.lake_dir, ORDERS)
    assert stored["member_id"].tolist() == ["m2"], "no order may move to member m1"


def test_cli_zone_less_times_are_quarantined_unless_timezone_is_given(
    cli_env: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 6: a date without zone ('2024-05-01') was stored as UTC."""
    from pipelines.cli import build_app

    source = _file(tmp_path, ["o5,m1,2024-05-01,1,0,1,online,false"])
    strict = CliRunner().invoke(build_app(), ["ingest", "orders", source])
    assert strict.exit_code == 0, strict.output
    assert "stored 0 + quarantined 1" in strict.output
    assert "ordered_at: must be a timestamp with a timezone" in strict.output
    assert "pass --timezone" in strict.output, "the reason says how to accept such times"

    lenient = CliRunner().invoke(
        build_app(), ["ingest", "orders", source, "--timezone", "America/New_York"]
    )
    assert lenient.exit_code == 0 and "stored 1 + quarantined 0" in lenient.output, lenient.output
    stored = lake.read(cli_env.lake_dir, ORDERS)["ordered_at"].tolist()
    assert stored == [pd.Timestamp("2024-05-01T04:00:00Z")], "midnight in New York (UTC-4)"


def test_implausible_and_impossible_dates_are_quarantined_with_their_reasons(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 6: 1900 and 2100 were stored; 0001, 9999 and Feb 30 were rejected as
    lacking a timezone."""
    # given orders dated 1900, 2100, 0001, 9999, Feb 30 and one good order
    dates = {
        "o1": "1900-01-01T00:00:00Z",
        "o2": "2100-01-01T00:00:00Z",
        "o3": "0001-01-01T00:00:00Z",
        "o4": "9999-12-31T00:00:00Z",
        "o5": "2024-02-30T00:00:00Z",
    }
    rows = [f"{key},m1,{when},1,0,1,online,false" for key, when in dates.items()]

    # when ingested
    report = _ingest(settings, _file(tmp_path, [*rows, GOOD[0]]))

    # then only the good order is stored; the window and the impossible dates have distinct reasons
    assert (report.read, report.stored, report.quarantined) == (6, 1, 5), report.describe()
    assert report.quarantine_file is not None
    reasons = pd.read_csv(report.quarantine_file, dtype=str).set_index("order_id")["_reason"]
    for key in ("o1", "o2"):
        assert reasons[key].startswith("ordered_at: implausible date, outside 1970-01-01 to "), (
            f"{dates[key]} is a real date outside the plausible window: {reasons[key]}"
        )
    for key in ("o3", "o4", "o5"):
        assert reasons[key] == f"ordered_at: not a valid date/time (got '{dates[key]}')"


def test_a_line_with_an_extra_field_is_quarantined_and_the_rest_stored(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 6: one row with an extra field aborted the file with a traceback."""
    rows = [GOOD[0], "o7,m1,2024-05-01T10:00:00Z,1,0,1,online,false,surprise", *GOOD[1:]]
    small = settings.model_copy(update={"chunk_rows": 2})

    report = _ingest(small, _file(tmp_path, rows))

    assert (report.read, report.stored, report.quarantined) == (4, 3, 1), report.describe()
    assert _adds_up(report), "read = stored + quarantined + duplicates"
    assert report.rejected_examples == (
        "row 2: line has 9 fields where the header has 8; quote values that contain ',' "
        "(got 'o7,m1,2024-05-01T10:00:00Z,1,0,1,online,false,surprise')",
    )
    assert report.quarantine_file is not None
    quarantined = pd.read_csv(report.quarantine_file, dtype=str)
    assert quarantined["order_id"].tolist() == ["o7"], "the bad line's fields are in quarantine"
    assert sorted(lake.read(small.lake_dir, ORDERS)["order_id"]) == ["o1", "o2", "o3"]


def _main_exit(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from pipelines.cli import main

    monkeypatch.setattr(sys, "argv", ["memberscore", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("latin1.csv", f"{HEADER}\no1,m\xfcller,2024-05-01T10:00:00Z,1,0,1,online,false\n"),
        ("blank.csv", "   \n\t\n"),
        ("empty.parquet", ""),
        ("garbage.parquet", "PAR1 this is not parquet\n" * 10),
        ("truncated.parquet", None),
    ],
)
def test_cli_unreadable_file_exits_2_with_one_line_naming_it(
    cli_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | None,
) -> None:
    """Issue 14 finding 6: these files ended in a traceback (exit 1)."""
    # given an unreadable input
    path = tmp_path / name
    if content is None:
        whole = tmp_path / "whole.parquet"
        pd.read_csv(_file(tmp_path, GOOD), dtype=str).to_parquet(whole)
        path.write_bytes(whole.read_bytes()[:-100])
    else:
        path.write_bytes(content.encode("latin-1"))

    # when the CLI ingests it
    code = _main_exit(monkeypatch, "ingest", "orders", str(path))

    # then exit 2, one line naming the file and the next step, and nothing in the lake
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0 and str(path) in err, f"one line naming the file: {err!r}"
    assert any(hint in err for hint in ("convert it", "give a CSV", "export it again")), err
    assert not lake.has_table(cli_env.lake_dir, ORDERS)


def test_a_failing_log_write_leaves_no_lake_rows(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 finding 6: the lake and the ingest log are committed together."""
    from pipelines.ingest import tables

    # given a log write that fails after every chunk was written
    small = settings.model_copy(update={"chunk_rows": 1})
    source = _file(tmp_path, [*GOOD, "o9,m1,bad,1,0,1,online,false"])

    def broken_log(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(tables, "_append_log", broken_log)
        with pytest.raises(OSError, match="disk full"):
            _ingest(small, source)

    # then neither rows nor a quarantine file are left, and a rerun stores everything once
    assert lake.read(small.lake_dir, ORDERS).empty, "rows without a log line must not be visible"
    assert not list(small.quarantine_dir.rglob("*.csv*")), "no quarantine of a failed run"
    again = _ingest(small, source)
    assert (again.stored, again.quarantined, again.duplicates) == (3, 1, 0)
    assert len(lake.read(small.lake_dir, ORDERS)) == 3


_KILLED_INGEST = """
import os, signal, sys
from pathlib import Path
from memberscore import lake
from memberscore.settings import Settings
from pipelines.ingest import tables

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "before-log":
    tables._append_log = die
else:
    lake.publish = die
settings = Settings(data_dir=Path(sys.argv[2]), chunk_rows=1)
tables.ingest(settings, "orders", sys.argv[3], currency="USD")
"""


@pytest.mark.parametrize(("moment", "stored_by_rerun"), [("before-log", 3), ("after-log", 0)])
def test_a_killed_ingest_leaves_both_or_neither(
    settings: Settings, tmp_path: Path, moment: str, stored_by_rerun: int
) -> None:
    """Issue 14 finding 6: a killed ingest left 199,400 lake rows with no log line."""
    # given an ingest process killed (SIGKILL) just before, or just after, its log line
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_INGEST)
    source = _file(tmp_path, GOOD)
    root = Path(lake.__file__).parents[1]  # the child runs the code this test imported
    done = subprocess.run(
        [sys.executable, str(script), moment, str(settings.data_dir), source],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == -9, done.stderr

    # then before the log line the lake shows no row; after it, the log has the run
    log = settings.lake_dir / "_ingest_log.jsonl"
    logged = log.read_text().splitlines() if log.exists() else []
    assert len(logged) == (0 if moment == "before-log" else 1)
    assert lake.read(settings.lake_dir, ORDERS).empty, "no lake rows the log does not name yet"

    # when ingested again: the killed run is undone or completed, and every order is stored once
    again = _ingest(settings, source)
    assert again.stored == stored_by_rerun and again.stored + again.duplicates == 3
    stored = lake.read(settings.lake_dir, ORDERS)["order_id"]
    assert sorted(stored) == ["o1", "o2", "o3"], "every order exactly once"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(e["stored"] for e in entries) == 3, "the log accounts for every stored row"
    named = {part for e in entries for part in e["parts"]}
    on_disk = {str(p.relative_to(settings.lake_dir)) for p in settings.lake_dir.rglob("*.parquet")}
    assert on_disk == named, "every part in the lake is named by a log line, and nothing pends"


def test_an_unknown_timezone_is_refused_before_reading(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="unknown time zone 'Mars/Base'; use an IANA name"):
        _ingest(settings, _file(tmp_path, GOOD), assume_timezone="Mars/Base")
    assert not lake.has_table(settings.lake_dir, ORDERS)


def test_a_log_line_cut_short_by_a_kill_does_not_swallow_the_next(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 6: the log is the commit record, so a torn last line must stay harmless."""
    from pipelines.ingest.tables import read_log

    # given a log whose last line a killed writer left unfinished
    settings.lake_dir.mkdir(parents=True)
    (settings.lake_dir / "_ingest_log.jsonl").write_text('{"run_id": "x", "tab')

    # when a run is logged after it
    report = _ingest(settings, _file(tmp_path, GOOD))

    # then the new entry is a line of its own and the torn one is skipped
    entries = read_log(settings.lake_dir)
    assert [e["run_id"] for e in entries] == [report.run_id], entries
