"""Action catalogue: the shipped file loads, and every kind of mistake reads clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import (
    NO_ACTION,
    CatalogueError,
    Condition,
    condition_mask,
    load_catalogue,
    parse_catalogue,
)
from simulator.params import ACTIONS as SIMULATED_ACTIONS

ONE_ACTION = """
currency: USD
actions:
  - id: winback_coupon
    description: Win-back coupon.
    channels: [email]
    unit_cost: {cost}
    stages: [{stage}]
    conditions:
      - {{feature: recency_days, op: "{op}", value: 60}}
    requires_consent: [marketing]
    cooldown_days: {cooldown}
    prior: {{response_prob: 0.04, value_per_response: 55.0}}
  - id: no_action
    description: Nothing.
    unit_cost: 0
    stages: [dormant]
    cooldown_days: 0
    prior: {{response_prob: 0, value_per_response: 0}}
"""


def one_action(
    cost: str = "4.0", stage: str = "dormant", op: str = ">=", cooldown: str = "30"
) -> str:
    return ONE_ACTION.format(cost=cost, stage=stage, op=op, cooldown=cooldown)


def test_shipped_catalogue_covers_the_simulated_actions_and_no_action() -> None:
    catalogue = load_catalogue()

    assert set(catalogue.ids) == {*SIMULATED_ACTIONS, NO_ACTION}, "every logged action is priced"
    assert catalogue.action(NO_ACTION).unit_cost == 0


def test_a_valid_variant_parses() -> None:
    catalogue = parse_catalogue(one_action())

    assert catalogue.action("winback_coupon").conditions[0].describe() == "recency_days >= 60"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (one_action(cooldown="-3"), "action 'winback_coupon': cooldown_days must be >= 0 (got -3)"),
        (one_action(cost="-1"), "action 'winback_coupon': unit_cost must be >= 0"),
        (one_action(stage="dormnat"), "action 'winback_coupon': stages.0 must be one of"),
        (one_action(op="=<"), "action 'winback_coupon': conditions.0.op must be one of"),
        (one_action().replace("    cooldown_days: 30\n", ""), "cooldown_days is required"),
        ("currency: USD\nactions: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
    ],
    ids=[
        "negative-cooldown",
        "negative-cost",
        "unknown-stage",
        "unknown-op",
        "missing",
        "yaml",
        "shape",
    ],
)
def test_errors_name_the_action_and_the_field(text: str, expected: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(text, source="actions.yaml")

    assert expected in str(caught.value), f"message was: {caught.value}"
    assert str(caught.value).startswith("actions.yaml: "), "the message names the file"


def test_only_the_root_cause_is_reported_for_a_bad_stage() -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(one_action(stage="dormnat"))

    assert "at least 1 item" not in str(caught.value), "no echo of the same mistake"


def test_unknown_feature_is_an_error_when_the_feature_list_is_given() -> None:
    with pytest.raises(
        CatalogueError, match="action 'winback_coupon': condition on unknown feature 'recency_days'"
    ):
        parse_catalogue(one_action(), features=["frequency"])


def test_missing_no_action_and_duplicates_are_refused() -> None:
    text = one_action().split("  - id: no_action")[0]

    with pytest.raises(CatalogueError, match="must contain the 'no_action' action"):
        parse_catalogue(text)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        load_catalogue(tmp_path / "nope.yaml")


def test_conditions_compare_without_eval_and_missing_values_fail() -> None:
    frame = pd.DataFrame({"recency_days": [10.0, 90.0, np.nan], "tier": ["gold", "basic", None]})

    at_least_60 = condition_mask(frame, Condition(feature="recency_days", op=">=", value=60))
    top_tier = condition_mask(frame, Condition(feature="tier", op="in", value=("gold", "platinum")))

    assert at_least_60.tolist() == [False, True, False]
    assert top_tier.tolist() == [True, False, False]


def test_in_needs_a_list() -> None:
    with pytest.raises(ValueError, match="op 'in' needs a list"):
        Condition(feature="tier", op="in", value="gold")


def test_shipped_conditions_read_features_the_store_serves() -> None:
    from features.catalog import FAMILIES

    served = [f.name for family in FAMILIES.values() for f in family]

    load_catalogue(features=served)  # raises CatalogueError naming any unknown feature


def test_conditions_may_read_the_condition_scores_handed_beside_the_features() -> None:
    """A condition on a score passes the feature check; `with_scores` adds the scores the
    features lack, aligned by member, and leaves a feature of the same name alone."""
    import numpy as np
    import pandas as pd

    from decisions.catalogue import CONDITION_SCORES, with_scores

    text = one_action().replace("feature: recency_days", "feature: next_tier_probability")
    assert "next_tier_probability" in CONDITION_SCORES
    parse_catalogue(text, features=["frequency"])  # a score, not an unknown feature

    features = pd.DataFrame({"tier": ["gold", "basic"]}, index=["a", "b"])
    scores = pd.DataFrame({"next_tier_probability": [0.2, 0.9], "churn": 0.1}, index=["b", "a"])
    out = with_scores(features, scores)
    assert out["next_tier_probability"].tolist() == [0.9, 0.2], "aligned by member"
    assert "churn" not in out.columns, "only the scores conditions may read"
    assert with_scores(features, None) is features
    mine = features.assign(next_tier_probability=np.nan)
    assert with_scores(mine, scores)["next_tier_probability"].isna().all(), "features win"
