"""The champions the monitor checks, from the MLflow registry: each model's version, the
snapshots it was trained on (its run's `cutoffs` tag) and the backtest figures it was promoted
on (its run's `backtest_*` metrics), with the bundle that scores them (`serving.scoring.registry`:
checked native boosters, never pyfunc)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from memberscore.errors import ModelNotReady
from memberscore.settings import Settings
from serving.scoring.bundle import OPTIONAL_MODELS, ModelBundle
from serving.scoring.registry import REQUIRED, RegistrySource
from training.core.labels import as_cutoff
from training.monitoring import psi

MONITORED = ("churn", "activation", "clv")
REFERENCE_TAG = psi.REFERENCE_TAG


@dataclass(frozen=True)
class Champion:
    """One champion: registry name (= task), version, run, training cutoffs (00:00 UTC), the
    backtest metrics of its run by name and the score references recorded on the version."""

    name: str
    version: str
    run_id: str
    cutoffs: tuple[pd.Timestamp, ...]
    backtest: Mapping[str, float]
    references: Mapping[str, psi.Reference] = field(default_factory=dict)


@dataclass(frozen=True)
class Champions:
    """The champions to monitor and the bundle holding their models."""

    bundle: ModelBundle
    models: Mapping[str, Champion]


class MonitoredSource(RegistrySource):
    """The registry source of serving restricted to the monitored models."""

    def names(self) -> list[str]:
        """churn and clv (required), activation when it has a champion."""
        return [*REQUIRED, *OPTIONAL_MODELS]


def load_champions(settings: Settings) -> Champions:
    """The champions of churn, clv (both required) and activation (if any), downloaded and
    checked as serving loads them; ModelNotReady when a run lacks its training cutoffs."""
    from training import tracking

    source = MonitoredSource(settings)
    versions = source.versions()
    client = tracking.client(settings, create=False)
    models = {name: _champion(client, v) for name, v in versions.items() if name in MONITORED}
    return Champions(source.load(), models)


def _champion(client: Any, version: Any) -> Champion:
    """A Champion from its ModelVersion and the version's training run."""
    run = client.get_run(str(version.run_id))
    text = run.data.tags.get("cutoffs", "")
    cutoffs = tuple(as_cutoff(day) for day in text.split(",") if day.strip())
    if not cutoffs:
        raise ModelNotReady(
            f"{version.name} version {version.version}: its run records no training cutoffs "
            f"(tag 'cutoffs'); retrain it with `memberscore train {version.name}`"
        )
    backtest = {k: float(v) for k, v in run.data.metrics.items() if k.startswith("backtest_")}
    tag = (version.tags or {}).get(REFERENCE_TAG)
    return Champion(
        str(version.name),
        str(version.version),
        str(version.run_id),
        cutoffs,
        backtest,
        psi.from_json(tag) if tag else {},
    )


def record_references(
    settings: Settings, champion: Champion, references: Mapping[str, psi.Reference]
) -> None:
    """Store the score references of `champion` on its version (tag REFERENCE_TAG), where the
    score API reads them for its drift gauges; left as is when already recorded."""
    from training import tracking

    if champion.references:
        return
    client = tracking.client(settings, create=False)
    text = psi.to_json(references)
    client.set_model_version_tag(champion.name, champion.version, REFERENCE_TAG, text)
