"""Assembly of the four canonical tables (memberscore.contract) from simulator logs.

Ids are strings with a one-letter prefix and a zero-padded number (`m0000001`, `o…`, `e…`,
`c…`); string columns are Arrow-backed so 100M event ids stay compact; timestamps are
`datetime64[us, UTC]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from memberscore.contract import CONTACTS, EVENT_TYPES, EVENTS, MEMBERS, ORDERS
from simulator.behaviour import EventLog
from simulator.calendar import to_timestamps
from simulator.campaigns import ContactLog
from simulator.params import (
    ACQUISITION_CHANNELS,
    ACTIONS,
    CONTACT_CHANNELS,
    GENDER_CODES,
    PURCHASE_CHANNELS,
    REGIONS,
)
from simulator.population import Population
from simulator.purchases import OrderDetails, OrderLog, Returns

STRING = pd.StringDtype("pyarrow")


def ids(prefix: str, first: int, count: int, width: int) -> pa.Array:
    """`count` ids `prefix` + zero-padded numbers first+1 … first+count (numbers 1-based)."""
    numbers = pa.array(np.arange(first + 1, first + count + 1, dtype=np.int64))
    padded = pc.utf8_lpad(pc.cast(numbers, pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, padded, "")


def member_ids(members: int) -> pa.Array:
    """Ids of members 0..members-1: `m0000001` upwards (at least 7 digits)."""
    return ids("m", 0, members, max(7, len(str(members))))


def text_series(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.array(values, dtype=STRING))


def label_series(codes: np.ndarray, names: Sequence[str]) -> pd.Series:
    """Codes into `names` as strings; negative codes are missing."""
    dictionary = pa.array(list(names), type=pa.string())
    safe = pa.array(np.where(codes < 0, 0, codes).astype(np.int32), mask=codes < 0)
    return text_series(pa.DictionaryArray.from_arrays(safe, dictionary).cast(pa.string()))


def members_frame(
    pop: Population, final_rank: np.ndarray, tier_names: Sequence[str], start: date
) -> pd.DataFrame:
    """The members table; `tier` is the tier at the end of the window."""
    n = len(pop.registered)
    birth = pd.array(np.where(pop.birth_year > 0, pop.birth_year, 0), dtype="Int64")
    birth[pop.birth_year <= 0] = pd.NA
    frame = pd.DataFrame(
        {
            "member_id": text_series(member_ids(n)),
            "registered_at": to_timestamps(start, pop.registered),
            "acquisition_channel": label_series(pop.channel, ACQUISITION_CHANNELS),
            "region": label_series(pop.region, REGIONS),
            "gender": label_series(pop.gender, GENDER_CODES),
            "birth_year": birth,
            "tier": label_series(final_rank, tier_names),
            "consent_marketing": pop.consent_marketing.astype(bool),
            "consent_personalization": pop.consent_personalization.astype(bool),
            "is_derived": np.zeros(n, dtype=bool),
        }
    )
    return frame[MEMBERS.names]


def coupon_ids(action: np.ndarray, wave: np.ndarray) -> pd.Series:
    """`<action>-w<wave>` for coupon orders (e.g. `winback_coupon-w012`), missing otherwise."""
    codes = np.where(action >= 0, action.astype(np.int64) * 10_000 + wave, -1)
    unique, inverse = np.unique(codes, return_inverse=True)
    names = [f"{ACTIONS[c // 10_000]}-w{c % 10_000:03d}" if c >= 0 else "" for c in unique]
    return label_series(np.where(codes >= 0, inverse, -1), names)


def orders_frame(
    orders: OrderLog,
    details: OrderDetails,
    returns: Returns,
    members: pa.Array,
    start: date,
) -> pd.DataFrame:
    """Orders and refund rows (`is_return`, positive refunded `amount`), sorted by time."""
    n, r = len(orders), len(returns.order)
    member = np.r_[orders.member, orders.member[returns.order]]
    time = np.r_[orders.time, returns.time]
    action = np.r_[orders.action, np.full(r, -1, dtype=orders.action.dtype)]
    wave = np.r_[orders.wave, np.full(r, -1, dtype=orders.wave.dtype)]
    frame = pd.DataFrame(
        {
            "member_id": text_series(members.take(pa.array(member))),
            "ordered_at": to_timestamps(start, time),
            "amount": np.r_[details.amount, returns.amount],
            "discount": np.r_[details.discount, np.zeros(r)],
            "items": pd.array(np.r_[details.items, returns.items], dtype="Int64"),
            "channel": label_series(
                np.r_[details.channel, details.channel[returns.order]], PURCHASE_CHANNELS
            ),
            "coupon_id": coupon_ids(action, wave),
            "is_return": np.r_[np.zeros(n, bool), np.ones(r, bool)],
        }
    )
    frame = frame.iloc[np.argsort(time, kind="stable")].reset_index(drop=True)
    frame.insert(0, "order_id", text_series(ids("o", 0, len(frame), max(9, len(str(len(frame)))))))
    return frame[ORDERS.names]


def events_frame(log: EventLog, members: pa.Array, first_id: int, start: date) -> pd.DataFrame:
    """Event rows numbered from `first_id` + 1 (ids `e` + 10 digits) in the log's order."""
    return pd.DataFrame(
        {
            "event_id": text_series(ids("e", first_id, len(log), 10)),
            "member_id": text_series(members.take(pa.array(log.member))),
            "occurred_at": to_timestamps(start, log.time),
            "event_type": label_series(log.kind.astype(np.int64), EVENT_TYPES),
            "value": log.value,
        }
    )[EVENTS.names]


def contacts_frame(
    contacts: ContactLog,
    responded: np.ndarray,
    response_value: np.ndarray,
    members: pa.Array,
    start: date,
) -> pd.DataFrame:
    """Contact rows in send order; `responded` is the response day (inf = none), both groups."""
    value = np.where(np.isfinite(responded), response_value, np.nan)
    return pd.DataFrame(
        {
            "contact_id": text_series(contact_ids(len(contacts))),
            "member_id": text_series(members.take(pa.array(contacts.member))),
            "sent_at": to_timestamps(start, contacts.day),
            "action_id": label_series(contacts.action, ACTIONS),
            "channel": label_series(contacts.channel, CONTACT_CHANNELS),
            "group": label_series(np.where(contacts.treated, 0, 1), ("treatment", "control")),
            "responded_at": to_timestamps(start, responded),
            "response_value": value,
        }
    )[CONTACTS.names]


def contact_ids(count: int) -> pa.Array:
    """Ids of contacts in send order: `c` + at least 9 digits."""
    return ids("c", 0, count, max(9, len(str(count))))
