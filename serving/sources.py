"""Ports to the other packages, as the score API sees them: features and domain decisions.

The real adapters (`features.store`, `training.reasons`, `decisions.*`) are built in the app's
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


class FeatureReader(Protocol):
    """Reads a feature service from the online store."""

    def read(self, member_ids: Sequence[str], services: Sequence[str]) -> MemberFeatures:
        """Features of `services` for `member_ids`; StoreUnavailable when the store is down."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the online store answers."""
        ...
