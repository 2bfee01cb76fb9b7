"""Models from a real (temporary) MLflow registry: trained with `training.models`,
registered with their `native` artifact and alias `champion`, served and swapped by
`serving.scoring.registry`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from memberscore.errors import ModelNotReady
from memberscore.settings import Settings
from serving.api.deps import get_model_holder
from serving.scoring.bundle import ModelHolder, ModelQuality
from serving.scoring.registry import RegistrySource, quality_of
from serving.scoring.score import encode
from training import tracking
from training.models import persistence
from training.models.boosting import BoostParams
from training.models.classifier import CalibratedClassifier
from training.models.spend import SpendModel

SPEC = {"churn": (90, "churn_v1"), "activation": (30, "activation_v1"), "clv": (365, "clv_v1")}


def training_frame(member_rows: dict[str, dict[str, Any]], seed: int) -> pd.DataFrame:
    """The conftest members, resampled to 400 rows with noise: raw feature columns."""
    rng = np.random.default_rng(seed)
    base = pd.DataFrame.from_dict(member_rows, orient="index")
    frame = base.sample(400, replace=True, random_state=seed).reset_index(drop=True)
    for column in ("recency_days", "frequency", "monetary", "tenure_days"):
        frame[column] = frame[column].astype(float) * rng.uniform(0.5, 1.5, len(frame))
    frame["tier"] = frame["tier"].astype("string")
    return frame[["recency_days", "frequency", "monetary", "tenure_days", "tier"]]


def fit(name: str, frame: pd.DataFrame, seed: int) -> Any:
    """A small model of the kind `training` fits for `name`."""
    params = BoostParams(seed=seed, num_boost_round=10, min_data_in_leaf=5)
    half = len(frame) // 2
    if name == "clv":
        y = np.where(frame["recency_days"].fillna(400) < 150, frame["monetary"].fillna(0), 0.0)
        model = SpendModel(params)
    else:
        y = (frame["recency_days"].fillna(400) > 120).to_numpy(dtype=float)
        model = CalibratedClassifier(params)
    return model.fit(frame[:half], y[:half], X_calib=frame[half:], y_calib=y[half:])


def register(settings: Settings, name: str, model: Any) -> str:
    """Log the native folder in a run, register a version from it and make it champion."""
    import mlflow

    client = tracking.client(settings)
    if client.get_experiment_by_name("serving-test") is None:
        client.create_experiment("serving-test", (settings.mlflow_artifact_root).resolve().as_uri())
    experiment = client.get_experiment_by_name("serving-test").experiment_id
    horizon, service = SPEC[name]
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=experiment) as run:
        native = persistence.save(
            model,
            Path(tmp) / "native",
            horizon_days=horizon,
            feature_service=service,
            serving_outputs=list(model.outputs),
        )
        mlflow.log_artifacts(str(native), tracking.NATIVE_DIR)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/native", run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    return str(version.version)


def materialized(registry: Settings, name: str, snapshot: pd.DataFrame, families: dict) -> Settings:
    """`registry` with a local Feast store of its own (`name`) holding `snapshot`, applied and
    materialized."""
    from features import build, store

    root = registry.data_dir.parent / name
    settings = registry.model_copy(
        update={
            "data_dir": root / "data",
            "feast_repo": root / "feature_repo",
            "feast_project": f"serving_{name}",
        }
    )
    build.write_snapshot(snapshot, store.snapshot_path(settings, snapshot["as_of"][0].date()))
    store.apply(settings, families)
    store.materialize(settings)
    return settings


def ready(client: TestClient, seconds: float = 30.0) -> Any:
    """The first 200 of /readyz within `seconds` (the app loads its models in the background),
    or the last answer."""
    import time

    deadline = time.monotonic() + seconds
    answer = client.get("/readyz")
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = client.get("/readyz")
    return answer


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, member_rows: dict[str, dict[str, Any]]
) -> Settings:
    """A temp MLflow store with champions of churn, activation and clv (version 1 each)."""
    return champions_in(tmp_path_factory.mktemp("serving_mlflow"), member_rows, seed=1)


def champions_in(root: Path, member_rows: dict[str, dict[str, Any]], seed: int) -> Settings:
    """Settings of a new MLflow store under `root` holding champions of churn, activation and
    clv (version 1 each), fitted on `member_rows` with `seed`."""
    settings = Settings(
        data_dir=root / "data",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "artifacts",
    )
    frame = training_frame(member_rows, seed=seed)
    for name in SPEC:
        register(settings, name, fit(name, frame, seed=seed))
    return settings


def test_champions_are_loaded_natively_and_encoded_as_in_training(
    registry: Settings, member_rows: dict[str, dict[str, Any]]
) -> None:
    bundle = RegistrySource(registry).load()
    churn = bundle.models["churn"]
    rows = [member_rows[m] for m in ("m1", "m2", "n3")]

    ours = encode(rows, churn)
    theirs = churn.predictor.model.encoding_.matrix(pd.DataFrame(rows))

    assert bundle.fingerprint == {"churn": "1", "activation": "1", "clv": "1"}
    assert (churn.horizon_days, churn.feature_service) == (90, "churn_v1")
    np.testing.assert_array_equal(ours, theirs, err_msg="serving must encode like training")
    clv = bundle.models["clv"]
    assert clv.predictor.predict(ours).shape == (3, len(clv.outputs))
    assert {"p10", "p50", "p90"} <= set(clv.outputs), "served columns are named by the model"


def test_quality_tags_of_a_version_are_served(registry: Settings) -> None:
    """Given a clv version tagged with its quality grade, notes and horizons, the bundle's
    reference carries them; an untagged version gets its horizon from the model's meta."""
    client = tracking.client(registry)
    tags = {
        "quality_grade": "B",
        "quality_notes": "calibrated; interval covers 0.78",
        "horizon_days": "365",
        "label_horizon_days": "180",
    }
    for key, value in tags.items():
        client.set_model_version_tag("clv", "1", key, value)

    refs = RegistrySource(registry).load().refs()

    assert refs["clv"].quality == ModelQuality("B", tags["quality_notes"], 365, 180)
    assert refs["activation"].quality == ModelQuality(horizon_days=30), "untagged: meta horizon"


