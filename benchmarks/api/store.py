"""A small trained store for the API benchmark: simulated members, the lake, feature snapshots
in Feast (applied and materialized), and champions of every served model in MLflow, the
next-best action's uplift model included.

Everything lives under one folder and is built with the package functions; a finished build
leaves `built.json` and is reused by the next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from memberscore.settings import Settings

START = date(2024, 1, 1)
DAYS = 730
FIRST_CUTOFF = date(2024, 2, 5)
EVERY_DAYS = 28
TRAIN_EVERY_DAYS = 56
# The demo's 365-day CLV horizon needs three years of history; two simulated years train the
# CLV model on 180 days (served under its own horizon, like any other).
CLV_HORIZON_DAYS = 180
MARKER = "built.json"
UPLIFT = "uplift"  # the marker's key: the uplift champion is registered
UPLIFT_MIN_CONTACTS = 100


@dataclass(frozen=True)
class Store:
    """Where the benchmark store lives and the environment that points a process at it."""

    root: Path

    @property
    def env(self) -> dict[str, str]:
        """MEMBERSCORE_* variables for the server and the build (settings from the env)."""
        return {
            "MEMBERSCORE_DATA_DIR": str(self.root / "data"),
            "MEMBERSCORE_FEAST_REPO": str(self.root / "feature_repo"),
            "MEMBERSCORE_FEAST_PROJECT": "apibench",
            "MEMBERSCORE_MLFLOW_TRACKING_URI": f"sqlite:///{self.root / 'mlflow.db'}",
            "MEMBERSCORE_MLFLOW_ARTIFACT_ROOT": str(self.root / "artifacts"),
            "MEMBERSCORE_CLV_HORIZON_DAYS": str(CLV_HORIZON_DAYS),
        }

    def settings(self) -> Settings:
        """The settings `env` describes."""
        return Settings(
            data_dir=self.root / "data",
            feast_repo=self.root / "feature_repo",
            feast_project="apibench",
            mlflow_tracking_uri=f"sqlite:///{self.root / 'mlflow.db'}",
            mlflow_artifact_root=self.root / "artifacts",
            clv_horizon_days=CLV_HORIZON_DAYS,
        )

    @property
    def built(self) -> bool:
        return (self.root / MARKER).exists()


def build(store: Store, members: int, seed: int, echo=print) -> None:
    """Simulate, ingest, build/apply/materialize features, train and promote every model:
    churn (each configured horizon), activation, clv and uplift."""
    from features import build as features_build
    from features import store as feast_store
    from memberscore.contract import TABLES
    from pipelines import simulate
    from pipelines.ingest import tables as ingest
    from training import tracking
    from training.core.tasks import get_task
    from training.jobs import train as job

    settings = store.settings()
    echo(simulate.run(settings, members=members, days=DAYS, seed=seed, start=START).describe())
    for name in TABLES:
        source = settings.raw_dir / f"{name}.parquet"
        echo(ingest.ingest(settings, name, str(source), currency=settings.currency).describe())
    last = START + timedelta(days=DAYS - 1)
    cutoffs = features_build.cutoffs(last, FIRST_CUTOFF, EVERY_DAYS)
    features_build.run(settings, cutoffs, echo=lambda _: None)
    feast_store.apply(settings)
    echo(feast_store.materialize(settings).describe())
    jobs: list[tuple[str, int | None]] = [("churn", h) for h in settings.churn_horizons_days]
    jobs += [("activation", None), ("clv", None)]
    for task, horizon in jobs:
        plan, frame = job.prepare(
            settings, get_task(task), horizon_days=horizon, every_days=TRAIN_EVERY_DAYS
        )
        name = job.train(settings, plan, frame).record.model_name
        echo(tracking.promote(settings, name, force=True, reason="benchmark").describe())
    train_uplift(store, echo)
    (store.root / MARKER).write_text(json.dumps({"members": members, "seed": seed, UPLIFT: True}))


def train_uplift(store: Store, echo=print) -> None:
    """Learn the next-best action's uplift model from the simulated campaign log and promote
    it (a store built before the next-best-action steps lacks it). The store's 3,000 members
    get about 180 contacts per action: each action needs UPLIFT_MIN_CONTACTS treated and
    control ones (300 by default) to be learned, as the demo's 20,000 members' are."""
    from training import tracking
    from training.jobs import uplift

    settings = store.settings()
    rules = settings.decisions.uplift.model_copy(
        update={"min_treated": UPLIFT_MIN_CONTACTS, "min_control": UPLIFT_MIN_CONTACTS}
    )
    decisions = settings.decisions.model_copy(update={"uplift": rules})
    settings = settings.model_copy(update={"decisions": decisions})
    echo(uplift.train(settings).describe())
    echo(tracking.promote(settings, "uplift", force=True, reason="benchmark").describe())


def has_uplift(store: Store) -> bool:
    """Whether the built store's marker records the uplift model."""
    return bool(json.loads((store.root / MARKER).read_text()).get(UPLIFT))


def mark_uplift(store: Store) -> None:
    """Record in the marker that the uplift model is trained."""
    marker = store.root / MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), UPLIFT: True}))
