"""The feature catalog: unique snake_case names, known dtypes, descriptions, family keys."""

from __future__ import annotations

import re

from features.catalog import FAMILIES, PANDAS_DTYPES, all_features, feature, feature_names

# Columns other modules read by name (stage rules, actions, reason codes, the score API).
RELIED_ON = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "tier",
    "has_ordered",
    "segment",
    "tags",
    "consent_marketing",
    "consent_personalization",
    "days_since_registration",
    "days_since_first_order",
    "days_overdue",
    "last_gap_days",
    "distance_to_next_tier",
    "mean_gap_days",
    "frequency_90d",
    "monetary_365d",
    "logins_30d",
)


def test_names_are_unique_snake_case() -> None:
    # Given the catalog / When listing names
    names = feature_names()
    # Then each is unique and safe as a Parquet column and a Feast field
    assert len(names) == len(set(names)), "feature names must be unique across families"
    bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)]
    assert not bad, f"names must be snake_case: {bad}"
    assert not {"member_id", "as_of"} & set(names), "keys are not features"


def test_every_feature_is_typed_described_and_filed_under_its_family() -> None:
    for family, features in FAMILIES.items():
        for f in features:
            assert f.dtype in PANDAS_DTYPES, f"{f.name}: unknown dtype {f.dtype}"
            assert f.family == family, f"{f.name} is filed under {family} but says {f.family}"
            assert len(f.description) > 10, f"{f.name} needs a description with units"


def test_required_families_and_relied_on_names_exist() -> None:
    assert {"rfm", "behaviour", "profile", "lifecycle"} <= set(FAMILIES)
    missing = [n for n in RELIED_ON if n not in feature_names()]
    assert not missing, f"other modules read these columns: {missing}"
    assert feature("tier").dtype == "string", "tier is a tier name"
    assert len(all_features()) == sum(len(v) for v in FAMILIES.values())
