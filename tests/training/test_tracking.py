"""MLflow: a training run registers a pyfunc returning probabilities; the promotion gate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.errors import ModelNotReady
from memberscore.settings import Settings
from training import tracking
from training.core import dataset
from training.core.labels import as_cutoff, observed_until
from training.core.tasks import TASKS
from training.jobs import train as job
from training.models import persistence
from training.models.boosting import BoostParams


@pytest.fixture
def trained(mlflow_settings: Settings, programme, rfm) -> tuple[job.TrainReport, pd.DataFrame]:
    """One churn training run on the synthetic programme, logged to the temp store."""
    members, orders = programme
    settings = mlflow_settings
    cutoffs = [as_cutoff("2023-03-01") + pd.Timedelta(days=28 * i) for i in range(10)]
    plan = job.make_plan(
        settings, TASKS["churn"], orders, horizon_days=90, cutoffs=[c.date() for c in cutoffs]
    )
    params = BoostParams(seed=settings.seed, num_boost_round=30, min_data_in_leaf=20)
    plan = replace(plan, params=params)
    end = observed_until(orders)
    frame = dataset.join_features(
        dataset.entity_frame(TASKS["churn"], members, orders, plan.cutoffs, 90, end, 0),
        rfm(members, orders, plan.cutoffs),
    )
    data = dataset.training_data(TASKS["churn"], members, orders, frame, 0.0)
    return job.train(settings, plan, data), frame


def test_train_logs_a_pyfunc_returning_probabilities(
    mlflow_settings: Settings, trained, tmp_path: Path
) -> None:
    """The registered pyfunc predicts probabilities in [0, 1] (not 0/1 labels); the run
    records seed, feature service, git commit and data window; alias challenger is set; the
    native artifact (serving's fast path) predicts the same probabilities."""
    import mlflow

    settings, (report, frame) = mlflow_settings, trained
    client = tracking.client(settings)
    version = client.get_model_version_by_alias("churn", tracking.CHALLENGER)
    assert str(version.version) == report.record.version == "1"
    run = client.get_run(report.record.run_id)
    assert run.data.params["seed"] == str(settings.seed)
    assert run.data.tags["feature_service"] == "churn_v1"
    assert run.data.tags["git_commit"] and "data_window" in run.data.tags
    assert "backtest_roc_auc" in run.data.metrics and "backtest_btyd_roc_auc" in run.data.metrics
    assert version.tags["quality_grade"] == report.grade.letter in "ABC", "beats the baseline"
    assert version.tags["horizon_days"] == "90"
    label = int(version.tags["label_horizon_days"])
    assert label == 90 or (label < 90 and label % 7 == 0), "the horizon, or whole weeks below"
    model = mlflow.pyfunc.load_model("models:/churn@challenger")
    features = frame[list(report_features(settings, tmp_path))].head(50)
    native = _native(settings, tmp_path)
    p = model.predict(tracking.pyfunc_input(native, features))["probability"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all() and not np.isin(p, [0.0, 1.0]).all(), "probabilities"
    assert np.allclose(native.predict_matrix(native.encoding_.matrix(features)), p)
    meta = persistence.read_meta(tmp_path / tracking.NATIVE_DIR)
    assert meta["feature_service"] == "churn_v1" and meta["horizon_days"] == 90
    assert str(settings.mlflow_artifact_root.resolve()) in run.info.artifact_uri


def test_a_training_run_records_the_checksums_of_its_native_folder(
    mlflow_settings: Settings, trained, tmp_path: Path
) -> None:
    """Issue 14 finding 1. The registered version carries the sha256 of every file of the
    `native` folder serving loads (in the registry database, so damage to the artifact store
    is caught); a file changed after registration is refused, naming model, version and file."""
    import json

    client = tracking.client(mlflow_settings)
    version = client.get_model_version_by_alias("churn", tracking.CHALLENGER)
    folder = tracking.download_native(mlflow_settings, "churn", tracking.CHALLENGER, tmp_path)

    recorded = json.loads(version.tags[tracking.CHECKSUM_TAG])

    assert recorded == persistence.checksums(folder), "the stored folder, file by file"
    assert set(recorded) == {"booster.txt", "model.json"}
    run = client.get_run(version.run_id)
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / tracking.NATIVE_DIR
    (stored / "model.json").write_text("{}")
    with pytest.raises(
        persistence.DamagedModel, match=r"churn version 1 refused: native/model\.json"
    ):
        tracking.download_native(mlflow_settings, "churn", tracking.CHALLENGER, tmp_path / "again")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "postgresql+psycopg://ms:pw@db.internal/mlflow",
            "postgresql+psycopg://ms:pw@db.internal/mlflow?connect_timeout=5",
        ),
        (
            "postgresql+psycopg://ms:pw@db/mlflow?sslmode=require&connect_timeout=30",
            "postgresql+psycopg://ms:pw@db/mlflow?sslmode=require&connect_timeout=30",
        ),
        ("sqlite:///mlruns/mlflow.db", "sqlite:///mlruns/mlflow.db"),
        ("http://mlflow.internal:5000", "http://mlflow.internal:5000"),
    ],
)
def test_the_tracking_uri_bounds_database_connections(uri: str, expected: str) -> None:
    """Issue 14 finding 5. A PostgreSQL registry URI gets a connect_timeout (from
    `mlflow_timeout_seconds`) unless it sets its own; other URIs are used as given."""
    assert tracking.tracking_uri(Settings(mlflow_tracking_uri=uri)) == expected


