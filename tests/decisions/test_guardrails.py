"""Guardrails: consent, personalization opt-out, cooldowns, caps and the control group."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime

import pandas as pd
import pytest

from decisions.catalogue import Catalogue
from decisions.guardrails import (
    ACTION_CAP,
    CONTROL,
    COOLDOWN,
    NO_MARKETING,
    NO_PERSONALIZATION,
    OK,
    TOTAL_CAP,
    contact_history,
    control_group,
    guardrail_blocks,
)
from memberscore.decision_settings import GuardrailPolicy

NOW = pd.Timestamp("2025-06-01", tz="UTC")
NO_CONTROL = GuardrailPolicy(control_share=0.0)


def members(**consents: tuple[bool, bool]) -> pd.DataFrame:
    """Members named by keyword with (marketing, personalization) consent."""
    return pd.DataFrame(
        [{"consent_marketing": m, "consent_personalization": p} for m, p in consents.values()],
        index=pd.Index(list(consents), name="member_id"),
    )


def contacts(*rows: tuple[str, str, int, str]) -> pd.DataFrame:
    """(member, action, days before NOW, group) rows of a contact log."""
    return pd.DataFrame(
        [
            {"member_id": m, "action_id": a, "sent_at": NOW - pd.Timedelta(days=d), "group": g}
            for m, a, d, g in rows
        ],
        columns=["member_id", "action_id", "sent_at", "group"],
    )


def blocks(
    catalogue: Catalogue,
    frame: pd.DataFrame,
    log: pd.DataFrame,
    policy: GuardrailPolicy = NO_CONTROL,
) -> pd.DataFrame:
    history = contact_history(log, frame.index, catalogue, NOW, policy)
    codes = guardrail_blocks(frame, catalogue, history, policy)
    return pd.DataFrame(codes, index=frame.index, columns=catalogue.ids)


def test_no_marketing_consent_blocks_every_action_but_no_action(catalogue: Catalogue) -> None:
    codes = blocks(catalogue, members(ann=(False, True)), contacts())

    assert codes.loc["ann", "coupon"] == NO_MARKETING
    assert codes.loc["ann", "reminder"] == NO_MARKETING
    assert codes.loc["ann", "no_action"] == OK


def test_personalization_opt_out_blocks_only_personalised_actions(catalogue: Catalogue) -> None:
    codes = blocks(catalogue, members(bob=(True, False)), contacts())

    assert codes.loc["bob", "reminder"] == NO_PERSONALIZATION
    assert codes.loc["bob", "coupon"] == OK


def test_missing_consent_counts_as_no_consent(catalogue: Catalogue) -> None:
    frame = members(cat=(True, True)).astype("boolean")
    frame.loc["cat", "consent_marketing"] = pd.NA

    assert blocks(catalogue, frame, contacts()).loc["cat", "coupon"] == NO_MARKETING


def test_cooldown_is_respected_and_ends(catalogue: Catalogue) -> None:
    frame = members(dan=(True, True), eve=(True, True))
    log = contacts(("dan", "coupon", 13, "treatment"), ("eve", "coupon", 14, "treatment"))

    codes = blocks(catalogue, frame, log)

    assert codes.loc["dan", "coupon"] == COOLDOWN, "13 days into a 14-day cooldown"
    assert codes.loc["eve", "coupon"] == OK, "the cooldown is over after 14 days"
    assert codes.loc["dan", "reminder"] == OK, "cooldowns are per action"


def test_held_out_contacts_and_future_contacts_do_not_count(catalogue: Catalogue) -> None:
    log = contacts(("fay", "coupon", 2, "control"), ("fay", "coupon", -1, "treatment"))

    assert blocks(catalogue, members(fay=(True, True)), log).loc["fay", "coupon"] == OK


def test_action_cap_is_respected(catalogue: Catalogue) -> None:
    log = contacts(("gus", "coupon", 20, "treatment"), ("gus", "coupon", 50, "treatment"))

    codes = blocks(catalogue, members(gus=(True, True), hal=(True, True)), log)

    assert codes.loc["gus", "coupon"] == ACTION_CAP, "2 coupons in 60 days is the cap"
    assert codes.loc["hal", "coupon"] == OK


def test_cap_across_actions_is_respected(catalogue: Catalogue) -> None:
    policy = GuardrailPolicy(control_share=0.0, max_contacts=2, max_contacts_days=30)
    log = contacts(("ida", "reminder", 10, "treatment"), ("ida", "other", 20, "treatment"))

    codes = blocks(catalogue, members(ida=(True, True)), log, policy)

    assert codes.loc["ida", "coupon"] == TOTAL_CAP, "actions outside the catalogue count too"


def test_control_group_gets_nothing(catalogue: Catalogue) -> None:
    ids = [f"m{i:05d}" for i in range(2000)]
    frame = members(**{m: (True, True) for m in ids})
    policy = GuardrailPolicy(control_share=0.1)

    codes = blocks(catalogue, frame, contacts(), policy)

    held = control_group(ids, 0.1, policy.control_salt)
    assert 0.08 < held.mean() < 0.12, "about the configured share is held out"
    assert (codes.loc[held, ["coupon", "reminder"]] == CONTROL).all().all()
    assert (codes.loc[held, "no_action"] == OK).all()


def test_control_group_is_stable_across_processes_and_orders() -> None:
    ids = [f"m{i:05d}" for i in range(500)]
    here = control_group(ids, 0.2, "salt")
    code = (
        "from decisions.guardrails import control_group;"
        f"print(''.join('1' if h else '0' for h in control_group({ids!r}, 0.2, 'salt')))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert other == "".join("1" if h else "0" for h in here), "another process agrees"
    assert (control_group(ids[::-1], 0.2, "salt")[::-1] == here).all(), "order-independent"
    assert not (control_group(ids, 0.2, "pepper") == here).all(), "a new salt draws anew"
    assert control_group(ids, 0.3, "salt")[here].all(), "a larger share keeps everyone held out"


def test_unreadable_send_times_are_skipped_with_a_warning(
    catalogue: Catalogue, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 finding 3: a contact log with sends in years 5138 and 1 (outside what pandas
    holds), a garbled time and a zone-less one gives a history, not an OutOfBoundsDatetime:
    the unreadable rows never count, the zone-less one counts as UTC."""
    log = pd.DataFrame(
        {
            "member_id": ["jon", "jon", "jon", "kim"],
            "action_id": ["coupon", "coupon", "reminder", "coupon"],
            "sent_at": [
                datetime(5138, 11, 16, tzinfo=UTC),
                datetime(1, 1, 1),
                "not a time",
                (NOW - pd.Timedelta(days=3)).to_pydatetime().replace(tzinfo=None),
            ],
            "group": "treatment",
        }
    )
    frame = members(jon=(True, True), kim=(True, True))

    with caplog.at_level(logging.WARNING, logger="memberscore.decisions"):
        codes = blocks(catalogue, frame, log)

    assert codes.loc["jon", "coupon"] == OK, "unreadable sends are no cooldown"
    assert codes.loc["jon", "reminder"] == OK
    assert codes.loc["kim", "coupon"] == COOLDOWN, "a zone-less send 3 days ago is read as UTC"
    assert "3 contact(s) with a sent_at that cannot be read" in caplog.text, caplog.text
