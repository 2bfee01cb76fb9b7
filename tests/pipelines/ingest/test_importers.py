"""Importers: order lines become orders and derived members; CDNOW in one step."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from memberscore import lake
from memberscore.contract import MEMBERS, ORDERS
from memberscore.errors import ContractError
from memberscore.settings import Settings
from pipelines.ingest.importers import (
    ImportReport,
    LineMapping,
    import_cdnow,
    import_orderlines,
    read_cdnow,
)
from pipelines.ingest.tables import ingest

CDNOW_SAMPLE = Path("/work/shared/data/cdnow/CDNOW_sample.txt")
RETAIL = LineMapping(
    order="Invoice",
    member="Customer ID",
    time="InvoiceDate",
    quantity="Quantity",
    price="Price",
    cancel_prefix="C",
    timezone="Europe/London",
)
LINES = [
    "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID",
    "489434,85048,12,2010-07-01 08:00:00,6.95,13085.0",  # summer: London is UTC+1
    "489434,79323P,-2,2010-07-01 08:05:00,6.75,13085.0",  # a return inside a purchase
    "489434,22041,48,2010-07-01 08:10:00,2.10,13085.0",
    "C489449,22087,-12,2010-12-01 10:33:00,2.95,16321",  # cancellation by prefix
    "489450,21111,3,2010-12-01 10:40:00,1.00,",  # no customer id
    "489451,21112,3,yesterday,1.00,16321",  # unreadable time
    "489452,21113,-4,2010-12-02 09:00:00,2.50,16321",  # return by negative quantity
]


def _lines(tmp_path: Path, rows: list[str] = LINES) -> Path:
    path = tmp_path / "lines.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _orders(settings: Settings) -> pd.DataFrame:
    return lake.read(settings.lake_dir, ORDERS).set_index("order_id")


def test_lines_become_orders_with_returns(settings: Settings, tmp_path: Path) -> None:
    # given order lines with a purchase, a mixed invoice, a prefixed cancellation, a negative line
    report = import_orderlines(settings, _lines(tmp_path), RETAIL, currency="GBP")

    # then each invoice (and return part) is one order with Σ|qty × price| and Σ|qty|
    orders = _orders(settings)
    assert sorted(orders.index) == ["489434", "489434-return", "489452", "C489449"], (
        "a mixed invoice is split into its purchase and its -return part"
    )
    purchase = orders.loc["489434"]
    assert purchase["amount"] == pytest.approx(12 * 6.95 + 48 * 2.10)
    assert purchase["items"] == 60 and not purchase["is_return"]
    assert purchase["ordered_at"] == pd.Timestamp("2010-07-01T07:00:00Z"), (
        "first line time, read in London (BST = UTC+1) and stored in UTC"
    )
    assert purchase["member_id"] == "13085", "a float-looking numeric id loses its '.0'"
    assert orders.loc["489434-return", "amount"] == pytest.approx(13.5)
    assert orders.loc["C489449", "is_return"], "the cancel prefix marks a return"
    assert orders.loc["C489449", "amount"] == pytest.approx(35.4), "return amounts are positive"
    assert orders.loc["489452", "is_return"], "a negative quantity marks a return"
    assert (orders["discount"] == 0).all() and (orders["channel"] == "online").all()
    assert report.returns == 3 and report.orders_stored == 4


def test_unusable_lines_are_quarantined_with_reasons(settings: Settings, tmp_path: Path) -> None:
    # when lines without customer id or with an unreadable time are imported
    report = import_orderlines(settings, _lines(tmp_path), RETAIL, currency="GBP")

    # then they are quarantined with the column and rule, and counted
    assert (report.lines, report.lines_quarantined) == (7, 2)
    assert report.line_examples[0].startswith("row 5: Customer ID: is required")
    assert "InvoiceDate: must be a timestamp (got 'yesterday')" in report.line_examples[1]
    assert report.line_quarantine_file is not None
    rejected = pd.read_csv(report.line_quarantine_file, dtype=str)
    assert list(rejected.columns[:3]) == ["_row", "_reason", "_source"]
    assert rejected["_row"].tolist() == ["5", "6"] and rejected["Invoice"].tolist() == [
        "489450",
        "489451",
    ], "quarantined lines keep their raw fields"
    assert "quarantined 2" in report.describe()


def test_members_are_derived_only_when_not_in_the_lake(settings: Settings, tmp_path: Path) -> None:
    # given member 16321 already in the lake
    members = tmp_path / "members.csv"
    members.write_text(
        "member_id,registered_at,acquisition_channel,region,tier,consent_marketing,"
        "consent_personalization\n16321,2009-01-01T00:00:00Z,store,west,gold,true,true\n"
    )
    ingest(settings, "members", str(members), currency="GBP")

    # when the lines are imported
    report = import_orderlines(settings, _lines(tmp_path), RETAIL, currency="GBP")

    # then only 13085 is derived, flagged, at its first order, in the lowest tier
    stored = lake.read(settings.lake_dir, MEMBERS).set_index("member_id")
    assert report.derived_members == 1 and report.members.duplicates == 0
    derived = stored.loc["13085"]
    assert derived["is_derived"] and not stored.loc["16321", "is_derived"]
    assert derived["registered_at"] == pd.Timestamp("2010-07-01T07:00:00Z")
    assert (derived["tier"], derived["acquisition_channel"], derived["region"]) == (
        "basic",
        "unknown",
        "unknown",
    )
    assert not derived["consent_marketing"] and not derived["consent_personalization"]
    assert report.orders.unknown_members == 0, "every order now has its member"


def test_reimport_stores_nothing_twice(settings: Settings, tmp_path: Path) -> None:
    path = _lines(tmp_path)
    import_orderlines(settings, path, RETAIL, currency="GBP")
    again = import_orderlines(settings, path, RETAIL, currency="GBP")
    assert (again.orders_stored, again.derived_members) == (0, 0)
    assert again.orders.duplicates == 4, "order ids are deterministic, so all are duplicates"
    assert len(_orders(settings)) == 4


def test_parquet_lines_and_line_totals(settings: Settings, tmp_path: Path) -> None:
    # given a Parquet export with typed columns and line totals instead of unit prices
    frame = pd.DataFrame(
        {
            "order": ["a", "a", "b"],
            "customer": [7, 7, 8],
            "at": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 10:01", "2024-01-03 09:00"]),
            "qty": [1, 2, 1],
            "total": [5.0, 4.0, 3.0],
        }
    )
    path = tmp_path / "lines.parquet"
    frame.to_parquet(path)
    mapping = LineMapping("order", "customer", "at", "qty", line_total="total", channel="store")

    # when imported
    report = import_orderlines(settings, path, mapping, currency="EUR")

    # then totals are summed as they are
    orders = _orders(settings)
    assert report.orders_stored == 2 and orders.loc["a", "amount"] == 9.0
    assert orders.loc["a", "items"] == 3 and orders.loc["a", "channel"] == "store"


def test_bad_mappings_are_refused(settings: Settings, tmp_path: Path) -> None:
    path = _lines(tmp_path)
    with pytest.raises(ContractError, match=r"column.*Qty not found"):
        import_orderlines(settings, path, _replace(quantity="Qty"), currency="GBP")
    with pytest.raises(ContractError, match="channel 'web' must be one of"):
        import_orderlines(settings, path, _replace(channel="web"), currency="GBP")
    with pytest.raises(ContractError, match="unknown time zone"):
        import_orderlines(settings, path, _replace(timezone="Mars/Base"), currency="GBP")


def _replace(**changes: str) -> LineMapping:
    return replace(RETAIL, **changes)


def test_read_cdnow_keeps_leading_zeros_and_names_orders_by_day(tmp_path: Path) -> None:
    # given a master-format file (header, 4 columns)
    path = tmp_path / "CDNOW_master.txt"
    path.write_text(
        " customer_id  date number_of_cds  dollar_value\n"
        " 00001 19970101  1   11.77\n 00002 19970112  5   77.00\n"
    )

    frame = read_cdnow(path)

    assert frame["customer_id"].tolist() == ["00001", "00002"], "leading zeros are kept"
    assert frame["order_id"].tolist() == ["cdnow-00001-19970101", "cdnow-00002-19970112"]
    assert frame["_row"].tolist() == [1, 2], "_row still numbers the records (for quarantine)"


def test_a_damaged_cdnow_file_is_one_error_naming_it(tmp_path: Path) -> None:
    """Issue 14 finding 7: a CDNOW line with a fifth field or latin-1 bytes gave a traceback."""
    path = tmp_path / "CDNOW_master.txt"
    path.write_text(" 00001 19970101  1   11.77\n 00002 19970112  5   77.00 9\n")
    with pytest.raises(ContractError, match=r"CDNOW_master\.txt cannot be read .*line 2"):
        read_cdnow(path)
    path.write_bytes(b" 0000\xe9 19970101  1   11.77\n")
    with pytest.raises(ContractError, match="cannot be read as the CDNOW log"):
        read_cdnow(path)


def test_cdnow_records_of_one_customer_on_one_day_are_one_order(
    settings: Settings, tmp_path: Path
) -> None:
    # given customer 00002 with two records on 1997-01-12 and one on 1997-01-20
    path = tmp_path / "CDNOW_master.txt"
    path.write_text(
        " customer_id  date number_of_cds  dollar_value\n"
        " 00001 19970101  1   11.77\n"
        " 00002 19970112  1   12.00\n"
        " 00002 19970112  5   77.00\n"
        " 00002 19970120  2   20.00\n"
    )

    # when imported
    report = import_cdnow(settings, path)

    # then the same-day records are one purchase-day order with dollars and CDs summed
    orders = _orders(settings)
    assert sorted(orders.index) == [
        "cdnow-00001-19970101",
        "cdnow-00002-19970112",
        "cdnow-00002-19970120",
    ], "one order per customer and day"
    same_day = orders.loc["cdnow-00002-19970112"]
    assert same_day["amount"] == pytest.approx(89.0), "amount = summed dollars of the day"
    assert same_day["items"] == 6, "items = summed CDs of the day"
    assert same_day["ordered_at"] == pd.Timestamp("1997-01-12T00:00:00Z")
    assert (report.lines, report.orders_stored, report.derived_members) == (4, 3, 2)


@pytest.mark.skipif(not CDNOW_SAMPLE.exists(), reason=f"{CDNOW_SAMPLE} is not available")
def test_cdnow_sample_import_matches_the_published_counts(settings: Settings) -> None:
    # when the 1/10 CDNOW sample is imported
    report = import_cdnow(settings, CDNOW_SAMPLE)

    # then its 6,919 records are 6,696 purchase days (orders) of 2,357 derived members, dated at
    # 00:00 UTC, in USD
    assert report.lines == 6_919 and report.lines_quarantined == 0, report.describe()
    assert report.orders_stored == 6_696, report.describe()
    assert report.derived_members == 2_357, report.describe()
    orders = lake.read(settings.lake_dir, ORDERS)
    assert (orders["ordered_at"].dt.hour == 0).all()
    assert orders["member_id"].str.len().eq(5).all(), "master ids keep their leading zeros"
    assert orders["amount"].sum() == pytest.approx(
        pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None)[4].sum()
    ), "merging days keeps every dollar"
    assert lake.dataset_currency(settings.lake_dir) == "USD"


def test_a_line_with_an_overflowing_quantity_is_quarantined_not_fatal(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 7: one quantity of 1e308 aborted the whole file with a DuckDB error."""
    # given the export with an absurd quantity, an infinite price and an overflowing product
    rows = [
        *LINES,
        "489460,1,1e308,2010-12-03 09:00:00,1.00,16321",
        "489461,2,1,2010-12-03 09:00:00,inf,16321",
        "489462,3,1e14,2010-12-03 09:00:00,1e300,16321",
    ]

    # when it is imported
    report = import_orderlines(settings, _lines(tmp_path, rows), RETAIL, currency="GBP")

    # then those three lines are quarantined naming the field, the others stored as before
    reasons = _reasons(report)
    assert reasons["8"] == "Quantity: must be a finite number within ±1e+15 (got '1e308')"
    assert reasons["9"] == "Price: must be a finite number (got 'inf')"
    assert reasons["10"].startswith("Quantity × Price: the line amount overflows"), reasons
    assert (report.lines, report.lines_quarantined) == (10, 5), "2 old rejects + 3 new"
    assert sorted(_orders(settings).index) == ["489434", "489434-return", "489452", "C489449"]
    assert len(reasons) == report.lines_quarantined, "every quarantined line is in the file"