def test_unreadable_quality_tags_are_none() -> None:
    quality = quality_of({"quality_grade": "E", "horizon_days": "a year", "quality_notes": ""})
    assert quality == ModelQuality(), "a grade outside A-D, days that are no number: None"
    assert quality_of({"quality_grade": "D", "label_horizon_days": "90"}) == ModelQuality(
        grade="D", label_horizon_days=90
    )


def test_scores_and_hot_swap_from_the_registry(
    client: TestClient,
    registry: Settings,
    member_rows: dict[str, dict[str, Any]],
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    holder = ModelHolder(RegistrySource(registry))
    holder.refresh()
    client.app.dependency_overrides[get_model_holder] = lambda: holder
    before = client.get("/v1/members/m3/scores", headers=read_headers).json()

    # When a new churn champion is registered and a reload is asked for
    new_version = register(registry, "churn", fit("churn", training_frame(member_rows, 2), 2))
    reload = client.post("/v1/admin/reload", headers=write_headers).json()
    after = client.get("/v1/members/m3/scores", headers=read_headers).json()

    # Then it serves the new version without a restart
    assert before["model_versions"]["churn"] == "1" and before["spend"]["p10"] >= 0
    assert reload == {
        "swapped": True,
        "models": {"churn": new_version, "activation": "1", "clv": "1"},
    }
    assert after["model_versions"]["churn"] == new_version


def test_missing_champion_is_model_not_ready(tmp_path: Path) -> None:
    """Only the required models are named: activation is optional."""
    settings = Settings(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    tracking.client(settings).search_registered_models()  # training creates the database

    with pytest.raises(ModelNotReady, match=r"no champion registered for churn, clv: run"):
        RegistrySource(settings).fingerprint()


def test_a_bundle_without_an_activation_champion_loads(
    registry: Settings,
    member_rows: dict[str, dict[str, Any]],
    snapshot: pd.DataFrame,
    tmp_path: Path,
) -> None:
    """Given churn and clv champions but none for activation (a programme where every member
    has bought), the bundle loads without it, says why it is not served, and scores a member
    without orders with a null activation; batch scoring from the registry (what
    `memberscore batch-score` runs) writes its rows and report."""
    from pipelines.batch import job as batch
    from pipelines.batch import manifest as mf
    from serving.scoring.adapters import LibraryDomain
    from serving.scoring.score import score
    from serving.scoring.sources import MemberFeatures
    from tests.pipelines.batch.world import write_snapshot
    from tests.serving.conftest import CUTOFF

    client = tracking.client(registry)
    version = client.get_model_version_by_alias("activation", "champion").version
    client.delete_registered_model_alias("activation", "champion")
    settings = write_snapshot(registry, snapshot, data_dir=tmp_path / "data")
    try:
        bundle = RegistrySource(registry).load()
        summary = batch.run(settings, CUTOFF, tmp_path / "batch", progress=False)
    finally:
        client.set_registered_model_alias("activation", "champion", version)

    assert set(bundle.fingerprint) == {"churn", "clv"}, bundle.fingerprint
    assert bundle.get("activation") is None
    assert bundle.not_served() == {
        "activation": "no champion; train activation when the programme has members without orders"
    }
    features = MemberFeatures(
        {"n1": member_rows["n1"]}, {"n1": pd.Timestamp("2026-06-01", tz="UTC")}
    )
    domain = LibraryDomain(None, None, Settings().decisions, {})
    card = score(["n1"], features, bundle, domain, Settings()).scores[0]
    assert card.insufficient_history and card.activation is None and card.reasons == []
    assert card.lifecycle.stage == "registered"
    rows = mf.read_scores(summary.out)
    assert len(rows) == 45 and rows["activation"].isna().all()
    assert summary.report is not None and "not served" in summary.report.read_text()


def test_the_real_lifespan_loads_champions_and_polls_for_new_ones(
    registry: Settings,
    snapshot: pd.DataFrame,
    families: dict,
    member_rows: dict[str, dict[str, Any]],
    serving_settings: Settings,
    read_headers: dict[str, str],
) -> None:
    """Nothing faked: registry, Feast store, contact log and domain libraries as in production
    (local profile); a champion registered while it runs is served within a few polls."""
    import time

    from serving.api.app import create_app

    settings = materialized(registry, "lifespan", snapshot, families).model_copy(
        update={"serving": serving_settings.serving.model_copy(update={"model_poll_seconds": 0.2})}
    )

    with TestClient(create_app(settings)) as client:
        assert ready(client).json() == {"status": "ok", "reasons": []}, "loads in the background"
        scores = client.get("/v1/members/m3/scores", headers=read_headers)
        new = register(settings, "clv", fit("clv", training_frame(member_rows, 3), 3))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            served = client.get("/v1/models", headers=read_headers).json()
            if {m["name"]: m["version"] for m in served["models"]}["clv"] == new:
                break
            time.sleep(0.1)

    assert scores.status_code == 200, scores.text
    assert {m["name"]: m["version"] for m in served["models"]}["clv"] == new, "poll picks it up"


def test_uplift_champion_rides_in_the_bundle(registry: Settings) -> None:
    """A registered `uplift` champion is loaded from its exact version and listed."""
    import mlflow

    from decisions.catalogue import load_catalogue
    from decisions.uplift import prior_only_model
    from training.jobs import uplift

    model = prior_only_model(load_catalogue())
    client = tracking.client(registry)
    experiment = client.get_experiment_by_name("serving-test").experiment_id
    with mlflow.start_run(experiment_id=experiment):
        version = uplift._log_model(model, [], pd.DataFrame({"member_id": ["m1", "m2"]}))
    client.set_registered_model_alias("uplift", "champion", version)

    bundle = RegistrySource(registry).load()

    assert bundle.fingerprint["uplift"] == version
    assert bundle.uplift.predict_arrays(pd.DataFrame(index=["m1"])).source[0] == "prior"
    pyfunc = mlflow.pyfunc.load_model(f"models:/uplift/{version}")
    assert pyfunc.metadata.get_input_schema().input_names() == ["member_id"]
    answer = pyfunc.predict(pd.DataFrame({"member_id": ["m7"]}))
    assert set(answer["member_id"]) == {"m7"} and set(answer["source"]) == {"prior"}
    client.delete_registered_model_alias("uplift", "champion")


def test_btyd_champion_rides_in_the_bundle(
    registry: Settings, member_rows: dict[str, dict[str, Any]]
) -> None:
    """A registered `btyd` champion is loaded from its exact version into the bundle: its
    version is one of the served versions and P(alive) comes from it."""
    from features.families.btyd import fit_family
    from serving.scoring.adapters import LibraryDomain
    from serving.scoring.score import score
    from serving.scoring.sources import MemberFeatures
    from tests.serving.api.test_outlook import history
    from training.jobs import outlook as outlook_job

    outlook = fit_family(history())
    as_of, scores = pd.Timestamp("2024-05-06"), {"roc_auc": 0.7}
    record = outlook_job.log_outlook(registry, outlook, as_of, scores, {})
    client = tracking.client(registry)
    client.set_registered_model_alias("btyd", "champion", record.version)
    try:
        bundle = RegistrySource(registry).load()
    finally:
        client.delete_registered_model_alias("btyd", "champion")

    assert bundle.fingerprint["btyd"] == record.version
    assert bundle.outlook.params() == pytest.approx(outlook.params())
    features = MemberFeatures(
        {"m1": member_rows["m1"]}, {"m1": pd.Timestamp("2024-05-06", tz="UTC")}
    )
    domain = LibraryDomain(None, None, Settings().decisions, {})
    card = score(["m1"], features, bundle, domain, Settings()).scores[0]
    assert card.model_versions["btyd"] == record.version and card.p_alive is not None


def test_publish_scores_every_member_with_the_champions(
    registry: Settings, snapshot: pd.DataFrame, families: dict
) -> None:
    """`publish.run` writes one current card per snapshot member (online and in Parquet),
    under the key of the champions it loaded; the counts add up."""
    from features import store
    from pipelines import publish
    from serving.online.feast_reader import FeastReader
    from serving.scoring.cards import card_key

    settings = materialized(registry, "publish", snapshot, families)
    settings = settings.model_copy(update={"batch_workers": 1})  # no worker processes to start
    lines: list[str] = []

    report = publish.run(settings, chunk_members=4, progress=lines.append)

    ids = snapshot["member_id"].tolist()
    key = card_key(RegistrySource(settings).load(), settings)
    cards = FeastReader(settings).published(ids)
    copy = pd.read_parquet(store.published_path(settings))
    assert report.members == report.published == len(ids) == len(copy)
    assert sorted(cards) == sorted(ids) and all(c.current(key) for c in cards.values())
    assert report.key == key and set(copy["models"]) == {key}
    assert len(lines) == -(-len(ids) // 4), "one progress line per chunk"
