"""The vectorised scoring core: member features in, score columns out.

Pure (no I/O). The score API (`serving.scoring.score`), the local batch job
(`pipelines.batch.job`) and the Spark path all score through `score_columns`, so they compute
the same numbers with the same code: batch jobs through `score_frame` (a frame of features in, a
frame of scores out), the score API straight from its feature rows (`encode_records`, no
pandas). Rows are members (any index, usually member ids); features are as of their snapshot
cutoff.

Members who never ordered (`has_ordered` false or missing) get the activation probability only
(NaN while the bundle serves no activation model, which is optional:
`serving.scoring.bundle.OPTIONAL_MODELS`); members with orders get churn (every served
horizon), expected orders, spend and CLV (expected values and p10/p50/p90), and, in
`score_frame`, P(alive) from the BTYD outlook. The spend model's predictions are read by output
name (`ServedModel.outputs`), so models with and without the expected values both serve.
Reason codes are the feature names with the largest positive SHAP contributions of the churn
model (members with orders) or the activation model (the others; none without one).
Upgrade timing (`next_tier_days`, `next_tier_probability`, see `decisions.upgrade`) comes from
the spend forecast and the tier features (`TIER_INPUTS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from decisions.upgrade import SpendForecast, TierState, upgrade_timing
from features.families.btyd import members_p_alive
from memberscore.errors import ModelNotReady
from memberscore.settings import Settings
from serving.scoring.bundle import REASON_MODELS, ModelBundle, ServedModel
from training.core.reasons import MAX_REASONS, top_positive

DAYS_PER_MONTH = 365.25 / 12
QUANTILES = ("p10", "p50", "p90")
MEANS = ("orders_mean", "spend_mean")  # expected orders and spend over the horizon
SPEND_OUTPUTS = (*MEANS, *QUANTILES)
# The features upgrade timing reads (`decisions.upgrade.TierState`, in its field order).
TIER_INPUTS = ("distance_to_next_tier", "monetary_30d", "monetary_90d", "monetary_365d")
SMALL_FRAME_ROWS = 64


def encode_frame(features: pd.DataFrame, model: ServedModel) -> np.ndarray:
    """The float matrix `model` expects: its features in order, categories as level indices
    (matched as text, as `training.models.boosting.Encoding` does), booleans as 0/1, missing,
    unseen or unreadable values (text in a numeric feature) as NaN. Absent columns are all
    NaN."""
    if len(features) <= SMALL_FRAME_ROWS:
        return _encode_rows(features, model)
    matrix = np.full((len(features), len(model.feature_names)), np.nan)
    for j, name in enumerate(model.feature_names):
        if name not in features.columns:
            continue
        column = features[name]
        if name in model.categories:
            codes = pd.Categorical(
                column.astype("string"), categories=list(model.categories[name])
            ).codes
            matrix[:, j] = np.where(codes >= 0, codes, np.nan)
        else:
            matrix[:, j] = _numbers(column)
    return matrix


def encode_records(rows: Sequence[Mapping[str, Any]], model: ServedModel) -> np.ndarray:
    """`encode_frame` of `rows` (feature name → value; an absent name is a missing value),
    read straight from the mappings: the score API's one-member path, without pandas."""
    columns = [[row.get(name) for row in rows] for name in model.feature_names]
    return _encode_values(columns, len(rows), model)


def _encode_rows(features: pd.DataFrame, model: ServedModel) -> np.ndarray:
    """`encode_frame` value by value: for a few rows (the score API's requests) pandas'
    per-column cost (~0.1 ms a column) dwarfs the work. Same rules, same matrix."""
    positions = features.columns.get_indexer(pd.Index(model.feature_names))
    values = features.to_numpy(dtype=object)
    columns = [values[:, p] if p >= 0 else None for p in positions]
    return _encode_values(columns, len(features), model)


