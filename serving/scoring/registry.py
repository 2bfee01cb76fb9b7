"""The MLflow registry as a bundle source: every model by alias `champion`, loaded from the
`native` artifact of its run (LightGBM boosters + model.json via
`training.models.persistence.load`), never through pyfunc.

Served names: `churn`, `activation`, `clv` (all required), `churn_<h>d` for each other
horizon in `settings.churn_horizons_days` that has a champion, `uplift` (the
next-best-action engine's `decisions.uplift.UpliftModel`, from its pyfunc) and `btyd` (the BTYD
outlook, `training.jobs.outlook`) when registered.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from memberscore.errors import ModelNotReady, StoreUnavailable
from memberscore.settings import Settings
from serving.scoring.bundle import ModelBundle, ModelRef, ServedModel

REQUIRED = ("churn", "activation", "clv")
UPLIFT = "uplift"
OUTLOOK = "btyd"
ALIAS = "champion"


class ModelPredictor:
    """A `training.models` model (calibrated classifier or spend model) as a Predictor."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, or (n, 3) p10 / p50 / p90 spend."""
        return np.asarray(self.model.predict_matrix(matrix), dtype=float)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions on the log-odds scale, bias last."""
        return np.asarray(self.model.contributions(matrix), dtype=float)


@contextmanager
def _registry_reachable(settings: Settings) -> Iterator[None]:
    """Registry failures (database down, artifact store unreadable) become StoreUnavailable."""
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, sqlalchemy.exc.OperationalError, OSError) as error:
        raise StoreUnavailable(
            f"the MLflow registry at {settings.mlflow_tracking_uri} cannot be read "
            f"({type(error).__name__})"
        ) from error


class RegistrySource:
    """Champions in the MLflow registry of `settings`."""

    def __init__(self, settings: Settings, alias: str = ALIAS) -> None:
        self.settings = settings
        self.alias = alias

    def names(self) -> list[str]:
        """Registry names to serve: the required three, then the other churn horizons."""
        default = self.settings.churn_horizon_days
        extra = [f"churn_{h}d" for h in self.settings.churn_horizons_days if h != default]
        return [*REQUIRED, *extra, UPLIFT, OUTLOOK]

    def versions(self) -> dict[str, Any]:
        """Name → the ModelVersion holding the alias; ModelNotReady if a required one lacks it."""
        from training import tracking

        with _registry_reachable(self.settings):
            client = tracking.client(self.settings)
            found = {name: tracking.aliased(client, name, self.alias) for name in self.names()}
        missing = [name for name in REQUIRED if found[name] is None]
        if missing:
            raise ModelNotReady(
                f"no {self.alias} registered for {', '.join(missing)}: run `memberscore train` "
                "and `memberscore promote`"
            )
        return {name: version for name, version in found.items() if version is not None}

    def fingerprint(self) -> dict[str, str]:
        """Name → version the alias points at now (registry look-ups only, no download)."""
        return {name: str(v.version) for name, v in self.versions().items()}

    def load(self) -> ModelBundle:
        """Download and load every champion into a new bundle."""
        versions = self.versions()
        uplift, outlook = versions.pop(UPLIFT, None), versions.pop(OUTLOOK, None)
        with tempfile.TemporaryDirectory(prefix="memberscore-models-") as tmp:
            models = {
                name: self._load(version, Path(tmp) / name) for name, version in versions.items()
            }
        return ModelBundle(
            models,
            uplift=None if uplift is None else self._load_uplift(uplift),
            uplift_ref=self._ref(uplift),
            outlook=None if outlook is None else self._load_outlook(outlook),
            outlook_ref=self._ref(outlook),
        )

    def _ref(self, version: Any) -> ModelRef | None:
        """The registry reference of `version` (None for None)."""
        if version is None:
            return None
        return ModelRef(version.name, str(version.version), self.alias, version.run_id)

    def _load_outlook(self, version: Any) -> Any:
        """The BTYD outlook of this exact version."""
        from training.jobs import outlook as outlook_job

        with _registry_reachable(self.settings):
            return outlook_job.load_version(version.run_id)

    def _load_uplift(self, version: Any) -> Any:
        """The UpliftModel inside the pyfunc of this exact version (not the moving alias)."""
        import mlflow

        with _registry_reachable(self.settings):
            uri = f"models:/{version.name}/{version.version}"
            wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
        model = getattr(wrapper, "model", None)
        if model is None or not hasattr(model, "predict_arrays"):
            raise ModelNotReady(f"{version.name} version {version.version} is not an uplift model")
        return model

    def _load(self, version: Any, folder: Path) -> ServedModel:
        """One model version from the `native` folder of its run."""
        import mlflow

        from training import tracking
        from training.models import persistence as models

        with _registry_reachable(self.settings):
            path = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=version.run_id, artifact_path=tracking.NATIVE_DIR, dst_path=str(folder)
                )
            )
        ref = ModelRef(version.name, str(version.version), self.alias, version.run_id)
        return served_model(models.load(path), models.read_meta(path), ref)


def served_model(model: Any, meta: Mapping[str, Any], ref: ModelRef) -> ServedModel:
    """A trained `training.models` model (and the meta it was saved with: `horizon_days`,
    `feature_service`, optionally `serving_outputs`) as the API and batch scoring serve it."""
    return ServedModel(
        ref=ref,
        feature_names=tuple(model.encoding_.feature_names),
        predictor=ModelPredictor(model),
        loaded_at=datetime.now(UTC),
        horizon_days=int(meta["horizon_days"]),
        feature_service=str(meta["feature_service"]),
        categories=dict(model.encoding_.categories),
        outputs=tuple(meta.get("serving_outputs", model.outputs)),
    )
