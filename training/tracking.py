"""MLflow I/O: runs, the model registry and promotion by alias.

The tracking URI always comes from settings (never MLflow's default); each task has its own
experiment whose artifacts live under `settings.mlflow_artifact_root/<task>`. A trained model is
logged twice from one folder: as the pyfunc `model` (predict returns probabilities or spend)
and as the plain `native` artifact (boosters + model.json) for fast serving. `train` points
alias `challenger` at the new version; `promote` moves `champion` to it only if it beats the
champion on the task's primary backtest metric (tag `backtest_<metric>` on each version) and
its quality grade (tag `quality_grade`, `training.core.gates`) is not D.

No member's data is logged: figures and tables are aggregates, and the pyfunc's input example
is one synthetic row (`typical_row`: medians and most frequent levels, no ids; left out when a
member's row happens to equal it), the signature built from the training columns.

Every registered version also carries `artifact_sha256` (CHECKSUM_TAG): the sha256 of each file
of the folder serving loads (the `native` folder of a task model, the version's own artifacts
otherwise), so a file damaged in the artifact store is refused at load. The registry database is
reached within `mlflow_timeout_seconds` (`client`): an unreachable one fails fast instead of
through MLflow's own connection retries (about 100 s).
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memberscore.errors import MemberscoreError, ModelNotReady, StoreUnavailable
from memberscore.redact import redact
from memberscore.settings import Settings
from training.core.tasks import Task
from training.models import persistence

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow import ActiveRun, MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.signature import ModelSignature

CHAMPION, CHALLENGER = "champion", "challenger"
GRADE_TAG, NOTES_TAG = "quality_grade", "quality_notes"
NATIVE_DIR = "native"
MODEL_NAME = "model"
CHECKSUM_TAG = "artifact_sha256"
# Dialects whose drivers take a `connect_timeout` query parameter (seconds).
TIMEOUT_DIALECTS = ("postgresql", "mysql")


class PromotionRefused(MemberscoreError):
    """The challenger does not beat the champion, or a forced promotion lacks a reason."""


class RegistryNotFound(ModelNotReady):
    """The SQLite file the tracking URI names does not exist (a reader never creates it)."""


@dataclass(frozen=True)
class RunRecord:
    """What one training run left in MLflow."""

    run_id: str
    model_name: str
    version: str
    experiment_id: str


@dataclass(frozen=True)
class Promotion:
    """The outcome of `promote`: the new champion and the one it replaced (if any)."""

    model_name: str
    version: str
    previous: str | None
    metric: str
    value: float
    previous_value: float | None
    forced: bool

    def describe(self) -> str:
        """One line for the CLI."""
        before = (
            "no champion before"
            if self.previous is None
            else (f"replacing version {self.previous} ({self.metric} {self.previous_value:.4f})")
        )
        how = " (forced)" if self.forced else ""
        return (
            f"{self.model_name} version {self.version} is now {CHAMPION}{how}: {self.metric} "
            f"{self.value:.4f}, {before}"
        )


def client(settings: Settings, *, create: bool = True) -> MlflowClient:
    """An MLflow client on the settings' tracking URI (also set for the fluent API), after
    `require_store`: StoreUnavailable when the registry cannot be reached within
    `mlflow_timeout_seconds`; RegistryNotFound (with `create` False, as serving and batch
    scoring read) when a SQLite database file does not exist, rather than creating one."""
    import mlflow

    uri = tracking_uri(settings)
    require_store(settings, uri, create=create)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(uri, uri)


def tracking_uri(settings: Settings) -> str:
    """The settings' tracking URI, with `connect_timeout` (whole seconds, at least 2, as libpq
    takes it) added for PostgreSQL and MySQL unless the URI sets one: without it a database
    host that drops packets holds each connection attempt for minutes."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    uri = settings.mlflow_tracking_uri
    try:
        url = make_url(uri)
    except ArgumentError:
        return uri  # not a database URL (http, file): MLflow's own client handles it
    if url.get_backend_name() not in TIMEOUT_DIALECTS or "connect_timeout" in url.query:
        return uri
    seconds = max(2, math.ceil(settings.mlflow_timeout_seconds))
    bounded = url.update_query_dict({"connect_timeout": str(seconds)})
    return bounded.render_as_string(hide_password=False)


