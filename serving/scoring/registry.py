"""The MLflow registry as a bundle source: every model by alias `champion`, loaded from the
`native` artifact of its run (LightGBM boosters + model.json via
`training.models.persistence.load`), never through pyfunc.

Served names: `churn` and `clv` (required), `activation` when it has a champion (optional:
a programme where every member has bought has no activation population, so none can be
trained; `serving.scoring.bundle.OPTIONAL_MODELS`), `churn_<h>d` for each other horizon in
`settings.churn_horizons_days` that has a champion, `uplift` (the next-best-action engine's
`decisions.uplift.UpliftModel`, from its pyfunc) and `btyd` (the BTYD outlook,
`training.jobs.outlook`) when registered. Each reference carries the quality training tagged
its version with (`quality_grade`, `quality_notes`, `horizon_days`, `label_horizon_days`;
`serving.scoring.bundle.ModelQuality`).

Nothing is served unchecked: each downloaded folder must match the checksums recorded at
registration (`training.tracking.CHECKSUM_TAG`, when the version has them), and every booster is
loaded once in a short child process (`training.models.persistence.probe`) before this process
loads it, since LightGBM kills the process on a damaged file. A refused version raises
`DamagedModel` naming model, version and file; a holder keeps the bundle it serves.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import numpy as np

from memberscore.errors import ModelNotReady, StoreUnavailable
from memberscore.redact import redact
from memberscore.settings import Settings
from serving.schemas import Grade
from serving.scoring.bundle import (
    OPTIONAL_MODELS,
    ModelBundle,
    ModelQuality,
    ModelRef,
    ServedModel,
)

REQUIRED = ("churn", "clv")
UPLIFT = "uplift"
OUTLOOK = "btyd"
ALIAS = "champion"
# Model-version tags `training` writes (`training.tracking.GRADE_TAG`, `NOTES_TAG` and the
# horizons of `training.jobs.train`).
GRADE_TAG, NOTES_TAG = "quality_grade", "quality_notes"
HORIZON_TAG, LABEL_HORIZON_TAG = "horizon_days", "label_horizon_days"
GRADES: dict[str, Grade] = {grade: grade for grade in get_args(Grade)}


class ModelPredictor:
    """A `training.models` model (calibrated classifier or spend model) as a Predictor."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, or the spend model's (n, len(outputs)) columns."""
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
            redact(
                f"the MLflow registry at {settings.mlflow_tracking_uri} cannot be read "
                f"({type(error).__name__})"
            )
        ) from error


