"""Batch scoring and campaign lists honour consent changed through the register (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from decisions.catalogue import load_catalogue
from features.store import snapshot_path
from memberscore.settings import Settings
from pipelines import campaign
from pipelines.batch import job as batch
from pipelines.batch import manifest as mf
from serving.online.consent import ConsentChange, open_consent_register
from tests.serving import conftest as serving_world
from tests.serving.conftest import CUTOFF, FakeSource, FakeSpendModel

member_rows, snapshot = serving_world.member_rows, serving_world.snapshot
PERSONAL = {a.id for a in load_catalogue().actions if "personalization" in a.requires_consent}
CHANGED_AT = datetime(2026, 6, 2, 9, tzinfo=UTC)  # after the snapshot's cutoff


def _run(settings: Settings, out: Path) -> pd.DataFrame:
    bundle = FakeSource(clv=FakeSpendModel()).load()
    batch.run(settings, CUTOFF, out, bundle=bundle, progress=False, report=False)
    return mf.read_scores(out).set_index("member_id")


@pytest.fixture
def before(settings: Settings, snapshot: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """Given the serving test members' snapshot and a batch run over it (no change yet)."""
    path = snapshot_path(settings, CUTOFF)
    path.parent.mkdir(parents=True)
    snapshot.to_parquet(path, index=False)
    return _run(settings, tmp_path / "before")


def _personalised_by_email(scores: pd.DataFrame) -> list[str]:
    chosen = scores["action_id"].isin(PERSONAL) & (scores["channel"] == "email")
    members = sorted(scores.index[chosen.to_numpy()])
    assert len(members) >= 2, f"precondition: personalised email actions in {scores['action_id']}"
    return members


def _opt_out(settings: Settings, members: list[str], **flags: bool) -> None:
    """The members turn personalisation off (or what `flags` say) and refuse email."""
    register = open_consent_register(settings)
    for member_id in members:
        change = {"consent_marketing": True, "consent_personalization": False} | flags
        register.record(
            ConsentChange(
                member_id,
                changed_at=CHANGED_AT,
                source="api",
                channels_opted_out=("email",),
                **change,
            )
        )
    register.close()


def test_batch_output_honours_an_opt_out_without_a_new_snapshot(
    settings: Settings, before: pd.DataFrame, tmp_path: Path
) -> None:
    """Issue 17: a batch run after an opt-out (same snapshot) gives those members no
    personalised action and nothing by email; other members keep their decision (before:
    the snapshot's consent decided)."""
    members = _personalised_by_email(before)
    _opt_out(settings, members)

    after = _run(settings, tmp_path / "after")

    changed = after.loc[members]
    assert not changed["action_id"].isin(PERSONAL).any(), changed[["action_id", "channel"]]
    assert not (changed["channel"] == "email").any(), changed[["action_id", "channel"]]
    others = after.index.difference(members)
    pd.testing.assert_frame_equal(
        after.loc[others, ["action_id", "channel"]], before.loc[others, ["action_id", "channel"]]
    )


def test_campaign_list_built_after_an_opt_out_leaves_it_out(
    settings: Settings, before: pd.DataFrame, tmp_path: Path
) -> None:
    """Issue 17: lists built from a run made before the opt-out still honour it: the member
    is on no personalised list and never on email; a member who withdrew marketing is on no
    list at all (before: the run's old decision went out)."""
    out = tmp_path / "before"
    members = _personalised_by_email(before)
    personal, withdrawn = members[:-1], members[-1]
    _opt_out(settings, personal)
    _opt_out(settings, [withdrawn], consent_marketing=False)

    campaign.build(settings, out, control_share=0.0)

    lists = pd.concat(
        [pd.read_csv(f) for f in sorted((out / campaign.FOLDER).glob("*.csv"))], ignore_index=True
    ).set_index("member_id")
    assert withdrawn not in lists.index, "marketing withdrawn: on no list"
    listed = lists.loc[lists.index.intersection(personal)]
    assert not listed["action"].isin(PERSONAL).any(), listed
    assert not (listed["channel"] == "email").any(), listed
    untouched = before.index.difference(members)
    kept = before.loc[untouched]
    sendable = kept[(kept["action_id"] != "no_action") & ~kept["control_group"]]
    assert set(sendable.index) <= set(lists.index), "members without a change stay listed"
