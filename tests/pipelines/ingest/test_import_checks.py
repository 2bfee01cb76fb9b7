"""Importer output takes the ingest checks: control characters and implausible dates are
quarantined on the shared validation path, whatever the importer."""

from __future__ import annotations

from pathlib import Path

from memberscore import lake
from memberscore.contract import MEMBERS, ORDERS
from memberscore.settings import Settings
from pipelines.ingest.importers import LineMapping, import_orderlines

MAPPING = LineMapping(order="Invoice", member="Customer", time="When", quantity="Qty", price="P")


def test_imported_orders_with_a_nul_or_an_implausible_date_are_quarantined(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 14 finding 6: the same rules apply to every importer's output."""
    # given an export with a good line, a customer id holding a NUL, and a line dated 2100
    path = tmp_path / "lines.csv"
    path.write_bytes(
        b"Invoice,Customer,When,Qty,P\n"
        b"1,c1,2024-05-01 10:00,1,2\n"
        b"2,c1\x00x,2024-05-01 10:00,1,2\n"
        b"3,c3,2100-01-01 10:00,1,2\n"
    )

    # when it is imported
    report = import_orderlines(settings, path, MAPPING, currency="USD")

    # then only the good order and its member are stored; the others are quarantined with reasons
    assert (report.orders.stored, report.orders.quarantined) == (1, 2), report.describe()
    reasons = " | ".join(report.orders.rejected_examples)
    assert "member_id: contains control character U+0000" in reasons, reasons
    assert "ordered_at: implausible date" in reasons, reasons
    assert lake.read(settings.lake_dir, ORDERS)["member_id"].tolist() == ["c1"]
    assert lake.read(settings.lake_dir, MEMBERS)["member_id"].tolist() == ["c1"], (
        "no member is derived from a NUL-bearing id or a purchase in 2100"
    )
