"""Scores from features: model bundle + online features + domain rules → `MemberScores`.

No I/O here: routes read the features and the contact log and hand them in. Members who never
ordered get profile-only scores (activation, stage, tags) and `insufficient_history=True`;
churn, spend, CLV and the BTYD outlook need an order history and are left out for them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memberscore.settings import Settings
from serving.bundle import ModelBundle, ServedModel
from serving.domain import Domain
from serving.schemas import HorizonProbability, Interval, MemberScores, Reason, ScoresOut, Stage
from serving.sources import MemberFeatures

DAYS_PER_MONTH = 365.25 / 12
MAX_REASONS = 3


def encode(rows: Sequence[Mapping[str, Any]], model: ServedModel) -> np.ndarray:
    """The float matrix `model` expects: its features in order, categories as level indices,
    booleans as 0/1, missing or unreadable values as NaN."""
    matrix = np.full((len(rows), len(model.feature_names)), np.nan)
    for j, name in enumerate(model.feature_names):
        levels = {str(level): float(i) for i, level in enumerate(model.categories.get(name, ()))}
        for i, row in enumerate(rows):
            matrix[i, j] = _number(row.get(name), levels if name in model.categories else None)
    return matrix


def _number(value: Any, levels: Mapping[str, float] | None) -> float:
    """One feature value as a float (NaN when missing, unseen or not a number). Categories are
    matched as text, as `training.models.Encoding` does when it trains."""
    if levels is not None:
        return math.nan if value is None else levels.get(str(value), math.nan)
    if value is None or isinstance(value, str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def predict(model: ServedModel, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Predictions as an (n, len(model.outputs)) array."""
    if not rows:
        return np.empty((0, len(model.outputs)))
    return np.asarray(model.predictor.predict(encode(rows, model)), dtype=float).reshape(
        len(rows), len(model.outputs)
    )


def churn_models(bundle: ModelBundle, horizons: Sequence[int]) -> list[ServedModel]:
    """Churn models to serve, by horizon: 'churn' (the default horizon) and any 'churn_<h>d'
    whose horizon is configured; one per horizon, shortest first."""
    found: dict[int, ServedModel] = {}
    for name, model in sorted(bundle.models.items()):
        if name == "churn" or (name.startswith("churn_") and model.horizon_days in horizons):
            found.setdefault(model.horizon_days, model)
    return [found[h] for h in sorted(found)]


def discount_factor(horizon_days: int, monthly_rate: float) -> float:
    """Present value of 1 unit of spend spread evenly over `horizon_days`, discounted
    continuously at `monthly_rate` per month: (1 - (1+r)^-M) / (M ln(1+r)), M in months."""
    months = horizon_days / DAYS_PER_MONTH
    if monthly_rate <= 0 or months <= 0:
        return 1.0
    rate = math.log1p(monthly_rate)
    return (1 - math.exp(-rate * months)) / (rate * months)


def tags_of(value: Any) -> list[str]:
    """Tags as a list, whether stored as a list, an array or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [tag.strip() for tag in value.replace("|", ",").split(",") if tag.strip()]
    return [str(tag) for tag in value]


def _interval(values: np.ndarray, model: ServedModel, currency: str, factor: float) -> Interval:
    """A p10/p50/p90 interval from one row of quantile predictions, sorted and floored at 0."""
    p10, p50, p90 = np.clip(np.sort(values[:3]), 0.0, None) * factor
    return Interval(horizon_days=model.horizon_days, currency=currency, p10=p10, p50=p50, p90=p90)


def _probability(value: float, model: ServedModel) -> HorizonProbability:
    """A model's probability, clipped to [0, 1]."""
    clipped = float(min(max(value, 0.0), 1.0))
    return HorizonProbability(
        horizon_days=model.horizon_days, probability=clipped, model=model.ref.name
    )


