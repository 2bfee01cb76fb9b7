"""Uplift learner: recovers a planted heterogeneous effect; thin history falls back to priors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue
from decisions.uplift import PRIOR, UpliftModel, catalogue_priors, prior_only_model

FEATURES = ["segment", "x"]


def fitted(campaign: Callable[..., Any], catalogue: Catalogue, **params: int) -> UpliftModel:
    log = campaign(8000, seed=1).log
    model = UpliftModel(FEATURES, min_treated=300, min_control=300, n_estimators=80, **params)
    return model.fit(log, catalogue_priors(catalogue))


def members() -> pd.DataFrame:
    segment = np.repeat(["A", "B"], 200)
    x = np.tile(np.linspace(-2, 2, 200), 2)
    return pd.DataFrame({"segment": segment, "x": x}, index=[f"q{i}" for i in range(400)])


def test_coupon_helps_segment_a_and_not_b(
    campaign: Callable[..., Any], catalogue: Catalogue
) -> None:
    model = fitted(campaign, catalogue)
    who = members()

    arrays = model.predict_arrays(who)
    coupon = arrays.prob[:, arrays.actions.index("coupon")]
    reminder = arrays.prob[:, arrays.actions.index("reminder")]
    a, b = (who["segment"] == "A").to_numpy(), (who["segment"] == "B").to_numpy()

    assert coupon[a].mean() == pytest.approx(0.15, abs=0.05), "planted +0.15 in A"
    assert abs(coupon[b].mean()) < 0.05, "planted 0 in B"
    assert reminder[b].mean() - reminder[a].mean() > 0.05, "reminder helps B more than A"
    value = arrays.value[:, arrays.actions.index("coupon")]
    assert value[a].mean() == pytest.approx(0.15 * 50, abs=2.5), "value uplift in currency"


def test_the_prior_only_model_predicts_each_actions_catalogue_prior(
    catalogue: Catalogue,
) -> None:
    """Given no contacts at all, every sendable action keeps its catalogue prior, whatever the
    member (the fallback while no uplift model is registered)."""
    model = prior_only_model(catalogue)

    arrays = model.predict_arrays(members().iloc[:2])

    priors = catalogue_priors(catalogue)
    assert arrays.actions == list(priors), "every sendable action, in catalogue order"
    assert arrays.source == [PRIOR] * len(priors)
    for j, action in enumerate(arrays.actions):
        assert (arrays.prob[:, j] == priors[action].response_prob).all(), action
        assert (arrays.value[:, j] == priors[action].value).all(), action


def test_thin_history_uses_the_prior_and_says_so(
    campaign: Callable[..., Any], catalogue: Catalogue
) -> None:
    log = campaign(8000, seed=1).log
    thin = log[~((log["action_id"] == "reminder") & (log["group"] == "treatment"))].iloc[:-1]
    thin = pd.concat(
        [thin, log[(log["action_id"] == "reminder") & (log["group"] == "treatment")][:50]]
    )

    model = UpliftModel(FEATURES, n_estimators=30).fit(thin, catalogue_priors(catalogue))
    tidy = model.predict(members().iloc[:3])

    reminder = tidy[tidy["action_id"] == "reminder"]
    assert (reminder["source"] == PRIOR).all()
    assert reminder["uplift_prob"].tolist() == [0.01] * 3, "catalogue prior response uplift"
    assert reminder["uplift_value"].tolist() == pytest.approx([0.5] * 3), "0.01 x 50"
    assert (tidy.loc[tidy["action_id"] == "coupon", "source"] == "learned").all()
    assert model.counts_.loc["reminder", "treated"] == 50


def test_training_is_reproducible(campaign: Callable[..., Any], catalogue: Catalogue) -> None:
    first = fitted(campaign, catalogue).predict_arrays(members())
    second = fitted(campaign, catalogue).predict_arrays(members())

    np.testing.assert_array_equal(first.value, second.value)


def test_state_round_trips_through_json(campaign: Callable[..., Any], catalogue: Catalogue) -> None:
    model = fitted(campaign, catalogue)

    copy = UpliftModel.from_state(json.loads(json.dumps(model.to_state())))

    np.testing.assert_allclose(
        copy.predict_arrays(members()).value, model.predict_arrays(members()).value
    )
    pd.testing.assert_frame_equal(copy.counts_, model.counts_)


def test_missing_columns_are_named(catalogue: Catalogue) -> None:
    with pytest.raises(ValueError, match="lack column\\(s\\) segment"):
        UpliftModel(FEATURES).fit(pd.DataFrame({"x": [1.0]}), catalogue_priors(catalogue))


def test_allowed_mask_predicts_only_the_allowed_pairs_and_the_same_values(
    campaign: Callable[..., Any], catalogue: Catalogue
) -> None:
    """Given a mask allowing the coupon for the first half only, the allowed pairs get exactly
    the unmasked predictions and the blocked pairs 0."""
    model = fitted(campaign, catalogue)
    who = members()
    full = model.predict_arrays(who)
    allowed = np.zeros(full.prob.shape, dtype=bool)
    coupon = full.actions.index("coupon")
    allowed[:200, coupon] = True

    masked = model.predict_arrays(who, allowed)

    np.testing.assert_allclose(masked.prob[:200, coupon], full.prob[:200, coupon])
    np.testing.assert_allclose(masked.value[:200, coupon], full.value[:200, coupon])
    assert (masked.prob[200:, coupon] == 0).all() and (masked.value[200:, coupon] == 0).all()


def test_predictions_read_the_boosters_input_as_a_frame_would(
    campaign: Callable[..., Any], catalogue: Catalogue
) -> None:
    """The boosters read one float matrix per call (`_matrix`); given members with a segment
    never seen in training, missing values and text numbers in an object column, every
    learned prediction equals the booster's on the `_design` frame LightGBM was fitted on."""
    model = fitted(campaign, catalogue)
    who = members().iloc[::40].copy()
    who["segment"] = pd.Series((["A", "B", "Z", None] * 3)[: len(who)], who.index, object)
    who["x"] = who["x"].astype(object)
    who.iloc[1, 1] = None

    arrays = model.predict_arrays(who)

    frame = model._design(who)
    control = model.control_models_[1].predict(frame)
    for action, (_, regressor) in model.treated_models_.items():
        k = arrays.actions.index(action)
        expected = regressor.predict(frame) - control
        np.testing.assert_array_equal(arrays.value[:, k], expected, err_msg=action)
    assert np.isnan(model._matrix(who)[2:4, 0]).all(), "unseen and missing text are missing"


