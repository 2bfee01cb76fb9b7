"""Ports to the other packages, as the score API sees them: features and domain decisions.

The real adapters (`features.store`, `training.core.reasons`, `decisions.*`) are built in the app's
lifespan; tests replace them through `app.dependency_overrides`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class MemberFeatures:
    """Online feature values of the requested members that the store knows.

    `rows` maps member id → feature name → value (None when missing); unknown members are
    absent. `as_of` maps member id → the snapshot cutoff its values were computed at (UTC):
    the features describe history strictly before it.
    """

    rows: Mapping[str, Mapping[str, Any]]
    as_of: Mapping[str, datetime]


@dataclass(frozen=True)
class PublishedCard:
    """A member's published card as the online store holds it.

    `card` is the `MemberScores` JSON, `key` the `serving.scoring.cards.card_key` it was computed
    under, `observed` the JSON of its `serving.scoring.cards.observed_scores`, `as_of` the cutoff
    of the features it was computed from and `features_as_of` the cutoff of the member's
    features in the store now.
    """

    card: str
    key: str
    observed: str
    as_of: datetime
    features_as_of: datetime | None

    def current(self, key: str) -> bool:
        """True when the card is what live scoring would answer now under `key`."""
        return self.key == key and self.as_of == self.features_as_of


class FeatureReader(Protocol):
    """Reads a feature service from the online store."""

    def read(self, member_ids: Sequence[str], services: Sequence[str]) -> MemberFeatures:
        """Features of `services` for `member_ids`; StoreUnavailable when the store is down."""
        ...

    def published(self, member_ids: Sequence[str]) -> Mapping[str, PublishedCard]:
        """Published score cards of `member_ids` that the store holds (`serving.scoring.cards`),
        current or not; StoreUnavailable when the store is down."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the online store answers."""
        ...