def require_store(settings: Settings, uri: str, *, create: bool) -> None:
    """Raise unless the tracking store of `uri` answers: a SQLite file must exist (unless
    `create`; else RegistryNotFound naming it), a database server must accept a connection
    within its `connect_timeout` and a tracking server answer /health within
    `mlflow_timeout_seconds` (else StoreUnavailable). Messages are redacted (no password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if uri.startswith(("http://", "https://")):
        return _require_server(uri, settings.mlflow_timeout_seconds)
    try:
        url = make_url(uri)
    except ArgumentError:
        return
    if url.get_backend_name() == "sqlite":
        if not create and url.database not in (None, "", ":memory:"):
            path = Path(str(url.database)).resolve()
            if not path.is_file():
                raise RegistryNotFound(
                    f"the MLflow tracking database {path} does not exist: set "
                    "MEMBERSCORE_MLFLOW_TRACKING_URI to the registry training wrote to, or run "
                    "`memberscore train` to create it"
                )
        return
    _require_database(uri)


def _require_database(uri: str) -> None:
    """One connection to the database of `uri` (its own connect_timeout bounds the wait)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as error:
        raise StoreUnavailable(
            f"the MLflow registry database at {redact(uri)} cannot be reached: "
            f"{redact(_first_line(error))}; check that it is running and reachable"
        ) from error


def _require_server(uri: str, timeout_seconds: float) -> None:
    """The MLflow tracking server at `uri` answers /health within `timeout_seconds`."""
    import requests

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_seconds).raise_for_status()
    except requests.RequestException as error:
        raise StoreUnavailable(
            f"the MLflow tracking server at {redact(uri)} does not answer: "
            f"{redact(_first_line(error))}; check that it is running and reachable"
        ) from error


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (drivers append hints and links below it)."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def experiment_id(settings: Settings, task_name: str) -> str:
    """The experiment `memberscore-<task_name>`, created with its artifacts under
    `mlflow_artifact_root/<task_name>`."""
    mlflow_client = client(settings)
    name = f"memberscore-{task_name}"
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (settings.mlflow_artifact_root.resolve() / task_name).as_uri()
    return str(mlflow_client.create_experiment(name, artifact_location=location))


def registry_name(task: Task, horizon_days: int, default_horizon: int) -> str:
    """`churn` for the default horizon, `churn_<h>d` for another (as serving expects)."""
    return task.name if horizon_days == default_horizon else f"{task.name}_{horizon_days}d"


def git_commit() -> str:
    """The current git commit, or 'unknown' outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (FileNotFoundError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def pip_requirements() -> list[str]:
    """Pinned requirements of the pyfunc (given explicitly: inferring them takes ~10 s)."""
    from importlib.metadata import version

    names = ("lightgbm", "pandas", "numpy", "scipy", "scikit-learn", "mlflow")
    return [f"{name}=={version(name)}" for name in names]


def pyfunc_input(model: persistence.Model, features: pd.DataFrame) -> pd.DataFrame:
    """Rows of raw features as the pyfunc receives them: floats and text (None when missing)."""
    frame = model.encoding_.frame(features)
    return text_as_objects(frame, model.encoding_.categories).reset_index(drop=True)


def typical_row(frame: pd.DataFrame, text: Iterable[str]) -> pd.DataFrame:
    """One synthetic row with the columns and types of `frame`: the most frequent level of
    each `text` (or other non-numeric) column, None when all are missing; False for booleans;
    the median of each other column, rounded when all its values are whole numbers (counts
    stay counts) and NaN when all are missing. Column-wise medians keep orderings that hold
    row by row (recency never above the days since the first order)."""
    names = {n for n in text if n in frame.columns}
    row: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if name in names or not pd.api.types.is_numeric_dtype(column):
            names.add(name)
            counts = column.dropna().astype(str).value_counts(sort=False)
            row[name] = min(counts[counts == counts.max()].index) if len(counts) else None
        elif pd.api.types.is_bool_dtype(column):
            row[name] = False
        else:
            values = column.dropna().astype(float)
            median = float(values.median()) if len(values) else float("nan")
            whole = not values.empty and bool((values == values.round()).all())
            row[name] = float(round(median)) if whole else median
    example = pd.DataFrame({n: [v] for n, v in row.items()}, index=[0], columns=frame.columns)
    for name in frame.columns:
        if name not in names:
            example[name] = example[name].astype(frame[name].dtype)
    return text_as_objects(example, [n for n in frame.columns if n in names])


def holds_row(frame: pd.DataFrame, row: pd.DataFrame) -> bool:
    """Whether some row of `frame` equals the one row of `row` in every column (missing
    values equal missing values)."""
    same = np.ones(len(frame), dtype=bool)
    for name in row.columns:
        value, column = row[name].iloc[0], frame[name]
        if pd.isna(value):
            same &= column.isna().to_numpy()
        else:
            same &= (column == value).fillna(False).to_numpy(dtype=bool)
    return bool(same.any())


def signature(
    example: pd.DataFrame, output: pd.DataFrame, optional: Iterable[str] = ()
) -> ModelSignature:
    """The pyfunc signature inferred from the synthetic `example` and its `output`, with the
    columns `optional` (those with missing values in training) marked not required."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    inferred = infer_signature(example, output)
    skip = set(optional)
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(col.type, col.name, required=col.required and col.name not in skip)
        for col in inferred.inputs.inputs
    ]
    return ModelSignature(Schema(inputs), inferred.outputs)