def test_training_may_create_the_sqlite_registry_but_readers_may_not(tmp_path: Path) -> None:
    """Issue 14 finding 5. Training creates the SQLite database on first use; a reader
    (`create=False`, as serving and batch scoring ask) gets an error naming the path."""
    path = tmp_path / "new" / "mlflow.db"
    settings = Settings(mlflow_tracking_uri=f"sqlite:///{path}")

    with pytest.raises(tracking.RegistryNotFound, match=f"tracking database {path} does not"):
        tracking.client(settings, create=False)
    assert not path.exists()
    tracking.client(settings).search_registered_models()
    assert path.is_file(), "training creates it"


def report_features(settings: Settings, tmp: Path) -> tuple[str, ...]:
    """The feature names of the challenger's native model."""
    return _native(settings, tmp / "names").encoding_.feature_names


def _native(settings: Settings, tmp: Path) -> persistence.Model:
    """The challenger's native model, downloaded without pyfunc."""
    return persistence.load(tracking.download_native(settings, "churn", tracking.CHALLENGER, tmp))


def fake_version(settings: Settings, name: str, roc_auc: float, grade: str = "B") -> str:
    """A registered version with a backtest tag, made challenger (no model files needed)."""
    import mlflow

    client = tracking.client(settings)
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings, "churn")) as run:
        pass
    version = client.create_model_version(name, run.info.artifact_uri, run.info.run_id).version
    client.set_model_version_tag(name, version, "primary_metric", "backtest_roc_auc")
    client.set_model_version_tag(name, version, "backtest_roc_auc", str(roc_auc))
    client.set_model_version_tag(name, version, tracking.GRADE_TAG, grade)
    client.set_model_version_tag(name, version, tracking.NOTES_TAG, "a note")
    client.set_registered_model_alias(name, tracking.CHALLENGER, version)
    return str(version)


def test_promotion_gate(mlflow_settings: Settings) -> None:
    """First challenger becomes champion; a better one replaces it; a grade D one (worse than
    the naive baseline) and a worse one are refused; --force needs a reason, which is kept on
    the version."""
    settings = mlflow_settings
    with pytest.raises(ModelNotReady):
        tracking.promote(settings, "gate")
    first = fake_version(settings, "gate", 0.70)
    assert tracking.promote(settings, "gate").version == first
    better = fake_version(settings, "gate", 0.75)
    promoted = tracking.promote(settings, "gate")
    assert (promoted.version, promoted.previous) == (better, first)
    fake_version(settings, "gate", 0.90, grade="D")
    with pytest.raises(tracking.PromotionRefused, match="quality grade D \\(a note\\)"):
        tracking.promote(settings, "gate")
    worse = fake_version(settings, "gate", 0.72)
    with pytest.raises(tracking.PromotionRefused, match="does not beat"):
        tracking.promote(settings, "gate")
    with pytest.raises(tracking.PromotionRefused, match="--reason"):
        tracking.promote(settings, "gate", force=True)
    forced = tracking.promote(settings, "gate", force=True, reason="new feature set, see #42")
    client = tracking.client(settings)
    champion = client.get_model_version_by_alias("gate", tracking.CHAMPION)
    assert forced.forced and str(champion.version) == worse
    assert champion.tags["forced_reason"] == "new feature set, see #42"


def test_the_typical_row_is_made_up_yet_keeps_types_counts_and_orderings() -> None:
    """Issue 17 (MLflow input examples). Given member rows, the typical row has their columns
    and types: medians (whole where every value is whole, so a count stays a count), the most
    frequent level, False for flags, NaN when nobody has a value; it is no member's row here.
    When every member has the same row, that row is held and not usable as an example."""
    rows = pd.DataFrame(
        {
            "frequency": [1.0, 2.0, 3.0, 4.0],
            "recency_days": [1.0, 3.0, 5.0, 30.0],
            "days_since_first_order": [2.0, 3.5, 9.0, 40.0],
            "count": pd.array([1, 2, 2, 9], dtype="int64"),
            "vip": [True, True, False, True],
            "never": [np.nan] * 4,
            "region": ["north", "south", "south", None],
        }
    )
    rows["region"] = rows["region"].astype(object)

    row = tracking.typical_row(rows, ["region"])

    assert list(row.columns) == list(rows.columns) and len(row) == 1
    assert dict(row.dtypes) == {**dict(rows.dtypes), "region": np.dtype(object)}, "same types"
    values = row.iloc[0].to_dict()
    assert values["frequency"] == 2.0, "median 2.5 of whole numbers rounds to a whole count"
    assert values["recency_days"] == 4.0 and values["days_since_first_order"] == 6.25
    assert values["recency_days"] <= values["days_since_first_order"], "row-wise order kept"
    assert values["count"] == 2 and not values["vip"], "a median count, flags False"
    assert np.isnan(values["never"]) and values["region"] == "south"
    assert not tracking.holds_row(rows, row), "no member has this row"
    same = pd.concat([row] * 3, ignore_index=True)
    assert tracking.holds_row(same, tracking.typical_row(same, ["region"])), "a member's row"
