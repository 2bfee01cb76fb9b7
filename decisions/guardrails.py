"""Guardrails: consent, cooldowns, contact caps and the persistent random control group.

Consent is the effective one: a snapshot's flags, overridden by the consent register's entry of
a member who changed consent since (`effective_consent`), so an opt-out is honoured by the next
decision. A member may also opt out of single channels (`channels_opted_out`, comma-separated):
an action goes out on the first of its channels the member has not refused (`action_channels`),
and is blocked when none is left.

Each (member, action) pair gets a block code (`OK` when the action may be sent). Codes are
small integers so a batch of a million members stays a compact array; `BLOCK_TEXT` turns them
into words. Contact counts come from the contact log passed in: only contacts actually sent
(group "treatment") before `now` count. A contact whose send time cannot be read (a stored row
out of range or garbled) never counts and never stops a decision: it is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from decisions.catalogue import NO_ACTION, Catalogue
from memberscore.decision_settings import GuardrailPolicy

OK, CONTROL, NO_MARKETING, NO_PERSONALIZATION, COOLDOWN, ACTION_CAP, TOTAL_CAP = range(7)
NOT_IN_STAGE, CONDITION, NO_CHANNEL = 7, 8, 9
LOG = logging.getLogger("memberscore.decisions")
BLOCK_TEXT = {
    OK: "allowed",
    CONTROL: "member is in the persistent control group",
    NO_MARKETING: "no marketing consent",
    NO_PERSONALIZATION: "opted out of personalization",
    COOLDOWN: "in cooldown",
    ACTION_CAP: "contact cap of this action reached",
    TOTAL_CAP: "contact cap across all actions reached",
    NOT_IN_STAGE: "not meant for this stage",
    CONDITION: "eligibility condition not met",
    NO_CHANNEL: "opted out of every channel of this action",
}
CONSENT_COLUMNS = {"marketing": "consent_marketing", "personalization": "consent_personalization"}
OPTED_OUT = "channels_opted_out"
# A consent register's entries as decisions read them (`serving.online.consent`): changed_at is
# UTC, channels_opted_out comma-separated channel names ("" for none).
REGISTER_COLUMNS = ("member_id", *CONSENT_COLUMNS.values(), OPTED_OUT, "changed_at")


def channel_text(channels: Iterable[str]) -> str:
    """Channels as the register stores them: sorted, comma-separated, "" for none."""
    return ",".join(sorted(set(channels)))


def channel_list(text: object) -> tuple[str, ...]:
    """The channels of a stored `channels_opted_out` text (None or "" for none)."""
    if not isinstance(text, str) or not text:
        return ()
    return tuple(c for c in text.split(",") if c)


def effective_consent(features: pd.DataFrame, register: pd.DataFrame | None) -> pd.DataFrame:
    """`features` (indexed by member id) with the consent flags and `channels_opted_out` of the
    members in `register` (REGISTER_COLUMNS) replaced by the register's.

    The register holds each member's latest change, from the API and from ingest alike, and
    ingest writes every change to the lake (which snapshots read) and to the register: so a
    register entry is never older than the consent a snapshot knows and always wins. Members
    without an entry keep their snapshot's flags and no channel opt-out.
    """
    out = features.copy()
    for column in CONSENT_COLUMNS.values():
        if column not in out.columns:
            out[column] = pd.array([pd.NA] * len(out), dtype="boolean")
    if OPTED_OUT not in out.columns:
        out[OPTED_OUT] = ""
    if register is None or register.empty:
        return out
    entries = register.drop_duplicates("member_id", keep="last").set_index("member_id")
    rows = out.index.get_indexer(pd.Index(entries.index.astype(str)))
    found = rows >= 0
    if not found.any():
        return out
    at, entries = rows[found], entries.iloc[np.flatnonzero(found)]
    for column in (*CONSENT_COLUMNS.values(), OPTED_OUT):
        values = out[column].to_numpy(dtype=object).copy()
        entered = entries[column].to_numpy(dtype=object)
        if column == OPTED_OUT:  # no entry text: no channel refused
            values[at] = np.where(pd.isna(entered), "", entered)
            out[column] = values
        else:  # a missing flag stays missing, which counts as no consent
            values[at] = entered
            out[column] = pd.array(values, dtype="boolean")
    return out


def action_channels(features: pd.DataFrame, catalogue: Catalogue) -> np.ndarray:
    """Per member (rows) and catalogue action (columns): the first of the action's channels
    the member has not opted out of (`channels_opted_out`), None when none is left or the
    action has no channel (no_action)."""
    if OPTED_OUT in features.columns:
        text = features[OPTED_OUT].to_numpy(dtype=object)
    else:
        text = np.full(len(features), "", dtype=object)
    # One row of channels per distinct opt-out text; missing text (code -1) is the last, "".
    codes, texts = pd.factorize(text)
    table = np.full((len(texts) + 1, len(catalogue.actions)), None, dtype=object)
    for row, opted_out in enumerate([*texts, ""]):
        refused = set(channel_list(opted_out))
        for j, action in enumerate(catalogue.actions):
            table[row, j] = next((c for c in action.channels if c not in refused), None)
    return table[codes]


def control_group(member_ids: Iterable[str], share: float, salt: str) -> np.ndarray:
    """True for members held out: blake2b(salt, member id) read as a uniform number < share.

    Deterministic across runs, processes and machines (unlike Python's salted `hash`), and
    independent of every other member, so adding members never moves existing ones.
    """
    draws = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(f"{salt}\x1f{m}".encode(), digest_size=8).digest())
            for m in member_ids
        ),
        dtype=np.uint64,
    )
    threshold = min(int(share * 2**64), 2**64 - 1)
    return draws < np.uint64(threshold)


@dataclass(frozen=True)
class ContactHistory:
    """What the contact log says about each member (rows) and catalogue action (columns).

    `days_since` is the age of the last contact with that action in days (inf: never);
    `in_cap_window` counts contacts with that action inside the action's cap period;
    `total_recent` counts contacts with any action inside the policy's window.
    """

    days_since: np.ndarray
    in_cap_window: np.ndarray
    total_recent: np.ndarray


def contact_history(
    contacts: pd.DataFrame,
    member_ids: pd.Index,
    catalogue: Catalogue,
    now: pd.Timestamp,
    policy: GuardrailPolicy,
) -> ContactHistory:
    """Summarise `contacts` (member_id, action_id, sent_at, group) for `member_ids` as of `now`."""
    missing = {"member_id", "action_id", "sent_at", "group"} - set(contacts.columns)
    if missing:
        raise ValueError(f"contact log lacks column(s) {', '.join(sorted(missing))}")
    age = (now - sent_times(contacts["sent_at"])).total_seconds().to_numpy() / 86_400.0
    counted = (contacts["group"] == "treatment").to_numpy() & (age > 0)  # NaN: never sent
    rows = member_ids.get_indexer(pd.Index(contacts["member_id"].to_numpy()[counted]))
    cols = pd.Index(catalogue.ids).get_indexer(pd.Index(contacts["action_id"].to_numpy()[counted]))
    age = age[counted]
    n, k = len(member_ids), len(catalogue.ids)
    days_since = np.full((n, k), np.inf)
    in_window = np.zeros((n, k), dtype=np.int32)
    total = np.zeros(n, dtype=np.int32)
    known = rows >= 0
    np.add.at(total, rows[known & (age < policy.max_contacts_days)], 1)
    known &= cols >= 0
    np.minimum.at(days_since, (rows[known], cols[known]), age[known])
    periods = np.array([a.cap.period_days if a.cap else 0 for a in catalogue.actions])
    inside = known & (age < periods[np.where(cols >= 0, cols, 0)])
    np.add.at(in_window, (rows[inside], cols[inside]), 1)
    return ContactHistory(days_since=days_since, in_cap_window=in_window, total_recent=total)


def sent_times(values: pd.Series) -> pd.DatetimeIndex:
    """Send times in UTC (zone-less ones read as UTC); NaT, so never counted, where a time
    cannot be read or held (outside 1677-2262), with one warning per call."""
    try:  # the fast path: a clean column (datetimes, or text in one format)
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        moments = pd.DatetimeIndex(
            pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        )
    unreadable = int((moments.isna() & values.notna().to_numpy()).sum())
    if unreadable:
        LOG.warning(
            "contact history: %d contact(s) with a sent_at that cannot be read or lies outside "
            "1677-2262 skipped; correct them in the contact log",
            unreadable,
        )
    return moments


def guardrail_blocks(
    features: pd.DataFrame,
    catalogue: Catalogue,
    history: ContactHistory,
    policy: GuardrailPolicy,
    channels: np.ndarray | None = None,
) -> np.ndarray:
    """Block code per member (rows of `features`, indexed by member id) and catalogue action.

    The first failing check wins, in this order: control group, marketing consent,
    personalization consent, every channel opted out, cooldown, the action's cap, the cap
    across actions. A missing consent flag counts as no consent. no_action is never blocked.
    `channels` reuses `action_channels` of the same rows when the caller already has them.
    """
    n = len(features)
    if channels is None:
        channels = action_channels(features, catalogue)
    consent = {kind: _flag(features, column) for kind, column in CONSENT_COLUMNS.items()}
    held_out = control_group(features.index, policy.control_share, policy.control_salt)
    over_total = history.total_recent >= policy.max_contacts
    codes = np.zeros((n, len(catalogue.ids)), dtype=np.uint8)
    for j, action in enumerate(catalogue.actions):
        if action.id == NO_ACTION:
            continue
        cap = action.cap.count if action.cap else np.iinfo(np.int32).max
        checks = [
            (CONTROL, held_out),
            (
                NO_MARKETING,
                ~consent["marketing"] if "marketing" in action.requires_consent else None,
            ),
            (
                NO_PERSONALIZATION,
                ~consent["personalization"]
                if "personalization" in action.requires_consent
                else None,
            ),
            (NO_CHANNEL, (channels[:, j] == None) if action.channels else None),  # noqa: E711
            (COOLDOWN, history.days_since[:, j] < action.cooldown_days),
            (ACTION_CAP, history.in_cap_window[:, j] >= cap),
            (TOTAL_CAP, over_total),
        ]
        for code, failed in reversed(checks):  # reversed: the earliest check overwrites last
            if failed is not None:
                codes[failed, j] = code
    return codes


def _flag(features: pd.DataFrame, column: str) -> np.ndarray:
    if column not in features.columns:
        raise ValueError(f"guardrails need the consent column {column!r} in the features frame")
    values = features[column]
    if values.dtype == bool:  # the common case, without a nullable copy
        return values.to_numpy()
    return values.astype("boolean").fillna(False).to_numpy(dtype=bool)


def recheck_consent(
    chosen: pd.DataFrame, register: pd.DataFrame | None, catalogue: Catalogue
) -> pd.DataFrame:
    """Chosen actions (rows with member_id, action_id, channel, e.g. a batch run's output made
    before a member changed consent) under the register's entries (REGISTER_COLUMNS): the
    channel re-picked as the first of the action's channels not opted out, and rows dropped
    whose action needs a consent now withdrawn or has no channel left. Index kept."""
    if register is None or register.empty or chosen.empty:
        return chosen
    entries = register.drop_duplicates("member_id", keep="last").set_index("member_id")
    members = chosen["member_id"].astype(str)
    changed = members.isin(entries.index).to_numpy()
    if not changed.any():
        return chosen
    keep = np.ones(len(chosen), dtype=bool)
    channel = chosen["channel"].astype(object).to_numpy().copy()
    for i in np.flatnonzero(changed):
        entry = entries.loc[members.iloc[i]]
        action = catalogue.action(str(chosen["action_id"].iloc[i]))
        given = {kind for kind, column in CONSENT_COLUMNS.items() if bool(entry[column])}
        refused = set(channel_list(entry[OPTED_OUT]))
        allowed = [c for c in action.channels if c not in refused]
        if action.id == NO_ACTION:
            continue
        if not set(action.requires_consent) <= given or not allowed:
            keep[i] = False
        else:
            channel[i] = allowed[0]
    return chosen.assign(channel=channel)[keep]