def test_large_and_small_frames_get_the_same_inputs(
    campaign: Callable[..., Any], catalogue: Catalogue
) -> None:
    """Text codes come from a dict lookup for small frames and pandas' indexer for large ones
    (`SMALL` rows); the rows of a large frame read the same either way."""
    from decisions.uplift import SMALL

    model = fitted(campaign, catalogue)
    big = pd.concat([members()] * (SMALL // 400 + 1))
    big["segment"] = big["segment"].where(np.arange(len(big)) % 7 != 0, "Z")

    whole, part = model._matrix(big), model._matrix(big.iloc[:50])

    assert len(big) >= SMALL and np.array_equal(whole[:50], part, equal_nan=True)
    assert np.isnan(whole[::7, 0]).all(), "unseen text is missing in the large path too"


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["a", None, "b"], dtype=object),
        pd.Series([True, None, False, np.nan], dtype=object),
        pd.Series([np.True_, np.False_], dtype=object),
        pd.Series([True, False]),
        pd.Series([True, pd.NA], dtype="boolean"),
        pd.Series(["a", pd.NA], dtype="string"),
        pd.Series([1, "b", 2.5, None], dtype=object),
        pd.Series([None, None], dtype=object),
    ],
)
def test_text_inputs_read_as_astype_string_gives_them(values: pd.Series) -> None:
    """Text features (booleans learned as "True"/"False" included) are read as
    `astype("string")` reads them, through a shortcut for text and booleans."""
    from decisions.uplift import _text

    expected = values.astype("string").to_numpy(dtype=object)

    got = _text(values)

    assert [None if pd.isna(v) else v for v in got] == [
        None if pd.isna(v) else v for v in expected
    ], (got, expected)
