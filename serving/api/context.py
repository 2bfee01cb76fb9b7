"""The collaborators of one score-API request, gathered once by `serving.api.deps` and handed to
`serving.api.service` as one object."""

from __future__ import annotations

from dataclasses import dataclass

from serving.api.metrics import Metrics
from serving.online.contact_log import ContactLog
from serving.scoring.context import ScoringContext


@dataclass(frozen=True)
class RequestContext(ScoringContext):
    """A `ScoringContext` (bundle taken once per request, online store, domain rules, settings)
    plus the contact log the next-best action reads cooldowns from and the metrics the served
    scores feed."""

    contacts: ContactLog
    metrics: Metrics