def missing_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of `frame` with at least one missing value."""
    return [str(name) for name in frame.columns if frame[name].isna().any()]


def text_as_objects(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """`frame` with the columns `names` as Python strings, None where missing: how a pyfunc
    signature expects text features."""
    for name in names:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def log_model(
    model: persistence.Model, features: pd.DataFrame, model_name: str, meta: Mapping[str, Any]
) -> str:
    """Log the native folder and the pyfunc in the active run, registering a new version of
    `model_name`; returns the version. Of the training rows `features` only their schema goes
    to MLflow: the signature (columns with missing values in training optional) and, as input
    example, their `typical_row` unless a member's row equals it. Requirements are explicit
    (inferring them is slow)."""
    import mlflow

    from training.models.pyfunc import ENTRY_POINT, MemberModel

    wrapper = MemberModel()
    frame = pyfunc_input(model, features)
    typical = typical_row(frame, model.encoding_.categories)
    example = None if holds_row(frame, typical) else typical
    with tempfile.TemporaryDirectory() as tmp:
        native = persistence.save(model, Path(tmp) / NATIVE_DIR, **meta)
        mlflow.log_artifacts(str(native), NATIVE_DIR)
        wrapper.model = model
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(ENTRY_POINT),
            artifacts={NATIVE_DIR: str(native)},
            signature=signature(typical, wrapper.predict(None, typical), missing_columns(frame)),
            input_example=example,
            pip_requirements=pip_requirements(),
            registered_model_name=model_name,
        )
    return str(info.registered_model_version)


@contextmanager
def training_run(
    settings: Settings,
    task_name: str,
    run_name: str,
    *,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
) -> Iterator[ActiveRun]:
    """An MLflow run in experiment `memberscore-<task_name>` with params (incl. the seed), tags
    (plus task and git commit) and the finite metrics logged; the caller logs its artifacts and
    model inside."""
    import mlflow

    experiment = experiment_id(settings, task_name)
    with mlflow.start_run(experiment_id=experiment, run_name=run_name) as run:
        mlflow.log_params(dict(params))
        mlflow.set_tags({**tags, "task": task_name, "git_commit": git_commit()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        yield run


def register_challenger(
    settings: Settings,
    run: ActiveRun,
    model_name: str,
    version: str,
    metric: str,
    value: float,
    tags: Mapping[str, str] | None = None,
    *,
    artifact_uri: str | None = None,
) -> RunRecord:
    """Tag a new version of `model_name` with the backtest `metric` it will be promoted on
    (`primary_metric` names it), `tags` and the checksums of `artifact_uri` (the folder
    serving loads; default the version's own artifacts, `models:/<name>/<version>`), and
    point alias `challenger` at it."""
    mlflow_client = client(settings)
    uri = artifact_uri or f"models:/{model_name}/{version}"
    record_checksums(mlflow_client, model_name, version, uri)
    mlflow_client.set_model_version_tag(model_name, version, metric, str(value))
    mlflow_client.set_model_version_tag(model_name, version, "primary_metric", metric)
    for key, text in (tags or {}).items():
        mlflow_client.set_model_version_tag(model_name, version, key, text)
    mlflow_client.set_registered_model_alias(model_name, CHALLENGER, version)
    return RunRecord(run.info.run_id, model_name, version, run.info.experiment_id)


def log_run(
    settings: Settings,
    task: Task,
    model_name: str,
    model: persistence.Model,
    *,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    figures: Mapping[str, Figure],
    tables: Mapping[str, pd.DataFrame],
    features: pd.DataFrame,
    meta: Mapping[str, Any],
    version_tags: Mapping[str, str] | None = None,
) -> RunRecord:
    """One training run of a LightGBM task model: `training_run`, the feature list, figures and
    tables as artifacts (aggregates only: no member rows), the model (`log_model`: of the
    training rows `features` only the schema and a synthetic example); then
    `register_challenger` on its primary backtest metric with `version_tags` (e.g. the
    quality grade) on the new version."""
    import mlflow

    with training_run(
        settings, task.name, model_name, params=params, tags=tags, metrics=metrics
    ) as run:
        mlflow.log_dict({"features": list(model.encoding_.feature_names)}, "features.json")
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        for name, table in tables.items():
            mlflow.log_text(table.to_csv(index=False), f"tables/{name}.csv")
        version = log_model(model, features, model_name, meta)
    key = f"backtest_{task.primary_metric}"
    native = f"runs:/{run.info.run_id}/{NATIVE_DIR}"
    return register_challenger(
        settings,
        run,
        model_name,
        version,
        key,
        metrics[key],
        version_tags or {},
        artifact_uri=native,
    )


def record_checksums(
    mlflow_client: MlflowClient, model_name: str, version: str, artifact_uri: str
) -> dict[str, str]:
    """Download `artifact_uri` as stored and tag the version with the sha256 of each of its
    files (CHECKSUM_TAG, JSON: path in the folder → hex digest); returns them."""
    import mlflow

    uri = mlflow_client.tracking_uri
    with tempfile.TemporaryDirectory() as tmp:
        folder = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=uri, registry_uri=uri
        )
        sums = persistence.checksums(Path(folder))
    text = json.dumps(sums, sort_keys=True)
    mlflow_client.set_model_version_tag(model_name, version, CHECKSUM_TAG, text)
    return sums


def recorded_checksums(version: ModelVersion) -> dict[str, str] | None:
    """The checksums recorded with `version` (`record_checksums`), or None for a version
    registered before they were; DamagedModel when the tag cannot be read."""
    text = (getattr(version, "tags", None) or {}).get(CHECKSUM_TAG)
    if text is None:
        return None
    try:
        sums = json.loads(text)
    except ValueError:
        sums = None
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise persistence.DamagedModel(
            f"{version.name} version {version.version}: its {CHECKSUM_TAG} tag cannot be read; "
            "register a new version with `memberscore train`"
        )
    return {str(k): v for k, v in sums.items()}


def aliased(mlflow_client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of `name` holding `alias`, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _score(version: ModelVersion) -> tuple[str, float]:
    """(metric tag, value) recorded on a version at training time."""
    key = version.tags.get("primary_metric")
    if key is None or key not in version.tags:
        raise PromotionRefused(
            f"version {version.version} of {version.name} has no backtest metric tag; "
            "retrain it with `memberscore train`"
        )
    return key, float(version.tags[key])


def promote(
    settings: Settings, model_name: str, *, force: bool = False, reason: str | None = None
) -> Promotion:
    """Point alias `champion` at the challenger if it beats the champion's backtest metric
    (strictly higher), or unconditionally with `force` and a `reason` (kept as version tags)."""
    mlflow_client = client(settings)
    challenger = aliased(mlflow_client, model_name, CHALLENGER)
    if challenger is None:
        raise ModelNotReady(f"{model_name} has no {CHALLENGER}; run `memberscore train` first")
    champion = aliased(mlflow_client, model_name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        raise PromotionRefused(f"{model_name} version {champion.version} is already {CHAMPION}")
    metric, value = _score(challenger)
    previous = None if champion is None else _score(champion)[1]
    if force and not (reason and reason.strip()):
        raise PromotionRefused("--force needs --reason saying why the gate is overridden")
    if not force and challenger.tags.get(GRADE_TAG) == "D":
        raise PromotionRefused(
            f"{model_name} version {challenger.version} has quality grade D "
            f"({challenger.tags.get(NOTES_TAG, 'no notes')}); not promoted. Use --force "
            "--reason '...' to override"
        )
    if not force and champion is not None and previous is not None and not value > previous:
        raise PromotionRefused(
            f"{model_name} version {challenger.version} ({metric} {value:.4f}) does not beat "
            f"{CHAMPION} version {champion.version} ({metric} {previous:.4f}); not promoted. "
            "Use --force --reason '...' to override"
        )
    if force:
        mlflow_client.set_model_version_tag(model_name, challenger.version, "forced", "true")
        mlflow_client.set_model_version_tag(
            model_name, challenger.version, "forced_reason", str(reason)
        )
    mlflow_client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
    return Promotion(
        model_name,
        str(challenger.version),
        None if champion is None else str(champion.version),
        metric,
        value,
        previous,
        force,
    )


def download_native(settings: Settings, model_name: str, alias: str, folder: Path) -> Path:
    """Download the native model folder of `model_name@alias` into `folder`; returns its path.

    For serving: `training.models.persistence.load(path)` then `model.predict_matrix(matrix)`.
    """
    import mlflow

    version = aliased(client(settings, create=False), model_name, alias)
    if version is None:
        raise ModelNotReady(f"no {model_name} model holds alias {alias!r}; train and promote one")
    path = Path(
        mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=NATIVE_DIR, dst_path=str(folder)
        )
    )
    sums = recorded_checksums(version)
    try:
        if sums is not None:
            persistence.verify(path, sums)
    except persistence.DamagedModel as error:
        raise refused(version, error, path, NATIVE_DIR) from error
    return path


def refused(
    version: ModelVersion, error: persistence.DamagedModel, folder: Path, artifact: str
) -> persistence.DamagedModel:
    """`error` (a file of the downloaded `folder`, the version's `artifact`) as the refusal of
    the version: model, version, file and what to do."""
    name = f"{artifact}/" if error.path is None else f"{artifact}/{_inside(error.path, folder)}"
    return persistence.DamagedModel(
        f"{version.name} version {version.version} refused: {name} {redact(error)}. Register a "
        f"good version (`memberscore train`, `memberscore promote {version.name}`) or point "
        f"alias {CHAMPION} back at the previous one",
        error.path,
    )


def _inside(path: Path, folder: Path) -> str:
    """`path` relative to `folder` ('/'-separated), or its name when outside it."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def cutoff_text(cutoffs: Sequence[pd.Timestamp]) -> str:
    """Cutoffs as comma-separated dates."""
    return ",".join(f"{c:%Y-%m-%d}" for c in cutoffs)


def compare_aliases(
    settings: Settings, model_name: str, aliases: Sequence[str] = (CHAMPION, CHALLENGER)
) -> pd.DataFrame:
    """One row per alias of `model_name` that is set: version, run id, the primary metric it
    would be promoted on and every `backtest_*` metric of its run (what `promote` compares)."""
    mlflow_client = client(settings)
    rows = []
    for alias in aliases:
        version = aliased(mlflow_client, model_name, alias)
        if version is None:
            continue
        run = mlflow_client.get_run(str(version.run_id))
        backtest = {k: v for k, v in run.data.metrics.items() if k.startswith("backtest_")}
        rows.append(
            {
                "alias": alias,
                "version": str(version.version),
                "run_id": version.run_id,
                "primary_metric": version.tags.get("primary_metric"),
                **dict(sorted(backtest.items())),
            }
        )
    return pd.DataFrame(rows).set_index("alias") if rows else pd.DataFrame()
