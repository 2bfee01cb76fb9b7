"""The immutable set of models a request is scored with, and the holder that swaps it.

A request takes `holder.current` once and keeps that bundle to the end, so a reload (by the
background poll or `POST /v1/admin/reload`) never mixes two versions in one answer and never
fails a request in flight: the old bundle lives on until its last request drops it. A load that
fails (registry away, a version refused as damaged) changes nothing but `last_error`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from memberscore.errors import ModelNotReady
from memberscore.redact import redact
from serving.schemas import Grade

# Models a bundle may lack, and why one is then not served. A programme where every member has
# bought has no activation population (training's data gates refuse it): churn and clv are
# enough to score it; members without orders then get no activation score (null).
OPTIONAL_MODELS: Mapping[str, str] = MappingProxyType(
    {"activation": "no champion; train activation when the programme has members without orders"}
)
# Models whose SHAP contributions give the reasons: churn for members with orders, activation
# for the others (`serving.scoring.frames.contributions`).
REASON_MODELS = ("churn", "activation")


class Predictor(Protocol):
    """A fitted model on a numeric matrix whose columns follow `ServedModel.feature_names`."""

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """One output per row: a calibrated probability, or a value in the model's unit."""
        ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-row, per-feature contributions (SHAP values, raw-score scale), bias last."""
        ...


@dataclass(frozen=True)
class ModelQuality:
    """What training recorded about a model version (its registry tags), None where untagged.

    `grade` is A (best) to D (not promoted without force); `notes` say why in a few words.
    `horizon_days` is the window the model forecasts; `label_horizon_days` the window its
    labels covered, shorter when the forecast was extended with BTYD beyond the labelled
    history (days).
    """

    grade: Grade | None = None
    notes: str | None = None
    horizon_days: int | None = None
    label_horizon_days: int | None = None


@dataclass(frozen=True)
class ModelRef:
    """Where a model version lives in the registry, and the quality recorded with it."""

    name: str
    version: str
    alias: str
    run_id: str
    quality: ModelQuality = ModelQuality()


@dataclass(frozen=True)
class ServedModel:
    """A registry model version loaded for serving.

    `categories` maps each categorical feature to its levels in training order (a value is
    encoded as its index; unseen levels and missing values as NaN). `outputs` names the columns
    `predictor.predict` returns: ("probability",) for classifiers; for the spend model
    ("orders_mean", "spend_mean", "p10", "p50", "p90") (expected orders, expected spend and the
    spend interval), or ("p10", "p50", "p90") for models trained before the means. Readers take
    columns by name. `horizon_days` is the window the model forecasts (days).
    """

    ref: ModelRef
    feature_names: tuple[str, ...]
    predictor: Predictor
    loaded_at: datetime
    horizon_days: int
    feature_service: str
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("probability",)


@dataclass(frozen=True)
class ModelBundle:
    """Every served model, keyed by registry name (e.g. 'churn', 'activation', 'clv'), the
    uplift model of the next-best-action engine and the BTYD outlook (a
    `features.btyd.outlook.BtydOutlook`: P(alive), next-order date) when they are registered.
    A model of OPTIONAL_MODELS may be absent (`not_served` says so); its scores are then
    null."""

    models: Mapping[str, ServedModel]
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    uplift: Any = None
    uplift_ref: ModelRef | None = None
    outlook: Any = None
    outlook_ref: ModelRef | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))

    @property
    def fingerprint(self) -> dict[str, str]:
        """Model name → version: equal fingerprints mean the same models."""
        return {name: ref.version for name, ref in self.refs().items()}

    def refs(self) -> dict[str, ModelRef]:
        """Registry name → reference of every served model, uplift and outlook included."""
        found = {name: model.ref for name, model in self.models.items()}
        for ref in (self.uplift_ref, self.outlook_ref):
            if ref is not None:
                found[ref.name] = ref
        return found

    def get(self, name: str) -> ServedModel | None:
        """The model registered as `name`, or None when the registry has none."""
        return self.models.get(name)

    def not_served(self) -> dict[str, str]:
        """Name → why, for each model of OPTIONAL_MODELS this bundle lacks."""
        return {name: why for name, why in OPTIONAL_MODELS.items() if name not in self.models}


class BundleSource(Protocol):
    """Where bundles come from: the MLflow registry in production, a fake in tests."""

    def fingerprint(self) -> dict[str, str]:
        """Versions the source would load now (cheap: no artifact download)."""
        ...

    def load(self) -> ModelBundle:
        """Load every model; raises ModelNotReady or StoreUnavailable."""
        ...


class ModelHolder:
    """Holds the current bundle; `refresh` swaps in a new one when the registry changed."""

    def __init__(self, source: BundleSource) -> None:
        self._source = source
        self._bundle: ModelBundle | None = None
        self._lock = threading.Lock()
        self._loading = False
        self.last_error: str | None = None

    @property
    def current(self) -> ModelBundle:
        """The bundle to score with; raises ModelNotReady before the first successful load."""
        bundle = self._bundle
        if bundle is None:
            raise ModelNotReady(self.last_error or "no model loaded yet")
        return bundle

    @property
    def loaded(self) -> bool:
        """True once a bundle has been loaded."""
        return self._bundle is not None

    @property
    def loading(self) -> bool:
        """True while a refresh runs (at start-up: the first load, in the background)."""
        return self._loading

    def refresh(self, *, force: bool = False) -> bool:
        """Load and swap in a new bundle if the source's versions changed; True if swapped.

        On failure the current bundle stays and the error is kept in `last_error` (redacted)
        and raised.
        """
        with self._lock:
            self._loading = True
            try:
                current = self._bundle
                if not force and current and self._source.fingerprint() == current.fingerprint:
                    self.last_error = None
                    return False
                bundle = self._source.load()
                prepare_reasons(bundle)
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {redact(error)}"
                raise
            finally:
                self._loading = False
            self._bundle = bundle  # one reference assignment: atomic for readers
            self.last_error = None
            return True


def prepare_reasons(bundle: ModelBundle) -> None:
    """Explain one row of missing values with each of the bundle's `REASON_MODELS`, so that
    what their contributions need (the SHAP tables, built in 0.3–1.8 s per model:
    `training.models.tree_shap`) is built while the bundle loads, not by its first request."""
    for name in REASON_MODELS:
        model = bundle.get(name)
        if model is not None:
            model.predictor.contributions(np.full((1, len(model.feature_names)), np.nan))
