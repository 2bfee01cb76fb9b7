"""Scores from features: model bundle + online features + domain rules → `MemberScores`.

No I/O here: routes read the features and the contact log and hand them in. The numbers come
from `serving.scoring.frames.score_columns`, the core batch scoring shares, fed with matrices
encoded once per request straight from the feature rows (no frames for a few members). Members
who never ordered get profile-only scores (activation, stage, tags) and
`insufficient_history=True`; churn, expected orders, spend, CLV and the BTYD outlook need an
order history and are left out for them, as is the timing of the next tier (its name and
distance stay). Activation is optional: while no activation model is served it is null, as are
the reasons of members without orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from memberscore.settings import Settings
from serving.schemas import (
    HorizonProbability,
    Interval,
    MemberScores,
    NextTier,
    Reason,
    ScoresOut,
    Stage,
)
from serving.scoring.bundle import ModelBundle, ServedModel
from serving.scoring.domain import Domain
from serving.scoring.frames import (
    QUANTILES,
    SMALL_FRAME_ROWS,
    Matrices,
    churn_models,
    contributions,
    discount_factor,
    encode_records,
    frame_matrices,
    has_ordered_rows,
    predict_frame,
    score_columns,
    shared_matrices,
    tier_state_rows,
)
from serving.scoring.sources import MemberFeatures
from training.core.reasons import MAX_REASONS

__all__ = ["churn_models", "discount_factor", "encode", "flat_scores", "predict", "score"]


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Feature rows (name → value, None when missing) as a frame for `serving.scoring.frames`: one
    object block, built without type inference (a quarter of the cost of `from_records`)."""
    if not rows:
        return pd.DataFrame()
    names = list(dict.fromkeys(name for row in rows for name in row))
    values = np.array([[row.get(name) for name in names] for row in rows], dtype=object)
    return pd.DataFrame(values, columns=names, copy=False)


def row_matrices(rows: Sequence[Mapping[str, Any]]) -> Matrices:
    """The encoded matrices of `rows`, one per encoding (see `serving.scoring.frames.encode_frame`):
    read straight from the mappings for up to SMALL_FRAME_ROWS rows, through one frame for
    more (pandas' column-wise encoding wins there)."""
    if len(rows) <= SMALL_FRAME_ROWS:
        return shared_matrices(partial(encode_records, rows))
    return frame_matrices(rows_frame(rows))


def encode(rows: Sequence[Mapping[str, Any]], model: ServedModel) -> np.ndarray:
    """The float matrix `model` expects for `rows` (see `serving.scoring.frames.encode_frame`)."""
    return row_matrices(rows)(model)


