"""One chunk of batch scoring, pure: feature rows in, one output row per member out.

Scores come from `serving.scoring.frames.score_frame` (the code the score API uses), stages from
`decisions.stages.assign_stages`, actions from `decisions.engine.decide` (the score API's
next-best action too) after the guardrails, under each member's effective consent (the consent
register's entry, read once per run, over the snapshot's flags). Both engines (local, Spark)
call `score_chunk`, so they give the same rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from decisions.catalogue import NO_ACTION, Catalogue
from decisions.engine import decide
from decisions.stages import assign_stages
from memberscore.settings import Settings
from serving.scoring.bundle import ModelBundle
from serving.scoring.frames import has_ordered, reason_codes, score_frame
from training.core.reasons import MAX_REASONS

MEMBER_ID = "member_id"
CONTACT_COLUMNS = ["member_id", "action_id", "sent_at", "group"]
TEXT_COLUMNS = ("segment", "tier", "next_tier")
REASON_SCOPES = ("actioned", "all")


@dataclass(frozen=True)
class Decider:
    """What choosing actions needs besides the features: the catalogue, an uplift model
    (`decisions.uplift.UpliftModel`), the contact log (CONTACT_COLUMNS) as of the cutoff and
    the consent register's entries (`decisions.guardrails.REGISTER_COLUMNS`; None: no member
    changed consent since the snapshot)."""

    catalogue: Catalogue
    uplift: Any
    contacts: pd.DataFrame
    consents: pd.DataFrame | None = None


def recent_contacts(
    contacts: pd.DataFrame, catalogue: Catalogue, settings: Settings, now: pd.Timestamp
) -> pd.DataFrame:
    """The contacts guardrails can still see at `now`: sent (treatment) before `now`, inside
    the longest cooldown, cap period or total-cap window (days). Shrinks the log once so each
    chunk summarises only these."""
    actions = catalogue.actions
    days = max(
        [settings.decisions.guardrails.max_contacts_days]
        + [a.cooldown_days for a in actions]
        + [a.cap.period_days for a in actions if a.cap is not None]
    )
    sent_at = pd.to_datetime(contacts["sent_at"], utc=True)
    keep = (contacts["group"] == "treatment") & (sent_at < now)
    keep &= sent_at >= now - pd.Timedelta(days=days)
    return contacts.loc[keep.to_numpy(), CONTACT_COLUMNS].reset_index(drop=True)


def unscorable_reasons(features: pd.DataFrame, bundle: ModelBundle) -> np.ndarray:
    """Why each member cannot be scored (None when it can): `has_ordered` missing (which
    models apply is unknown), or none of its main model's features has a value. Members
    without orders are not checked while no activation model is served (it is optional):
    they are scored with a null activation, a stage and an action."""
    reasons = np.full(len(features), None, dtype=object)
    if "has_ordered" not in features.columns:
        reasons[:] = "has_ordered missing: cannot tell which models apply"
        return reasons
    ordered = has_ordered(features)
    for name, mask in (("churn", ordered), ("activation", ~ordered)):
        model = bundle.get(name)
        if model is None:
            continue
        present = [f for f in model.feature_names if f in features.columns]
        empty = (
            features[present].isna().all(axis=1).to_numpy()
            if present
            else np.ones(len(features), dtype=bool)
        )
        reasons[mask & empty] = f"no value for any feature of the {name} model"
    reasons[features["has_ordered"].isna().to_numpy()] = (
        "has_ordered missing: cannot tell which models apply"
    )
    return reasons


def score_chunk(
    features: pd.DataFrame,
    as_of: pd.Timestamp,
    bundle: ModelBundle,
    decider: Decider,
    settings: Settings,
    reasons: int = MAX_REASONS,
    reasons_for: str = "actioned",
) -> pd.DataFrame:
    """Output rows of the members in `features` (snapshot rows with a `member_id` column, cut
    off at `as_of`, 00:00 UTC): scores, stage, chosen action and `reasons` reason codes, in
    input order. Reason codes (SHAP, the costly part) are computed for every member
    (`reasons_for="all"`) or only for members given a sendable action ("actioned", the ones a
    campaign list shows). Unscorable members keep their row with `scored` false, the reason,
    no scores and no_action."""
    frame = features.set_index(MEMBER_ID, drop=False)
    frame.index.name = None
    why = unscorable_reasons(frame, bundle)
    bad = np.array([w is not None for w in why], dtype=bool)
    scores = score_frame(frame, bundle, settings, reasons=0)
    scores.loc[bad, [c for c in scores.columns if c != "insufficient_history"]] = None
    stages = assign_stages(frame, scores, settings.decisions.stages, sentences=False)
    chosen = _actions(frame, stages, scores, decider, settings, as_of)
    chosen.loc[bad, ["action_id", "channel", "action_source"]] = [NO_ACTION, None, "none"]
    chosen.loc[bad, ["expected_value", "unit_cost"]] = 0.0
    out = pd.DataFrame({MEMBER_ID: frame[MEMBER_ID].astype(str).to_numpy()})
    out["as_of"] = pd.Series(as_of, index=out.index).astype("datetime64[us, UTC]")
    out["scored"], out["unscored_reason"] = ~bad, pd.array(why, dtype="string")
    out = pd.concat([out, scores.reset_index(drop=True)], axis=1)
    if reasons > 0:
        wanted = ~bad & (reasons_for == "all" or (chosen["action_id"] != NO_ACTION).to_numpy())
        codes = _reasons(frame, wanted, bundle, reasons, settings.batch_workers)
        out = pd.concat([out, codes], axis=1)
    out["stage"] = stages["stage"].astype(str).to_numpy()
    out["stage_rule"] = stages["rule_id"].to_numpy()
    for column in TEXT_COLUMNS:
        text = frame[column] if column in frame.columns else pd.Series(None, index=frame.index)
        out[column] = text.astype("string").to_numpy()
    out = pd.concat([out, chosen.reset_index(drop=True)], axis=1)
    loose = [c for c in out.columns if pd.api.types.is_object_dtype(out[c].dtype)]
    return out.astype(dict.fromkeys(loose, "string"))  # one Parquet type whatever the values


def _reasons(
    frame: pd.DataFrame, wanted: np.ndarray, bundle: ModelBundle, k: int, workers: int
) -> pd.DataFrame:
    """Reason codes of the `wanted` rows (positions), None elsewhere; RangeIndex. SHAP runs on
    `workers` threads over slices of the rows (LightGBM releases the GIL), so a run of one
    chunk, like the demo's, still uses every core; the codes do not depend on the slicing."""
    rows = np.flatnonzero(wanted)
    slices = [p for p in np.array_split(rows, max(1, min(workers, len(rows) // 2000))) if len(p)]

    def codes_of(positions: npt.NDArray[np.intp]) -> pd.DataFrame:
        return reason_codes(frame.iloc[positions], bundle, k)

    with ThreadPoolExecutor(max(1, len(slices))) as pool:
        parts = list(pool.map(codes_of, slices))
    codes = pd.concat(parts) if parts else reason_codes(frame.iloc[rows], bundle, k)
    full = pd.DataFrame(None, index=pd.RangeIndex(len(frame)), columns=codes.columns, dtype=object)
    full.iloc[rows] = codes.to_numpy()
    return full


def _actions(
    frame: pd.DataFrame,
    stages: pd.DataFrame,
    scores: pd.DataFrame,
    decider: Decider,
    settings: Settings,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """The engine's choice per member (conditions may read `scores`): action_id, channel,
    expected_value (currency per contact), unit_cost, source (learned | prior | none) and
    control_group."""
    catalogue, policy = decider.catalogue, settings.decisions.guardrails
    batch = decide(
        frame,
        stages,
        catalogue,
        decider.uplift,
        decider.contacts,
        now,
        policy,
        decider.consents,
        scores=scores,
    )
    chosen = batch.to_frame().drop(columns=["stage"]).rename(columns={"source": "action_source"})
    costs = np.array([a.unit_cost for a in catalogue.actions])
    chosen.insert(3, "unit_cost", costs[batch.chosen])
    return chosen