def _encode_values(
    columns: Sequence[Sequence[Any] | np.ndarray | None], n: int, model: ServedModel
) -> np.ndarray:
    """The (n, features) matrix of `model` from its features' values, column by column in
    `model.feature_names` order (None: the column is absent, all NaN)."""
    matrix = np.full((n, len(model.feature_names)), np.nan)
    for j, (name, column) in enumerate(zip(model.feature_names, columns, strict=True)):
        if column is None:
            continue
        if name in model.categories:
            levels = {str(level): float(k) for k, level in enumerate(model.categories[name])}
            matrix[:, j] = [
                math.nan if _missing(v) else levels.get(str(v), math.nan) for v in column
            ]
        else:
            matrix[:, j] = [_number(v) for v in column]
    return matrix


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA."""
    return value is None or value is pd.NA or value is pd.NaT or value != value


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as floats; text (or anything not a number) becomes NaN."""
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_string_dtype(column.dtype) and not pd.api.types.is_object_dtype(
        column.dtype
    ):
        return np.full(len(column), np.nan)
    return np.fromiter((_number(v) for v in column), dtype=float, count=len(column))


def _number(value: Any) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def predict_frame(model: ServedModel, matrix: np.ndarray) -> np.ndarray:
    """Predictions as an (n, len(model.outputs)) array."""
    if len(matrix) == 0:
        return np.empty((0, len(model.outputs)))
    return np.asarray(model.predictor.predict(matrix), dtype=float).reshape(
        len(matrix), len(model.outputs)
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


def has_ordered(features: pd.DataFrame) -> np.ndarray:
    """True for members with at least one order (missing `has_ordered` counts as no order)."""
    if "has_ordered" not in features.columns:
        return np.zeros(len(features), dtype=bool)
    return features["has_ordered"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def tier_state(features: pd.DataFrame) -> TierState:
    """The `TIER_INPUTS` of the rows of `features` as floats, NaN where missing or absent."""
    return TierState(
        *(
            _numbers(features[name]) if name in features.columns else np.full(len(features), np.nan)
            for name in TIER_INPUTS
        )
    )


def tier_state_rows(rows: Sequence[Mapping[str, Any]]) -> TierState:
    """`tier_state` of feature rows (name → value; an absent name is a missing value)."""
    return TierState(
        *(np.array([_number(row.get(name)) for row in rows], dtype=float) for name in TIER_INPUTS)
    )


def has_ordered_rows(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """`has_ordered` of feature rows (name → value) as a bool array; missing is no order."""
    flags = (row.get("has_ordered") for row in rows)
    return np.array([not _missing(v) and bool(v) for v in flags], dtype=bool)


# A model's encoded matrix of the members being scored (all rows, `encode_frame`'s rules).
Matrices = Callable[[ServedModel], np.ndarray]


def shared_matrices(encode: Matrices) -> Matrices:
    """`encode`, called once per encoding (feature names and category levels): models trained
    on the same features share one matrix, so a request encodes its members once."""
    cache: dict[tuple[Any, ...], np.ndarray] = {}

    def matrix(model: ServedModel) -> np.ndarray:
        key = (model.feature_names, tuple(sorted(model.categories.items())))
        if key not in cache:
            cache[key] = encode(model)
        return cache[key]

    return matrix


def frame_matrices(features: pd.DataFrame) -> Matrices:
    """The shared matrices of the rows of `features` (`encode_frame`)."""
    return shared_matrices(partial(encode_frame, features))


def score_frame(
    features: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    reasons: int = MAX_REASONS,
) -> pd.DataFrame:
    """Scores of every row of `features`, on the same index: the columns of `score_columns`,
    `p_alive` (the bundle's BTYD outlook at the features' cutoff; NaN for members without an
    order or while no outlook is served) and, with `reasons > 0`, the columns of
    `reason_codes`. `reasons=0` skips the SHAP contributions, by far the costliest part (about
    3 ms per member on one core for a 300-tree model, against about 0.1 ms per prediction)."""
    ordered, matrices = has_ordered(features), frame_matrices(features)
    columns = score_columns(ordered, matrices, bundle, settings, tier_state(features))
    columns["p_alive"] = np.where(ordered, members_p_alive(bundle.outlook, features), np.nan)
    out = pd.DataFrame(columns, index=features.index)
    if reasons > 0:
        codes = reason_codes(features, bundle, reasons, ordered, matrices)
        out = pd.concat([out, codes], axis=1)
    return out


def score_columns(
    ordered: np.ndarray,
    matrices: Matrices,
    bundle: ModelBundle,
    settings: Settings,
    tiers: TierState,
) -> dict[str, np.ndarray]:
    """Score columns of n members, from whether each has ordered and their encoded matrices.

    Columns: `insufficient_history` (no order yet); `churn_<h>d` per served churn horizon and
    `churn` (the 'churn' model, default horizon), probabilities in [0, 1]; `activation`
    (members without orders; all NaN while no activation model is served, which is optional);
    over the clv model's horizon: `orders_mean` (expected orders), `spend_mean` and
    `spend_p10/p50/p90` (expected and p10/p50/p90 undiscounted spend, currency), `clv_mean` and
    `clv_p10/p50/p90` (the same discounted at `settings.monthly_discount_rate`);
    `next_tier_days` and `next_tier_probability` (`next_tier_columns`, from `tiers`, the
    members' `tier_state`). Scores that
    do not apply to a member (churn for a member who never ordered) are NaN and are not
    computed; so are the means of a spend model that does not predict them.
    """
    n = len(ordered)
    columns: dict[str, np.ndarray] = {"insufficient_history": ~ordered}
    buyers, others = np.flatnonzero(ordered), np.flatnonzero(~ordered)
    for model in churn_models(bundle, settings.churn_horizons_days):
        column = f"churn_{model.horizon_days}d"
        columns[column] = _on(buyers, n, _probabilities, model, matrices)
        if model.ref.name == "churn":
            columns["churn"] = columns[column].copy()
    activation, clv = bundle.get("activation"), bundle.get("clv")
    columns["activation"] = (
        np.full(n, np.nan)  # optional: the column stays, so batch output keeps one schema
        if activation is None
        else _on(others, n, _probabilities, activation, matrices)
    )
    if clv is not None:
        columns |= spend_columns(_on(buyers, n, partial(spend_outputs, clv), clv, matrices))
        factor = discount_factor(clv.horizon_days, settings.monthly_discount_rate)
        for stat in ("mean", *QUANTILES):
            columns[f"clv_{stat}"] = columns[f"spend_{stat}"] * factor
    return columns | next_tier_columns(columns, tiers, clv, settings.tier_period_days)


def next_tier_columns(
    columns: Mapping[str, np.ndarray], tiers: TierState, clv: ServedModel | None, period: int
) -> dict[str, np.ndarray]:
    """Upgrade timing over the next `period` days (`decisions.upgrade.upgrade_timing`) from
    the spend columns over the clv model's horizon: `next_tier_days` (days after the cutoff
    until the expected growth value reaches the next tier) and `next_tier_probability`; NaN at
    the top tier, for members without a spend forecast and while no clv model is served."""
    if clv is None:
        missing = np.full(len(tiers.distance), np.nan)
        return {"next_tier_days": missing, "next_tier_probability": missing.copy()}
    mean, p10, p50, p90 = (columns[f"spend_{stat}"] for stat in ("mean", *QUANTILES))
    forecast = SpendForecast(mean, p10, p50, p90, horizon_days=clv.horizon_days)
    return upgrade_timing(tiers, forecast, period)


def spend_columns(values: np.ndarray) -> dict[str, np.ndarray]:
    """`spend_outputs` rows as named columns: orders_mean, spend_mean, spend_p10/p50/p90."""
    names = (*MEANS, *(f"spend_{q}" for q in QUANTILES))
    return {name: values[:, k] for k, name in enumerate(names)}


def _on(
    rows: np.ndarray, n: int, finish: Any, model: ServedModel, matrices: Matrices
) -> np.ndarray:
    """`finish(predictions)` of `model` on the given row positions, NaN on the other rows."""
    values = finish(predict_frame(model, matrices(model)[rows]))
    full = np.full((n, *values.shape[1:]), np.nan)
    full[rows] = values
    return full


def reason_codes(
    features: pd.DataFrame,
    bundle: ModelBundle,
    k: int = MAX_REASONS,
    ordered: np.ndarray | None = None,
    matrices: Matrices | None = None,
) -> pd.DataFrame:
    """`reason_model` ('churn' for members with orders, 'activation' for the others) and
    `reason_1..reason_<k>`: feature codes of the largest positive SHAP contributions, strongest
    first, None when fewer features push the score up. Same index as `features`."""
    ordered = has_ordered(features) if ordered is None else ordered
    matrices = frame_matrices(features) if matrices is None else matrices
    model_of = np.full(len(features), None, dtype=object)
    codes = np.full((len(features), k), None, dtype=object)
    for model, rows, values in contributions(ordered, matrices, bundle):
        model_of[rows] = model.ref.name
        codes[rows] = top_codes(values, model.feature_names, k)
    out = pd.DataFrame({"reason_model": model_of}, index=features.index)
    for i in range(k):
        out[f"reason_{i + 1}"] = codes[:, i]
    return out


def _probabilities(values: np.ndarray) -> np.ndarray:
    return np.clip(values[:, 0], 0.0, 1.0)


def spend_outputs(model: ServedModel, values: np.ndarray) -> np.ndarray:
    """The spend model's predictions (columns `model.outputs`) as `SPEND_OUTPUTS` columns, read
    by name: the means NaN when the model does not predict them, the interval sorted (quantile
    models may cross); all floored at 0. ModelNotReady when the model lacks p10/p50/p90."""
    missing = [q for q in QUANTILES if q not in model.outputs]
    if missing:
        raise ModelNotReady(
            f"{model.ref.name} version {model.ref.version} predicts {', '.join(model.outputs)}, "
            f"not {', '.join(missing)}: it is not a spend model"
        )
    out = np.full((len(values), len(SPEND_OUTPUTS)), np.nan)
    for k, name in enumerate(SPEND_OUTPUTS):
        if name in model.outputs:
            out[:, k] = values[:, model.outputs.index(name)]
    out[:, len(MEANS) :] = np.sort(out[:, len(MEANS) :], axis=1)
    return np.clip(out, 0.0, None)


def contributions(
    ordered: np.ndarray, matrices: Matrices, bundle: ModelBundle
) -> Iterator[tuple[ServedModel, np.ndarray, np.ndarray]]:
    """SHAP contributions behind each member's main score: (model, row positions, contributions
    without the bias column) for the churn model over members with orders and the activation
    model over the others."""
    for name, mask in zip(REASON_MODELS, (ordered, ~ordered), strict=True):
        model, rows = bundle.get(name), np.flatnonzero(mask)
        if model is None or len(rows) == 0:
            continue
        values = np.asarray(model.predictor.contributions(matrices(model)[rows]), dtype=float)
        yield model, rows, values[:, : len(model.feature_names)]


def top_codes(values: np.ndarray, names: Sequence[str], k: int) -> np.ndarray:
    """(n, k) object array: the names of the k largest positive contributions per row, largest
    first (ties in feature order), None where fewer than k are positive
    (`training.core.reasons.top_positive`)."""
    chosen = top_positive(values, k)
    found = chosen >= 0
    codes = np.full(chosen.shape, None, dtype=object)
    codes[found] = np.asarray(names, dtype=object)[chosen[found]]
    return codes