def predict(model: ServedModel, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Predictions as an (n, len(model.outputs)) array."""
    return predict_frame(model, encode(rows, model))


def tags_of(value: Any) -> list[str]:
    """Tags as a list, whether stored as a list, an array or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [tag.strip() for tag in value.replace("|", ",").split(",") if tag.strip()]
    return [str(tag) for tag in value]


def _reasons(
    rows: Sequence[Mapping[str, Any]],
    ordered: np.ndarray,
    matrices: Matrices,
    bundle: ModelBundle,
    domain: Domain,
) -> list[list[Reason]]:
    """Reasons per member, in words, from the contributions `serving.scoring.frames` computes: the
    churn model's for members with orders, the activation model's for the others."""
    found: list[list[Reason]] = [[] for _ in rows]
    for model, members, values in contributions(ordered, matrices, bundle):
        name = model.ref.name
        for k, i in enumerate(members):
            codes = domain.reasons(name, values[k], model.feature_names, rows[i])
            found[i] = [
                Reason(code=c.code, text=c.text, model=name, impact=c.impact)
                for c in codes[:MAX_REASONS]
            ]
    return found


def flat_scores(scores: MemberScores) -> dict[str, float | None]:
    """The numbers decision rules look at, by name: churn (default horizon), churn_<h>d,
    activation, orders_mean (expected orders), spend_mean, spend_p50, clv_mean, clv_p50
    (currency, over the clv model's horizon), p_alive and next_tier_probability (reaching the
    next tier within the tier period)."""
    flat: dict[str, float | None] = {"churn": None, "activation": None}
    for item in scores.churn:
        flat[f"churn_{item.horizon_days}d"] = item.probability
        if item.model == "churn":
            flat["churn"] = item.probability
    flat["activation"] = scores.activation.probability if scores.activation else None
    flat["orders_mean"] = scores.orders_mean
    for name, interval in (("spend", scores.spend), ("clv", scores.clv)):
        flat[f"{name}_mean"] = interval.mean if interval else None
        flat[f"{name}_p50"] = interval.p50 if interval else None
    flat["p_alive"] = scores.p_alive
    tier = scores.next_tier
    flat["next_tier_probability"] = tier.probability_within_period if tier else None
    return flat


def score(
    member_ids: Sequence[str],
    features: MemberFeatures,
    bundle: ModelBundle,
    domain: Domain,
    settings: Settings,
) -> ScoresOut:
    """Scores of every requested member the feature store knows (duplicates once, in request
    order); the others are listed in `not_found`."""
    ids = list(dict.fromkeys(member_ids))
    known = [m for m in ids if m in features.rows]
    rows = [features.rows[m] for m in known]
    buyers, matrices = has_ordered_rows(rows), row_matrices(rows)
    columns = score_columns(buyers, matrices, bundle, settings, tier_state_rows(rows))
    reasons = _reasons(rows, buyers, matrices, bundle, domain)
    churn = churn_models(bundle, settings.churn_horizons_days)
    versions = dict(sorted(bundle.fingerprint.items()))
    scores = []
    for i, member_id in enumerate(known):
        values = {name: column[i] for name, column in columns.items()}
        ordered = not bool(values["insufficient_history"])
        card = MemberScores(
            member_id=member_id,
            insufficient_history=not ordered,
            churn=[_probability(values[f"churn_{m.horizon_days}d"], m) for m in churn]
            if ordered
            else [],
            activation=_activation(bundle.get("activation"), values, ordered),
            spend=_interval(bundle.get("clv"), values, "spend", ordered, settings),
            clv=_interval(bundle.get("clv"), values, "clv", ordered, settings),
            orders_mean=_number(values.get("orders_mean")) if ordered else None,
            p_alive=None,
            expected_next_order_date=None,
            next_tier=_next_tier(rows[i], values, features.as_of.get(member_id), settings),
            rfm_segment=_text(rows[i].get("segment")),
            lifecycle=Stage(stage="unknown", rule="not evaluated"),
            tags=tags_of(rows[i].get("tags")),
            reasons=reasons[i],
            model_versions=versions,
            features_as_of=features.as_of.get(member_id),
        )
        scores.append(_with_outlook(card, rows[i], domain, bundle.outlook))
    return ScoresOut(scores=scores, not_found=[m for m in ids if m not in features.rows])


def _probability(value: float, model: ServedModel) -> HorizonProbability:
    """A probability `serving.scoring.frames` computed (already clipped to [0, 1])."""
    return HorizonProbability(
        horizon_days=model.horizon_days, probability=float(value), model=model.ref.name
    )


def _activation(
    model: ServedModel | None, values: Mapping[str, Any], ordered: bool
) -> HorizonProbability | None:
    """Activation likelihood, for members who never ordered only; None while no activation
    model is served (it is optional)."""
    if model is None or ordered:
        return None
    return _probability(values["activation"], model)


def _interval(
    model: ServedModel | None,
    values: Mapping[str, Any],
    kind: str,
    ordered: bool,
    settings: Settings,
) -> Interval | None:
    """Predicted spend (kind 'spend') or CLV (kind 'clv', discounted): expected value (None
    when the model predicts none) and interval, for members with orders only."""
    if model is None or not ordered:
        return None
    p10, p50, p90 = (float(values[f"{kind}_{q}"]) for q in QUANTILES)
    return Interval(
        horizon_days=model.horizon_days,
        currency=settings.currency,
        mean=_number(values[f"{kind}_mean"]),
        p10=p10,
        p50=p50,
        p90=p90,
    )


def _next_tier(
    row: Mapping[str, Any], values: Mapping[str, Any], as_of: datetime | None, settings: Settings
) -> NextTier | None:
    """The next tier and upgrade timing (`next_tier_days` after the cutoff `as_of`, a day
    counted from its start), None at the top tier (no distance)."""
    distance, days = _number(row.get("distance_to_next_tier")), _number(values["next_tier_days"])
    if distance is None:
        return None
    return NextTier(
        name=_text(row.get("next_tier")),
        distance=distance,
        currency=settings.currency,
        period_days=settings.tier_period_days,
        expected_date=None if days is None or as_of is None else (as_of + timedelta(days)).date(),
        probability_within_period=_number(values["next_tier_probability"]),
    )


def _number(value: Any) -> float | None:
    """A score as a float, None when missing (NaN)."""
    return None if value is None or value != value else float(value)


def _with_outlook(
    card: MemberScores, row: Mapping[str, Any], domain: Domain, outlook: Any
) -> MemberScores:
    """Add the BTYD outlook (members with orders) and the lifecycle stage, which needs scores."""
    if not card.insufficient_history:
        p_alive, next_order = domain.lifetime(row, card.features_as_of, outlook)
        card = card.model_copy(update={"p_alive": p_alive, "expected_next_order_date": next_order})
    stage, rule = domain.stage(row, flat_scores(card))
    return card.model_copy(update={"lifecycle": Stage(stage=stage, rule=rule)})


def _text(value: Any) -> str | None:
    """A categorical feature as text (None when missing)."""
    return None if value is None or value != value else str(value)
