"""Campaign lists and their measurement, pure: no file or web I/O.

`select_members` takes each member's chosen action (from the engine, so eligibility, consent,
cooldowns and per-member contact caps are already honoured), applies per-action list caps and
the offer budget greedily by expected value per unit cost, and `hold_out` marks a random control
group per action. `measure_lift` compares contacted members with their action's control group.
Money is in the catalogue currency; expected value is per contact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from decisions.guardrails import control_group

TREATMENT, CONTROL = "treatment", "control"
CANDIDATE_COLUMNS = ("member_id", "action_id", "expected_value", "unit_cost")


def select_members(
    candidates: pd.DataFrame,
    budget: float | None = None,
    max_per_action: int | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The candidates (one row per member with its action, CANDIDATE_COLUMNS) to put on lists.

    Order: expected value per unit cost, highest first (free actions first, then higher EV,
    then member id, so the order is reproducible). Each action keeps at most its
    `max_per_action` best members; then members are taken in that order while the running cost
    stays within `budget` (currency; None = no budget). Rows keep their columns plus `rank`.
    """
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise ValueError(f"campaign candidates lack column(s) {', '.join(missing)}")
    frame = candidates.copy()
    cost = frame["unit_cost"].to_numpy(dtype=float)
    ev = frame["expected_value"].to_numpy(dtype=float)
    frame["ev_per_cost"] = np.divide(ev, cost, out=np.full(len(frame), np.inf), where=cost > 0)
    frame = frame.sort_values(
        ["ev_per_cost", "expected_value", "member_id"], ascending=[False, False, True]
    )
    if max_per_action is not None:
        caps = frame["action_id"].map(
            max_per_action if isinstance(max_per_action, Mapping) else lambda _: max_per_action
        )
        limit = caps.fillna(np.inf).to_numpy(dtype=float)
        frame = frame[frame.groupby("action_id").cumcount().to_numpy() < limit]
    if budget is not None:
        frame = frame[frame["unit_cost"].cumsum().to_numpy() <= budget + 1e-9]
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)


def hold_out(selected: pd.DataFrame, share: float, salt: str) -> pd.Series:
    """`group` per selected row: 'control' for a random `share` of each action's members (a
    hash of salt, action and member id: reproducible, independent between actions), else
    'treatment'. Control members are not contacted; they measure the action's lift."""
    if not 0 <= share < 1:
        raise ValueError(f"control share must be in [0, 1), got {share}")
    group = pd.Series(TREATMENT, index=selected.index, dtype=object)
    for action, rows in selected.groupby("action_id").groups.items():
        held = control_group(selected.loc[rows, "member_id"].astype(str), share, f"{salt}:{action}")
        group.loc[rows[held]] = CONTROL
    return group


def list_summary(lists: pd.DataFrame) -> pd.DataFrame:
    """Per action: members listed, treatment and control sizes, contact cost (treatment only)
    and expected value of the treatment contacts (currency)."""
    treated = lists["group"] == TREATMENT
    frame = lists.assign(
        treatment=treated,
        control=~treated,
        cost=np.where(treated, lists["unit_cost"], 0.0),
        treated_ev=np.where(treated, lists["expected_value"], 0.0),
    )
    table = frame.groupby("action_id").agg(
        members=("member_id", "size"),
        treatment=("treatment", "sum"),
        control=("control", "sum"),
        cost=("cost", "sum"),
        expected_value=("treated_ev", "sum"),
    )
    table = table.astype({"treatment": "int64", "control": "int64"})
    return table.sort_values("members", ascending=False)


def outcomes(contacts: pd.DataFrame, orders: pd.DataFrame | None, window_days: int) -> pd.DataFrame:
    """Per contact: `responded` (a response within `window_days` of sending), `response_value`
    (currency, 0 without one) and, given orders, `revenue`: net order amount (returns excluded)
    of the member in the `window_days` after `sent_at`."""
    sent = pd.to_datetime(contacts["sent_at"], utc=True)
    # Both response columns are optional in the contract: absent means no responses.
    absent = pd.Series(None, index=contacts.index, dtype=object)
    responded_at = pd.to_datetime(contacts.get("responded_at", absent), utc=True)
    window = pd.Timedelta(days=window_days)
    out = contacts[["member_id", "action_id", "group"]].copy()
    in_window = responded_at.notna() & (responded_at <= sent + window)
    out["responded"] = in_window.to_numpy(dtype=float)
    value = pd.to_numeric(contacts.get("response_value", absent), errors="coerce").fillna(0.0)
    out["response_value"] = np.where(in_window, value, 0.0)
    if orders is not None:
        out["revenue"] = _revenue(out.assign(sent_at=sent), orders, window)
    return out


def _revenue(contacts: pd.DataFrame, orders: pd.DataFrame, window: pd.Timedelta) -> np.ndarray:
    """Net order amount of each contact's member in (sent_at, sent_at + window]."""
    kept = orders.loc[~orders["is_return"].astype("boolean").fillna(False).to_numpy()]
    bought = kept[["member_id", "ordered_at", "amount"]].assign(
        ordered_at=lambda f: pd.to_datetime(f["ordered_at"], utc=True)
    )
    keyed = contacts[["member_id", "sent_at"]].reset_index(names="contact")
    joined = keyed.merge(bought, on="member_id", how="inner")
    inside = (joined["ordered_at"] > joined["sent_at"]) & (
        joined["ordered_at"] <= joined["sent_at"] + window
    )
    totals = joined.loc[inside].groupby("contact")["amount"].sum()
    return totals.reindex(range(len(contacts)), fill_value=0.0).to_numpy(dtype=float)


def measure_lift(outcome: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Lift per action and metric: treatment mean minus control mean, with a normal
    (Welch) confidence interval and two-sided p-value. Metrics are the numeric outcome columns
    (rates as shares, money per contact)."""
    metrics = [c for c in ("responded", "response_value", "revenue") if c in outcome.columns]
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows = []
    for action, frame in outcome.groupby("action_id", sort=True):
        t, c = frame[frame["group"] == TREATMENT], frame[frame["group"] == CONTROL]
        for metric in metrics:
            rows.append({"action_id": action, "metric": metric, **_lift(t[metric], c[metric], z)})
    return pd.DataFrame(rows)


def _lift(treated: pd.Series, control: pd.Series, z: float) -> dict[str, float]:
    nt, nc = len(treated), len(control)
    mt = float(treated.mean()) if nt else math.nan
    mc = float(control.mean()) if nc else math.nan
    vt = float(treated.var(ddof=1)) if nt > 1 else math.nan
    vc = float(control.var(ddof=1)) if nc > 1 else math.nan
    se = math.sqrt(vt / nt + vc / nc) if nt > 1 and nc > 1 else math.nan
    lift = mt - mc
    p = float(2 * stats.norm.sf(abs(lift) / se)) if se and se > 0 else math.nan
    return {
        "treatment": nt,
        "control": nc,
        "treatment_mean": mt,
        "control_mean": mc,
        "lift": lift,
        "ci_low": lift - z * se,
        "ci_high": lift + z * se,
        "p_value": p,
    }
