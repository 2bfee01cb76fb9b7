"""The live resources of a running app: model holder, online store, contact log, domain rules.

Opened in the FastAPI lifespan (never at import time) and closed when the app stops.
"""

from __future__ import annotations

from dataclasses import dataclass

from memberscore.settings import Settings
from serving.online.contact_log import ContactLog, open_contact_log
from serving.scoring.bundle import ModelHolder
from serving.scoring.domain import Domain
from serving.scoring.sources import FeatureReader


@dataclass(frozen=True)
class Resources:
    """What the routes use, behind the dependencies in `serving.api.deps`."""

    models: ModelHolder
    features: FeatureReader
    contacts: ContactLog
    domain: Domain

    def close(self) -> None:
        """Release the stores' connections."""
        self.contacts.close()


def open_resources(settings: Settings) -> Resources:
    """Connect to the registry, the online store and the contact log of the settings' profile.

    Models are not loaded here: the lifespan's first refresh does that, so the app can start
    (and say why it is not ready) while the registry has no champion yet.
    """
    from serving.online.feast_reader import FeastReader
    from serving.scoring.adapters import open_domain
    from serving.scoring.registry import RegistrySource

    return Resources(
        models=ModelHolder(RegistrySource(settings)),
        features=FeastReader(settings),
        contacts=open_contact_log(settings),
        domain=open_domain(settings),
    )