class RegistrySource:
    """Champions in the MLflow registry of `settings`."""

    def __init__(self, settings: Settings, alias: str = ALIAS) -> None:
        self.settings = settings
        self.alias = alias

    def names(self) -> list[str]:
        """Registry names to serve: the required ones, the optional ones (activation), then
        the other churn horizons, uplift and the BTYD outlook."""
        default = self.settings.churn_horizon_days
        extra = [f"churn_{h}d" for h in self.settings.churn_horizons_days if h != default]
        return [*REQUIRED, *OPTIONAL_MODELS, *extra, UPLIFT, OUTLOOK]

    def versions(self) -> dict[str, Any]:
        """Name → the ModelVersion holding the alias, for the names that have one;
        ModelNotReady if a required one (REQUIRED) lacks it."""
        from training import tracking

        with _registry_reachable(self.settings):
            client = tracking.client(self.settings, create=False)
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
        """Download, check and load every champion into a new bundle; DamagedModel when a
        version's files fail their checksums or the booster probe."""
        versions = self.versions()
        uplift, outlook = versions.pop(UPLIFT, None), versions.pop(OUTLOOK, None)
        with tempfile.TemporaryDirectory(prefix="memberscore-models-") as tmp:
            root = Path(tmp)
            folders = {name: self._download(v, root / name) for name, v in versions.items()}
            _probe(versions, folders)
            models = {name: self._load(versions[name], folders[name]) for name in versions}
            return ModelBundle(
                models,
                uplift=None if uplift is None else self._load_uplift(uplift, root / UPLIFT),
                uplift_ref=self._ref(uplift),
                outlook=None if outlook is None else self._load_outlook(outlook, root / OUTLOOK),
                outlook_ref=self._ref(outlook),
            )

    def _ref(self, version: Any) -> ModelRef | None:
        """The registry reference of `version` (None for None)."""
        return None if version is None else version_ref(version, self.alias)

    def _load_outlook(self, version: Any, folder: Path) -> Any:
        """The BTYD outlook of this exact version, from its checked artifacts."""
        import json

        from training.jobs import outlook as outlook_job

        uri = f"models:/{version.name}/{version.version}"
        path = self._fetch(version, uri, folder, outlook_job.ARTIFACT_DIR)
        try:
            document = json.loads((path / outlook_job.ARTIFACT_FILE).read_text())
            return outlook_job.outlook_from_document(document)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise _unreadable(version, outlook_job.ARTIFACT_FILE, error) from error

    def _load_uplift(self, version: Any, folder: Path) -> Any:
        """The UpliftModel inside the pyfunc of this exact version (not the moving alias),
        from its checked artifacts."""
        import mlflow

        uri = f"models:/{version.name}/{version.version}"
        path = self._fetch(version, uri, folder, "model")
        with _registry_reachable(self.settings):
            wrapper = mlflow.pyfunc.load_model(str(path)).unwrap_python_model()
        model = getattr(wrapper, "model", None)
        if model is None or not hasattr(model, "predict_arrays"):
            raise ModelNotReady(f"{version.name} version {version.version} is not an uplift model")
        return model

    def _download(self, version: Any, folder: Path) -> Path:
        """The `native` folder of `version`'s run, downloaded into `folder` and checked."""
        from training import tracking

        uri = f"runs:/{version.run_id}/{tracking.NATIVE_DIR}"
        return self._fetch(version, uri, folder, tracking.NATIVE_DIR)

    def _fetch(self, version: Any, uri: str, folder: Path, artifact: str) -> Path:
        """Artifacts `uri` of `version` in `folder`, checked against the checksums recorded at
        registration when it has them; DamagedModel naming the file (as `artifact/<file>`)
        otherwise."""
        import mlflow

        from training import tracking
        from training.models import persistence

        with _registry_reachable(self.settings):
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
        try:
            sums = tracking.recorded_checksums(version)
            if sums is not None:
                persistence.verify(path, sums)
        except persistence.DamagedModel as error:
            raise tracking.refused(version, error, path, artifact) from error
        return path

    def _load(self, version: Any, path: Path) -> ServedModel:
        """One model version from its downloaded, checked and probed `native` folder."""
        from training.models import persistence as models

        try:
            model, meta = models.load(path), models.read_meta(path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise _unreadable(version, models.META_FILE, error) from error
        return served_model(model, meta, version_ref(version, self.alias))


def _probe(versions: Mapping[str, Any], folders: Mapping[str, Path]) -> None:
    """Every booster of `folders` loaded in a child process first (`persistence.probe`); the
    version whose file fails is refused (DamagedModel naming model, version and file)."""
    from training import tracking
    from training.models import persistence

    try:
        persistence.probe(list(folders.values()))
    except persistence.DamagedModel as error:
        culprit = next(
            (n for n, f in folders.items() if error.path and error.path.parent == f), None
        )
        if culprit is None:
            raise persistence.DamagedModel(
                f"the boosters of {', '.join(versions)} {redact(error)}"
            ) from error
        folder = folders[culprit]
        raise tracking.refused(versions[culprit], error, folder, tracking.NATIVE_DIR) from error


def _unreadable(version: Any, file: str, error: Exception) -> ModelNotReady:
    """A version whose checked files still do not load (e.g. one registered before
    checksums, with a damaged JSON file): refused, naming model, version and file."""
    from training.models import persistence

    return persistence.DamagedModel(
        f"{version.name} version {version.version} refused: {file} cannot be read "
        f"({type(error).__name__}: {redact(error)[:200]}). Register a good version "
        f"(`memberscore train`, `memberscore promote {version.name}`)"
    )


def version_ref(version: Any, alias: str) -> ModelRef:
    """The reference of an MLflow ModelVersion held by `alias`, with its quality tags."""
    quality = quality_of(getattr(version, "tags", None) or {})
    return ModelRef(version.name, str(version.version), alias, version.run_id, quality)


def quality_of(tags: Mapping[str, str]) -> ModelQuality:
    """The quality recorded in a model version's tags; a tag that is absent or unreadable (a
    grade outside A-D, days that are not a whole number) is None."""
    return ModelQuality(
        grade=GRADES.get(tags.get(GRADE_TAG, "")),
        notes=tags.get(NOTES_TAG) or None,
        horizon_days=_days(tags.get(HORIZON_TAG)),
        label_horizon_days=_days(tags.get(LABEL_HORIZON_TAG)),
    )


def _days(text: Any) -> int | None:
    """A tag or meta value holding a whole number of days, or None."""
    try:
        return None if text is None else int(text)
    except (TypeError, ValueError):
        return None


def served_model(model: Any, meta: Mapping[str, Any], ref: ModelRef) -> ServedModel:
    """A trained `training.models` model (and the meta it was saved with: `horizon_days`,
    `feature_service`, optionally `serving_outputs` and `label_horizon_days`) as the API and
    batch scoring serve it; horizons the version's tags lack are taken from the meta."""
    horizon, quality = int(meta["horizon_days"]), ref.quality
    quality = replace(
        quality,
        horizon_days=quality.horizon_days or horizon,
        label_horizon_days=quality.label_horizon_days or _days(meta.get("label_horizon_days")),
    )
    return ServedModel(
        ref=replace(ref, quality=quality),
        feature_names=tuple(model.encoding_.feature_names),
        predictor=ModelPredictor(model),
        loaded_at=datetime.now(UTC),
        horizon_days=horizon,
        feature_service=str(meta["feature_service"]),
        categories=dict(model.encoding_.categories),
        outputs=tuple(meta.get("serving_outputs", model.outputs)),
    )
