"""`pipelines.monitor.job` on a small synthetic programme: ten weekly snapshots drawn from one
stationary population, champions trained on the first four, orders after the latest cutoff
that depend on its recency. An undisturbed run is quiet; a drift injected into one feature of
the latest snapshot is flagged with the retraining command; the matured churn AUC equals
sklearn's on the same rows; repeated runs form MLflow time series."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.store import snapshot_path
from memberscore import lake
from memberscore.contract import MEMBERS, ORDERS
from memberscore.settings import MonitorSettings, Settings
from pipelines.monitor import job
from pipelines.monitor.champions import Champion, Champions
from serving.scoring.bundle import ModelBundle, ModelRef
from serving.scoring.registry import served_model
from training.models.boosting import BoostParams
from training.models.classifier import CalibratedClassifier
from training.models.spend import SpendModel

MEMBERS_N, BUYER_SHARE = 3_000, 0.8
CUTOFFS = [date(2025, 1, 6) + timedelta(weeks=k) for k in range(10)]
TRAINED_ON = CUTOFFS[:4]
LATEST = CUTOFFS[-1]
FEATURES = ["recency_days", "frequency", "monetary", "tier"]
TIERS = ["basic", "silver", "gold"]
PARAMS = BoostParams(num_boost_round=10, num_leaves=4, min_data_in_leaf=20, learning_rate=0.2)
HORIZONS = {"churn": (90, "churn_v1"), "activation": (30, "activation_v1"), "clv": (365, "clv_v1")}


def member_ids() -> np.ndarray:
    return np.array([f"m{i:05d}" for i in range(MEMBERS_N)])


def buyers() -> np.ndarray:
    return np.arange(MEMBERS_N) < int(BUYER_SHARE * MEMBERS_N)


def features_at(day: date) -> pd.DataFrame:
    """One seeded draw of the stationary population as the snapshot of `day`."""
    rng = np.random.default_rng(day.toordinal())
    bought = buyers()
    frame = pd.DataFrame(
        {
            "member_id": pd.array(member_ids(), dtype="string"),
            "as_of": pd.Timestamp(day, tz="UTC"),
            "recency_days": np.where(bought, rng.exponential(60, MEMBERS_N).round() + 1, np.nan),
            "frequency": pd.array(np.where(bought, rng.poisson(3, MEMBERS_N) + 1, 0), "Int64"),
            "monetary": np.where(bought, rng.gamma(2.0, 150.0, MEMBERS_N), 0.0),
            "tier": pd.array(rng.choice(TIERS, MEMBERS_N, p=[0.6, 0.3, 0.1]), dtype="string"),
            "has_ordered": pd.array(bought, dtype="boolean"),
        }
    )
    frame["as_of"] = frame["as_of"].astype("datetime64[us, UTC]")
    return frame


def p_buy(recency: np.ndarray) -> np.ndarray:
    """P(an order in the next 90 days) of a member with `recency` days since the last."""
    return 1 / (1 + np.nan_to_num(recency, nan=90.0) / 40)


def orders(latest: pd.DataFrame) -> pd.DataFrame:
    """Every buyer's first order (2024-06-01) and orders after LATEST driven by its recency;
    a few members without orders activate within 30 days."""
    rng = np.random.default_rng(5)
    ids, bought = member_ids(), buyers()
    start = pd.Timestamp(LATEST, tz="UTC")
    buys = bought & (rng.random(MEMBERS_N) < p_buy(latest["recency_days"].to_numpy()))
    activates = ~bought & (rng.random(MEMBERS_N) < 0.3)
    when = np.where(activates, rng.integers(0, 30, MEMBERS_N), rng.integers(0, 90, MEMBERS_N))
    rows = [
        (ids[bought], pd.Timestamp("2024-06-01", tz="UTC")),
        (ids[buys | activates], start + pd.to_timedelta(when[buys | activates], unit="D")),
        (ids[:1], pd.Timestamp("2025-06-30 12:00", tz="UTC")),  # the data ends 2025-07-01
    ]
    frame = pd.concat(
        [pd.DataFrame({"member_id": m, "ordered_at": t}) for m, t in rows], ignore_index=True
    )
    n = len(frame)
    return pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "member_id": frame["member_id"],
            "ordered_at": frame["ordered_at"],
            "amount": 50.0,
            "discount": 0.0,
            "items": 1,
            "channel": "online",
            "coupon_id": None,
            "is_return": False,
        }
    )


def members() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": member_ids(),
            "registered_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "acquisition_channel": "web",
            "region": "north",
            "gender": "unknown",
            "birth_year": 1980,
            "tier": "basic",
            "consent_marketing": True,
            "consent_personalization": True,
            "is_derived": False,
        }
    )


def champion_models() -> dict[str, object]:
    """Tiny real models of the three tasks, fitted on the training snapshots."""
    train = pd.concat([features_at(d) for d in TRAINED_ON], ignore_index=True)
    rng = np.random.default_rng(9)
    fit, calib = train.iloc[: len(train) // 2], train.iloc[len(train) // 2 :]
    churned = (rng.random(len(train)) > p_buy(train["recency_days"].to_numpy())).astype(float)
    spend = train["monetary"].to_numpy() * rng.random(len(train))
    x = train[FEATURES]
    half = len(train) // 2

    def classifier(y: np.ndarray) -> CalibratedClassifier:
        return CalibratedClassifier(PARAMS).fit(
            x.iloc[:half], y[:half], X_calib=x.iloc[half:], y_calib=y[half:]
        )

    del fit, calib
    activated = (rng.random(len(train)) < 0.3).astype(float)
    return {
        "churn": classifier(churned),
        "activation": classifier(activated),
        "clv": SpendModel(PARAMS).fit(
            x.iloc[:half], spend[:half], X_calib=x.iloc[half:], y_calib=spend[half:]
        ),
    }


@pytest.fixture(scope="module")
def trained() -> dict[str, object]:
    return champion_models()


def champions(trained: dict[str, object], references: dict[str, dict] | None = None) -> Champions:
    models, found = {}, {}
    for name, (horizon, service) in HORIZONS.items():
        ref = ModelRef(name, "3", "champion", f"run-{name}")
        models[name] = served_model(
            trained[name], {"horizon_days": horizon, "feature_service": service}, ref
        )
        backtest = {"backtest_roc_auc": 0.62, "backtest_ece": 0.03}
        if name == "activation":  # its labels are noise: it was promoted at chance
            backtest = {"backtest_roc_auc": 0.5, "backtest_ece": 0.03}
        if name == "clv":
            backtest = {"backtest_normalized_gini": 0.4, "backtest_bias_pct": 2.0}
        found[name] = Champion(
            name,
            "3",
            f"run-{name}",
            tuple(pd.Timestamp(d, tz="UTC") for d in TRAINED_ON),
            backtest,
            (references or {}).get(name, {}),
        )
    return Champions(ModelBundle(models), found)


@pytest.fixture
def world(settings: Settings) -> Settings:
    """The programme in `settings`' data folder (settings with a 3,000-row sample: the whole
    latest population, 750 members of each training snapshot)."""
    settings = settings.model_copy(update={"monitor": MonitorSettings(sample_rows=3_000)})
    for day in CUTOFFS:
        path = snapshot_path(settings, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        features_at(day).to_parquet(path, index=False)
    lake.write(members(), MEMBERS, settings.lake_dir, "test")
    lake.write(orders(features_at(LATEST)), ORDERS, settings.lake_dir, "test")
    return settings


NOW = datetime(2025, 7, 2, 6, 0, tzinfo=UTC)


def test_an_undisturbed_run_is_quiet_and_writes_its_report(
    world: Settings, trained: dict[str, object]
) -> None:
    report = job.run(world, champions=champions(trained), now=NOW, track=False)
    assert not report.drifted, report.headline()
    assert report.as_of == pd.Timestamp(LATEST, tz="UTC")
    assert set(report.checks) == {"churn", "activation", "clv"}
    churn = report.checks["churn"]
    assert churn.reference_cutoffs == tuple(pd.Timestamp(d, tz="UTC") for d in TRAINED_ON)
    assert churn.reference_rows == 3_000, "the sample is shared between the training snapshots"
    assert churn.matured is not None and churn.matured.out_of_time
    assert report.checks["clv"].matured is None, "365 days have not passed since any cutoff"
    assert "stable" in report.headline() and "clv v3" in report.headline()
    assert report.report_path == world.data_dir / "monitor" / "2025-07-02" / "report.html"
    page = report.report_path.read_text()
    assert page.count("data:image/png;base64,") == 6, "two plots per champion, inline"


def test_a_drift_injected_into_one_feature_is_flagged(
    world: Settings, trained: dict[str, object]
) -> None:
    drifted = features_at(LATEST)
    drifted["monetary"] *= 3.0  # a currency change upstream
    drifted.to_parquet(snapshot_path(world, LATEST), index=False)
    report = job.run(world, champions=champions(trained), now=NOW, track=False)
    assert report.drifted
    subjects = {(f.model, f.subject) for f in report.findings if f.cause == "drift"}
    assert ("churn", "monetary") in subjects and ("clv", "monetary") in subjects
    assert not {s for _, s in subjects} - {"monetary", "spend_mean", "churn_90d"}, subjects
    assert not report.checks["activation"].drifted, "non-buyers' monetary is 0 before and after"
    assert "memberscore train clv && memberscore promote clv" in report.headline()


def test_matured_auc_equals_sklearn_on_the_same_rows(
    world: Settings, trained: dict[str, object]
) -> None:
    champs = champions(trained)
    report = job.run(world, champions=champs, now=NOW, track=False, write_report=False)
    matured = report.checks["churn"].matured
    assert matured is not None and matured.cutoff == pd.Timestamp(LATEST, tz="UTC")
    assert matured.source == "recomputed"
    # By hand: every buyer of the latest snapshot, churned = no order in [cutoff, +90 d).
    snapshot = features_at(LATEST)
    rows = snapshot.loc[snapshot["has_ordered"].to_numpy(dtype=bool)]
    model = champs.bundle.models["churn"]
    levels = {level: float(k) for k, level in enumerate(model.categories["tier"])}
    p = model.predictor.predict(
        rows[FEATURES].assign(tier=rows["tier"].map(levels)).to_numpy(float)
    )
    placed = orders(snapshot)
    start = pd.Timestamp(LATEST, tz="UTC")
    window = placed.loc[
        (placed["ordered_at"] >= start) & (placed["ordered_at"] < start + pd.Timedelta(days=90))
    ]
    churned = (~rows["member_id"].isin(window["member_id"])).to_numpy(dtype=float)
    assert matured.figures["rows"] == len(rows)
    assert matured.figures["roc_auc"] == pytest.approx(roc_auc_score(churned, p.ravel()), abs=1e-12)
    assert matured.promoted["roc_auc"] == 0.62


def test_repeated_runs_form_mlflow_series_and_record_the_score_reference(
    world: Settings, trained: dict[str, object]
) -> None:
    from serving.api.metrics import registry_references
    from training import tracking

    client = tracking.client(world)
    for name in HORIZONS:  # versions 1..3 of each model; the champions are version 3
        client.create_registered_model(name)
        for _ in range(3):
            client.create_model_version(name, source=(world.data_dir / name).as_uri())
    runs = [
        job.run(
            world, champions=champions(trained), now=NOW + timedelta(days=k), write_report=not k
        )
        for k in (0, 7)
    ]
    experiment = client.get_experiment_by_name("memberscore-monitor")
    assert experiment is not None
    logged = [client.get_run(str(r.run_id)) for r in runs]
    assert logged[0].info.run_id != logged[1].info.run_id, "one run per invocation"
    assert {r.info.experiment_id for r in logged} == {experiment.experiment_id}
    history = client.get_metric_history(logged[1].info.run_id, "churn/score_psi")
    assert history[0].step == (LATEST - date(1970, 1, 1)).days, "step: the snapshot's day"
    assert history[0].timestamp == int((NOW + timedelta(days=7)).timestamp() * 1000)
    assert "churn/psi/monetary" in logged[0].data.metrics
    assert logged[0].data.tags["churn_version"] == "3"
    names = {a.path for a in client.list_artifacts(logged[0].info.run_id)}
    assert {"report.html", "findings.json", "drift"} <= names
    served = registry_references(world, champions(trained).bundle)
    recorded = {c.score: c.score_reference for c in runs[1].checks.values()}
    assert served == recorded, "the API compares served scores with the monitor's reference"
