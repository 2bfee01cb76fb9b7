"""What scoring members needs besides their ids, gathered once: the model bundle, the online
store, the domain rules and the settings. The score API builds one per request
(`serving.api.context.RequestContext` adds the contact log and the metrics), `pipelines.publish`
one per run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memberscore.settings import Settings
from serving.scoring.bundle import ModelBundle
from serving.scoring.domain import Domain
from serving.scoring.sources import FeatureReader, MemberFeatures

NBA_SERVICE = "nba_v1"


def services(bundle: ModelBundle) -> list[str]:
    """Feature services to read: every served model's, plus nba_v1 (segment, tags, consent)."""
    return sorted({model.feature_service for model in bundle.models.values()} | {NBA_SERVICE})


@dataclass(frozen=True)
class ScoringContext:
    """The collaborators of one scoring call. `bundle` is taken once, so a model reload never
    changes the models a call scores with halfway."""

    bundle: ModelBundle
    reader: FeatureReader
    domain: Domain
    settings: Settings

    def read(self, member_ids: Sequence[str]) -> MemberFeatures:
        """Online features of `member_ids` (each once) for every service the bundle needs;
        StoreUnavailable when the store is down."""
        return self.reader.read(list(dict.fromkeys(member_ids)), services(self.bundle))