def test_an_order_whose_totals_overflow_is_quarantined_whole(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 7: lines that pass alone but whose order total overflows."""
    # given order 7 whose two lines sum to more than 1e15 items, order 8 to an infinite amount
    rows = [
        LINES[0],
        "7,a,9e14,2010-12-03 09:00:00,1,1",
        "7,b,9e14,2010-12-03 09:01:00,1,1",
        "8,a,1,2010-12-03 09:00:00,1e308,2",
        "8,b,1,2010-12-03 09:01:00,1e308,2",
        "9,a,1,2010-12-03 09:00:00,1,3",
    ]

    # when imported
    report = import_orderlines(settings, _lines(tmp_path, rows), RETAIL, currency="GBP")

    # then every line of those orders is quarantined with the reason, order 9 is stored
    assert _reasons(report) == {
        "1": "Quantity: order '7' totals more than 1e+15 items",
        "2": "Quantity: order '7' totals more than 1e+15 items",
        "3": "Price: order '8' amount overflows",
        "4": "Price: order '8' amount overflows",
    }
    assert list(_orders(settings).index) == ["9"] and report.orders_stored == 1


def test_an_order_id_of_two_customers_is_quarantined_not_dropped(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 7: an order id reused by a second customer dropped that customer's line
    as a "duplicate"; now all lines of the shared id are quarantined with the reason."""
    # given order 500 with lines of customers 1 and 2, and order 501 of customer 1
    rows = [
        LINES[0],
        "500,a,1,2010-12-03 09:00:00,2.00,1",
        "500,b,1,2010-12-03 09:00:00,3.00,2",
        "501,a,1,2010-12-03 09:00:00,4.00,1",
    ]

    # when imported
    report = import_orderlines(settings, _lines(tmp_path, rows), RETAIL, currency="GBP")

    # then both lines of 500 are quarantined, nothing is counted as a duplicate, 501 is stored
    reason = (
        "Invoice: order '500' has lines of several customers (e.g. 1 and 2); an order id must "
        "belong to one customer"
    )
    assert _reasons(report) == {"1": reason, "2": reason}
    assert report.orders.duplicates == 0, "a shared id is not a duplicate"
    assert list(_orders(settings).index) == ["501"]
    assert (report.lines, report.lines_quarantined, report.orders.read) == (3, 2, 1)


def test_an_order_id_stored_for_another_member_is_quarantined(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 7: a later export reusing a stored order id for another customer."""
    # given order 500 stored for customer 1
    first = [LINES[0], "500,a,1,2010-12-03 09:00:00,2.00,1"]
    import_orderlines(settings, _lines(tmp_path, first), RETAIL, currency="GBP")

    # when a second export has 500 for customer 2 and again for customer 1
    second = [LINES[0], "500,a,1,2010-12-04 09:00:00,2.00,2", "500,a,1,2010-12-03 09:00:00,2,1"]
    report = import_orderlines(settings, _lines(tmp_path, second), RETAIL, currency="GBP")

    # then the shared id is quarantined in the export; on its own, customer 2's line would be too
    assert report.lines_quarantined == 2 and report.orders.read == 0
    alone = [LINES[0], "500,a,1,2010-12-04 09:00:00,2.00,2"]
    report = import_orderlines(settings, _lines(tmp_path, alone), RETAIL, currency="GBP")
    assert _reasons(report) == {"1": "Invoice: order '500' is already stored for member '1'"}
    assert _orders(settings).loc["500", "member_id"] == "1", "the stored order is untouched"
    again = import_orderlines(settings, _lines(tmp_path, first), RETAIL, currency="GBP")
    assert (again.lines_quarantined, again.orders.duplicates) == (0, 1), (
        "the same member re-importing its order is still a plain duplicate"
    )


def test_malformed_csv_lines_are_quarantined_with_their_data_row(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 7: one bad line is quarantined instead of aborting the file — a line
    with an extra or a missing field, or bytes that are not UTF-8."""
    # given data rows 2 (extra field), 4 (missing field) and 5 (latin-1) among good ones
    path = tmp_path / "lines.csv"
    rows = [
        LINES[0],
        "600,a,1,2010-12-03 09:00:00,1.00,1",
        "601,a,1,2010-12-03 09:00:00,1.00,1,EXTRA",
        "602,a,1,2010-12-03 09:00:00,1.00,1",
        "603,a,1,2010-12-03 09:00:00,1.00",
        "604,caf\xe9,1,2010-12-03 09:00:00,1.00,1",
        "605,a,1,yesterday,1.00,1",
    ]
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))

    # when imported
    report = import_orderlines(settings, path, RETAIL, currency="GBP")

    # then those lines are quarantined with their data row, later rows keep theirs
    reasons = _reasons(report)
    assert reasons["2"].startswith("line: has more fields than the header (got '601,"), reasons
    assert reasons["4"].startswith("line: has fewer fields than the header (got '603,"), reasons
    assert reasons["5"].startswith("StockCode: is not UTF-8 text; save the export as UTF-8")
    assert reasons["6"] == "InvoiceDate: must be a timestamp (got 'yesterday')", (
        "rows after a malformed line keep their data row number"
    )
    assert (report.lines, report.lines_quarantined) == (6, 4)
    assert sorted(_orders(settings).index) == ["600", "602"]


def test_an_unreadable_parquet_export_is_one_error_naming_the_file(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 7: a truncated Parquet export gave a DuckDB traceback."""
    path = tmp_path / "lines.parquet"
    path.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(ContractError, match=r"lines\.parquet cannot be read as Parquet .*again"):
        import_orderlines(settings, path, RETAIL, currency="GBP")


def _reasons(report: ImportReport) -> dict[str, str]:
    """Quarantined line number -> reason, read from the quarantine file."""
    if report.line_quarantine_file is None:
        return {}
    rejected = pd.read_csv(report.line_quarantine_file, dtype=str, keep_default_na=False)
    return dict(zip(rejected["_row"], rejected["_reason"], strict=True))
