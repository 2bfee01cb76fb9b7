"""Consent changes through ingest (issue 17): a consent-change file lands in the lake, where
snapshots read it point in time, and in the consent register, which the next decision reads
without waiting for a snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue, load_catalogue
from decisions.guardrails import (
    NO_CHANNEL,
    NO_PERSONALIZATION,
    OK,
    ContactHistory,
    effective_consent,
    guardrail_blocks,
)
from memberscore import lake
from memberscore.contract import CONSENTS
from memberscore.decision_settings import GuardrailPolicy
from memberscore.settings import Settings
from pipelines.ingest.tables import ingest
from serving.online.consent import ConsentChange, open_consent_register

MEMBERS = """member_id,registered_at,acquisition_channel,region,tier,\
consent_marketing,consent_personalization
m1,2024-01-05T10:00:00Z,web,north,basic,true,true
m2,2024-01-06T10:00:00Z,app,south,basic,true,true
m3,2024-01-07T10:00:00Z,app,south,basic,true,true
"""
ORDERS = """order_id,member_id,ordered_at,amount,discount,items,channel,is_return
o1,m1,2024-02-01T10:00:00Z,30,0,1,online,false
o2,m2,2024-02-02T10:00:00Z,40,0,1,store,false
o3,m3,2024-02-03T10:00:00Z,50,0,1,app,false
"""
# m1 turns personalisation off and refuses SMS in May; m2 withdraws marketing in July, after
# the June cutoff; m3 changes twice, the later change wins.
CHANGES = """member_id,changed_at,consent_marketing,consent_personalization,opted_out_sms
m1,2024-05-10T09:00:00+02:00,true,false,true
m2,2024-07-01T00:00:00Z,false,true,
m3,2024-03-01T00:00:00Z,false,false,
m3,2024-04-01T00:00:00Z,true,true,
"""


NOBODY_HELD_OUT = GuardrailPolicy(control_share=0.0)


def _no_history(catalogue: Catalogue) -> ContactHistory:
    """One member never contacted."""
    k = len(catalogue.ids)
    return ContactHistory(np.full((1, k), np.inf), np.zeros((1, k), int), np.zeros(1, int))


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def lake_with_changes(settings: Settings, tmp_path: Path) -> Settings:
    """Given members and orders in the lake, then a consent-change file ingested."""
    for table, text in (("members", MEMBERS), ("orders", ORDERS)):
        ingest(settings, table, _write(tmp_path, f"{table}.csv", text), currency="USD")
    report = ingest(settings, "consents", _write(tmp_path, "c.csv", CHANGES), currency="USD")
    assert (report.stored, report.quarantined) == (4, 0), report.describe()
    return settings


def test_ingested_change_reaches_the_register_and_the_next_decision(
    lake_with_changes: Settings,
) -> None:
    """Issue 17: after ingest, the register holds each member's latest change (source
    'ingest') and a decision over the old snapshot's flags honours it (before: a changed
    consent in a members file was skipped as a duplicate, and nothing reached decisions)."""
    register = open_consent_register(lake_with_changes)
    entries = register.entries().set_index("member_id")

    assert set(entries.index) == {"m1", "m2", "m3"}, entries
    assert set(entries["source"]) == {"ingest"}
    assert entries.loc["m3", "consent_marketing"], "the later of m3's two changes wins"
    assert entries.loc["m1", "channels_opted_out"] == "sms"

    # The snapshot still says m1 consents to everything; the decision sees the register's.
    snapshot = pd.DataFrame(
        {"consent_marketing": [True], "consent_personalization": [True]},
        index=pd.Index(["m1"]),
    )
    catalogue = load_catalogue()
    features = effective_consent(snapshot, register.entries(["m1"]))
    blocks = guardrail_blocks(features, catalogue, _no_history(catalogue), NOBODY_HELD_OUT)
    personal = catalogue.ids.index("onboarding_recs")
    generic = catalogue.ids.index("double_points")
    assert blocks[0, personal] == NO_PERSONALIZATION, "personalised action after the opt-out"
    assert blocks[0, generic] == OK, "generic actions stay allowed"
    register.close()


def test_reingest_stores_nothing_twice_and_an_api_change_that_is_later_stays(
    lake_with_changes: Settings, tmp_path: Path
) -> None:
    """Issue 17: the same file again is all duplicates; an ingest never overrides a later
    change made through the API."""
    register = open_consent_register(lake_with_changes)
    later = datetime(2024, 8, 1, tzinfo=UTC)
    register.record(ConsentChange("m1", True, True, later, "api"))

    again = ingest(
        lake_with_changes, "consents", _write(tmp_path, "c.csv", CHANGES), currency="USD"
    )

    assert (again.stored, again.duplicates) == (0, 4), again.describe()
    assert len(lake.read(lake_with_changes.lake_dir, CONSENTS)) == 4
    m1 = register.get("m1")
    assert m1 is not None and m1.source == "api" and m1.consent_personalization, m1
    register.close()


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        # m1 opted out on May 10: not yet at the May cutoff, from the June cutoff on.
        ("2024-05-01", {"m1": (True, True), "m2": (True, True), "m3": (True, True)}),
        ("2024-06-01", {"m1": (True, False), "m2": (True, True), "m3": (True, True)}),
        ("2024-08-01", {"m1": (True, False), "m2": (False, True), "m3": (True, True)}),
        ("2024-03-15", {"m1": (True, True), "m2": (True, True), "m3": (False, False)}),
    ],
)
def test_snapshot_profile_takes_the_latest_change_at_or_before_its_cutoff(
    lake_with_changes: Settings, cutoff: str, expected: dict[str, tuple[bool, bool]]
) -> None:
    """Issue 17: the profile features of a snapshot carry the consent changes point in time:
    a change after the cutoff does not leak into it (before: always the members row)."""
    from features.build import open_lake
    from features.families.profile import compute_profile

    con = open_lake(lake_with_changes)
    profile = compute_profile(
        con, pd.Timestamp(cutoff, tz="UTC"), tier_thresholds=lake_with_changes.tier_thresholds
    ).set_index("member_id")

    got = {
        m: (bool(r.consent_marketing), bool(r.consent_personalization))
        for m, r in profile.iterrows()
    }
    assert got == expected, f"consent flags at {cutoff}"


def test_bad_consent_rows_are_quarantined_naming_the_field(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 17: a change without a zone or with an unreadable flag is quarantined."""
    bad = (
        "member_id,changed_at,consent_marketing,consent_personalization\n"
        "m1,2024-05-10T09:00:00,true,false\n"
        "m2,2024-05-10T09:00:00Z,maybe,false\n"
    )
    report = ingest(settings, "consents", _write(tmp_path, "bad.csv", bad), currency="USD")

    assert (report.stored, report.quarantined) == (0, 2), report.describe()
    text = " ".join(report.rejected_examples)
    assert "changed_at" in text and "consent_marketing" in text, text


