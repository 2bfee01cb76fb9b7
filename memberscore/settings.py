"""The one typed settings object.

Values come, highest priority first, from: keyword arguments, environment variables
`MEMBERSCORE_*`, the TOML file named by `MEMBERSCORE_CONFIG` (default `memberscore.toml` in the
working directory, if present), and the defaults below. Relative paths are relative to the working
directory. Read settings through `get_settings()`; nothing here runs at import time.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from memberscore.decision_settings import DecisionSettings

Profile = Literal["local", "production"]
KeyHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ServingSettings(BaseModel):
    """The score API: who may call it, how big a request may be, how often to look for a model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: tuple[tuple[KeyHash, Literal["read", "write"]], ...] = Field(
        (),
        description="(sha256 hex of an API key, scope) pairs; 'write' also grants 'read'. Keys "
        "themselves are never stored: `memberscore api-key new --scope read` prints both.",
    )
    model_poll_seconds: float = Field(
        60.0, gt=0, description="Seconds between looks for a new champion in the registry."
    )
    max_body_bytes: int = Field(1_000_000, gt=0, description="Largest request body (bytes).")
    store_timeout_seconds: float = Field(
        1.0,
        gt=0,
        description="Longest wait for the online store or the contact log in one request "
        "(seconds); past it the request answers 503 and the worker stays free.",
    )
    max_decision_members: int = Field(
        1000,
        ge=1,
        le=1000,
        description="Most members one POST /v1/next-best-action may name (the CPU one call "
        "may take); a longer list answers 422 naming this setting.",
    )
    decision_members_per_second: float | None = Field(
        None,
        gt=0,
        description="Members per second each API key may ask next-best actions for, per "
        "server process (bursts up to max_decision_members); past it 429 with Retry-After. "
        "None: no limit.",
    )