def _reasons(
    rows: Sequence[Mapping[str, Any]], ordered: np.ndarray, bundle: ModelBundle, domain: Domain
) -> list[list[Reason]]:
    """Reasons per member: from the churn model for members with orders, from the activation
    model for those without."""
    found: list[list[Reason]] = [[] for _ in rows]
    for name, mask in (("churn", ordered), ("activation", ~ordered)):
        model, members = bundle.get(name), [int(i) for i in np.flatnonzero(mask)]
        if model is None or not members:
            continue
        subset = [rows[i] for i in members]
        contributions = np.asarray(model.predictor.contributions(encode(subset, model)))
        for k, i in enumerate(members):
            codes = domain.reasons(name, contributions[k, :-1], model.feature_names, rows[i])
            found[i] = [
                Reason(code=c.code, text=c.text, model=name, impact=c.impact)
                for c in codes[:MAX_REASONS]
            ]
    return found


def flat_scores(scores: MemberScores) -> dict[str, float | None]:
    """The numbers decision rules look at, by name: churn (default horizon), churn_<h>d,
    activation, spend_p50, clv_p50 (currency) and p_alive."""
    flat: dict[str, float | None] = {"churn": None, "activation": None}
    for item in scores.churn:
        flat[f"churn_{item.horizon_days}d"] = item.probability
        if item.model == "churn":
            flat["churn"] = item.probability
    flat["activation"] = scores.activation.probability if scores.activation else None
    flat["spend_p50"] = scores.spend.p50 if scores.spend else None
    flat["clv_p50"] = scores.clv.p50 if scores.clv else None
    flat["p_alive"] = scores.p_alive
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
    ordered = np.array([bool(row.get("has_ordered")) for row in rows], dtype=bool)
    churn = [(m, predict(m, rows)) for m in churn_models(bundle, settings.churn_horizons_days)]
    activation, clv = bundle.get("activation"), bundle.get("clv")
    outputs: dict[str, np.ndarray | None] = {
        "activation": predict(activation, rows) if activation else None,
        "clv": predict(clv, rows) if clv else None,
    }
    reasons = _reasons(rows, ordered, bundle, domain)
    versions = dict(sorted(bundle.fingerprint.items()))
    scores = []
    for i, member_id in enumerate(known):
        card = MemberScores(
            member_id=member_id,
            insufficient_history=not ordered[i],
            churn=[_probability(p[i, 0], m) for m, p in churn] if ordered[i] else [],
            activation=_activation(activation, outputs["activation"], i, ordered[i]),
            spend=_spend(clv, outputs["clv"], i, ordered[i], settings, discounted=False),
            clv=_spend(clv, outputs["clv"], i, ordered[i], settings, discounted=True),
            p_alive=None,
            expected_next_order_date=None,
            rfm_segment=_text(rows[i].get("segment")),
            lifecycle=Stage(stage="unknown", rule="not evaluated"),
            tags=tags_of(rows[i].get("tags")),
            reasons=reasons[i],
            model_versions=versions,
            features_as_of=features.as_of.get(member_id),
        )
        scores.append(_with_outlook(card, rows[i], domain))
    return ScoresOut(scores=scores, not_found=[m for m in ids if m not in features.rows])


def _activation(
    model: ServedModel | None, values: np.ndarray | None, i: int, ordered: bool
) -> HorizonProbability | None:
    """Activation likelihood, for members who never ordered only."""
    if model is None or values is None or ordered:
        return None
    return _probability(values[i, 0], model)


def _spend(
    model: ServedModel | None,
    values: np.ndarray | None,
    i: int,
    ordered: bool,
    settings: Settings,
    *,
    discounted: bool,
) -> Interval | None:
    """Predicted spend (or, discounted, CLV) interval, for members with orders only."""
    if model is None or values is None or not ordered:
        return None
    rate = settings.monthly_discount_rate if discounted else 0.0
    return _interval(values[i], model, settings.currency, discount_factor(model.horizon_days, rate))


def _with_outlook(card: MemberScores, row: Mapping[str, Any], domain: Domain) -> MemberScores:
    """Add the BTYD outlook (members with orders) and the lifecycle stage, which needs scores."""
    if not card.insufficient_history:
        p_alive, next_order = domain.lifetime(row, card.features_as_of)
        card = card.model_copy(update={"p_alive": p_alive, "expected_next_order_date": next_order})
    stage, rule = domain.stage(row, flat_scores(card))
    return card.model_copy(update={"lifecycle": Stage(stage=stage, rule=rule)})


def _text(value: Any) -> str | None:
    """A categorical feature as text (None when missing)."""
    return None if value is None or value != value else str(value)