def test_no_channel_left_blocks_the_action() -> None:
    """Issue 17: a member who refused every channel of an action never gets it."""
    catalogue = load_catalogue()
    features = pd.DataFrame(
        {
            "consent_marketing": [True],
            "consent_personalization": [True],
            "channels_opted_out": ["email,app,push"],
        },
        index=pd.Index(["m1"]),
    )
    blocks = guardrail_blocks(features, catalogue, _no_history(catalogue), NOBODY_HELD_OUT)

    assert blocks[0, catalogue.ids.index("double_points")] == NO_CHANNEL


def test_a_members_file_with_changed_consent_says_to_ingest_consents(
    lake_with_changes: Settings, tmp_path: Path
) -> None:
    """Issue 17: a members file ingested again with a changed consent stores nothing (the
    key is member_id) and, instead of dropping the change silently, says how to send it."""
    changed = MEMBERS.replace(
        "m1,2024-01-05T10:00:00Z,web,north,basic,true,true",
        "m1,2024-01-05T10:00:00Z,web,north,basic,false,false",
    )
    report = ingest(
        lake_with_changes, "members", _write(tmp_path, "m2.csv", changed), currency="USD"
    )

    assert (report.stored, report.duplicates) == (0, 3), report.describe()
    assert "memberscore ingest consents" in report.describe()


def test_erase_removes_the_members_consent_changes_from_the_lake(
    lake_with_changes: Settings,
) -> None:
    """Issue 17: the consent-change table of the lake holds member ids too; erase rewrote
    only the canonical tables and left m1's changes there."""
    from pipelines.erase import erase

    # When m1 is erased
    report = erase(lake_with_changes, ["m1"])

    # Then no consent change of m1 is left, the others are, and the report counts it
    changes = lake.read(lake_with_changes.lake_dir, CONSENTS)
    assert "m1" not in set(changes["member_id"]), "m1's consent changes stay in the lake"
    assert sorted(changes["member_id"]) == ["m2", "m3", "m3"]
    assert "lake consents" in report.describe(), report.describe()