class MonitorSettings(BaseModel):
    """`memberscore monitor` and the score API's drift gauges: when a champion has drifted or
    decayed. PSI (population stability index) compares shares over reference bins: below 0.1
    is stable, 0.1-0.25 a moderate shift, above 0.25 a large one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_alert: float = Field(
        0.25, gt=0, description="PSI of a feature or a score at which it has drifted."
    )
    missing_change: float = Field(
        0.10, gt=0, le=1, description="Change of a feature's missing share (0..1) that is drift."
    )
    auc_drop: float = Field(
        0.05, ge=0, description="Matured ROC AUC this far below the promoted backtest is decay."
    )
    ece_rise: float = Field(
        0.05, ge=0, description="Matured ECE this far above the promoted backtest is decay."
    )
    gini_drop: float = Field(
        0.10, ge=0, description="Matured normalized Gini (clv) this far below backtest is decay."
    )
    bias_pct: float = Field(
        25.0, gt=0, description="Matured total bias beyond this many percent (either way) is decay."
    )
    bins: int = Field(10, ge=2, le=50, description="Equal-mass reference bins of a PSI.")
    sample_rows: int = Field(
        50_000,
        gt=0,
        description="Members drawn (seeded) from each population the monitor compares: the "
        "training snapshots (shared between them), the latest snapshot, the matured cutoff.",
    )
    served_window: int = Field(
        5_000, gt=0, description="Served scores per score name in the API's rolling PSI window."
    )
    served_min: int = Field(
        500, gt=0, description="Served scores needed before the API reports a score's PSI."
    )


class Settings(BaseSettings):
    """Paths, stores, horizons and seeds for every job. Immutable once built."""

    model_config = SettingsConfigDict(env_prefix="MEMBERSCORE_", frozen=True, extra="forbid")

    data_dir: Path = Field(Path("data"), description="Root of raw inputs, the lake and outputs.")
    feast_repo: Path = Field(
        Path("features/feature_repo"), description="Folder holding the Feast declarations."
    )
    feast_project: str = Field(
        "memberscore", pattern=r"^[A-Za-z0-9_]+$", description="Feast project (namespace) name."
    )
    profile: Profile = Field(
        "local",
        description="'local': SQLite online store, DuckDB offline store, file registry. "
        "'production': Redis online store, PostgreSQL registry, DuckDB offline store over the "
        "same Parquet snapshots.",
    )
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlruns/mlflow.db",
        description="MLflow tracking and registry. Default in the production profile: "
        "postgres_url (through psycopg 3).",
    )
    mlflow_artifact_root: Path = Field(Path("mlruns/artifacts"))
    mlflow_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest wait to connect to the MLflow tracking database (seconds, at "
        "least 2 for PostgreSQL); an unreachable registry fails within it instead of MLflow's "
        "own retries (about 100 s).",
    )
    postgres_url: str = Field("postgresql://postgres@127.0.0.1:5432/test")
    redis_url: str = Field(
        "127.0.0.1:6379", description="host:port of the production online store."
    )

    earliest_date: date = Field(
        date(1970, 1, 1),
        description="Dates before this day (orders, events, contacts, registrations) are "
        "implausible: ingest quarantines them and the API refuses them.",
    )
    future_tolerance_days: int = Field(
        1,
        ge=0,
        description="Dates more than this many days after the moment of ingest (or of the API "
        "call) are implausible and refused the same way (days).",
    )
    currency: str = Field("USD", description="ISO 4217 code; one currency per dataset.")
    seed: int = Field(42, description="Seed for simulation, sampling and model training.")
    chunk_rows: int = Field(200_000, gt=0, description="Rows per chunk when streaming inputs.")
    batch_workers: int = Field(
        2,
        gt=0,
        description="Parts scored at once: threads in batch-score (LightGBM releases the "
        "GIL), worker processes in publish-scores. Each holds one part in memory.",
    )

    churn_horizon_days: int = Field(90, gt=0, description="Default churn horizon (days).")
    churn_horizons_days: tuple[int, ...] = Field(
        (30, 90, 180), description="Churn horizons scored."
    )
    activation_horizon_days: int = Field(30, gt=0, description="Default activation horizon (days).")
    activation_horizons_days: tuple[int, ...] = Field((7, 30, 90))
    repurchase_days: int = Field(
        90,
        gt=0,
        description="KPI repurchase rate: a second order within this many days of the "
        "first (days; docs/kpis.md).",
    )
    clv_horizon_days: int = Field(365, gt=0, description="Horizon of future spend (days).")
    monthly_discount_rate: float = Field(0.01, ge=0, description="Monthly rate discounting CLV.")
    min_history_days: int = Field(
        90, ge=0, description="Training refuses data with fewer days from first order to end."
    )
    min_population: int = Field(
        200, ge=0, description="Training refuses a task population (at the latest cutoff) below."
    )
    min_class_rows: int = Field(
        50, ge=0, description="Training refuses when a class has fewer training rows than this."
    )
    serving: ServingSettings = Field(
        default_factory=ServingSettings,
        description="Score API; a `[serving]` table in TOML or JSON in MEMBERSCORE_SERVING.",
    )

    decisions: DecisionSettings = Field(
        default_factory=DecisionSettings,
        description="Lifecycle stage thresholds, contact guardrails and uplift history rules "
        "(docs/decisions.md); a `[decisions]` table in TOML.",
    )

    monitor: MonitorSettings = Field(
        default_factory=MonitorSettings,
        description="Drift and decay thresholds (docs/monitoring.md); a `[monitor]` table in TOML.",
    )

    spark_master: str = Field(
        "local[2]",
        description="Spark master of `--engine spark` jobs: local[N], spark://host:7077, yarn, "
        "k8s://https://host:443 (docs/batch.md).",
    )
    spark_driver_memory: str = Field(
        "4g", pattern=r"^\d+[kmgt]?$", description="spark.driver.memory, e.g. 4g."
    )
    spark_shuffle_partitions: int = Field(
        8, gt=0, description="spark.sql.shuffle.partitions: member partitions of Spark jobs."
    )
    spark_conf: tuple[tuple[str, str], ...] = Field(
        (), description="Further (key, value) Spark settings, e.g. executor memory, S3 access."
    )

    tier_thresholds: tuple[tuple[str, float], ...] = Field(
        (("basic", 0.0), ("silver", 500.0), ("gold", 2000.0), ("platinum", 5000.0)),
        description="Tier name and the growth value (net spend over the trailing 365 days, in "
        "the dataset currency) needed to hold it, in ascending order.",
    )
    tier_period_days: int = Field(
        365,
        gt=0,
        le=365,
        description="Days ahead in which reaching the next tier counts for upgrade timing (the "
        "probability of reaching it, the expected date), at most the 365-day growth window.",
    )

    @model_validator(mode="before")
    @classmethod
    def _production_tracks_in_postgres(cls, data: Any) -> Any:
        """The production profile keeps MLflow in PostgreSQL unless a URI is given."""
        production = isinstance(data, dict) and data.get("profile") == "production"
        if production and "mlflow_tracking_uri" not in data:
            url = str(data.get("postgres_url", cls.model_fields["postgres_url"].default))
            data = {**data, "mlflow_tracking_uri": psycopg_url(url)}
        return data

    @property
    def raw_dir(self) -> Path:
        """Where the simulator writes its exports and users may drop theirs."""
        return self.data_dir / "raw"

    @property
    def lake_dir(self) -> Path:
        """Validated canonical tables, Parquet partitioned by month."""
        return self.data_dir / "lake"

    @property
    def quarantine_dir(self) -> Path:
        """Rejected input rows, each with the reason."""
        return self.data_dir / "quarantine"

    @property
    def truth_dir(self) -> Path:
        """Simulator ground truth: for evaluation only, never read by the feature pipeline."""
        return self.data_dir / "truth"

    @property
    def snapshots_dir(self) -> Path:
        """Per-member feature snapshots, one Parquet file per cutoff."""
        return self.data_dir / "features"

    @property
    def outputs_dir(self) -> Path:
        """Batch scores, campaign lists and reports."""
        return self.data_dir / "outputs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("MEMBERSCORE_CONFIG", "memberscore.toml"))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
        return (init_settings, env_settings, toml)


def psycopg_url(url: str) -> str:
    """A PostgreSQL URL with the psycopg 3 driver that SQLAlchemy needs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, built once on first use."""
    return Settings()
