"""Fixtures of the score API tests: the real app with in-test fakes for the feature store, the
model registry and the domain libraries, injected through `app.dependency_overrides`.

The models are real (tiny) `training.models` models served through `serving.scoring.registry`,
as the registry serves them, so encoding, prediction and contributions run the production path.
`FakeSpendModel` stands in for the spend model where exact expected values are checked: it has
the serving surface of `training.models.spend.SpendModel` with fixed, known outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features import build
from features.catalog import Dtype, Feature
from memberscore.errors import StoreUnavailable
from memberscore.settings import ServingSettings, Settings
from serving.api.app import create_app
from serving.api.deps import get_contact_log, get_domain, get_feature_reader, get_model_holder
from serving.api.security import hash_key
from serving.online.contact_log import ContactLog, open_contact_log
from serving.scoring.bundle import ModelBundle, ModelHolder, ModelQuality, ModelRef
from serving.scoring.domain import Candidate, Decision, ReasonCode
from serving.scoring.registry import served_model
from serving.scoring.sources import MemberFeatures, PublishedCard
from training.models.boosting import BoostParams
from training.models.classifier import CalibratedClassifier
from training.models.spend import SpendModel

READ_KEY = "test-read-key"
WRITE_KEY = "test-write-key"
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
FEATURES = ("recency_days", "frequency", "monetary", "tenure_days", "tier")
TIERS = ("basic", "silver", "gold", "platinum")


def member_row(i: int, *, ordered: bool = True) -> dict[str, Any]:
    """Feature values of synthetic member `i` (deterministic)."""
    return {
        "recency_days": float(5 + 17 * i % 300) if ordered else None,
        "frequency": float(1 + i % 9) if ordered else 0.0,
        "monetary": float(20 + 13 * i % 400) if ordered else 0.0,
        "tenure_days": float(30 + 7 * i % 700),
        "tier": TIERS[i % 4],
        "has_ordered": ordered,
        "segment": "champions" if i % 3 == 0 else "at_risk",
        "tags": ["vip", "app_user"] if i % 2 == 0 else "newsletter",
        "consent_marketing": True,
        "consent_personalization": i % 5 != 0,
        "days_since_registration": float(30 + 7 * i % 700),
        "days_since_first_order": float(20 + 7 * i % 600) if ordered else None,
        "days_overdue": float(i % 40) if ordered else None,
        "last_gap_days": float(10 + 3 * i % 90) if ordered else None,
        "distance_to_next_tier": float(50 * (i % 7)),
        "logins_30d": float(i % 11),
        "btyd_p_alive": 0.5 + (i % 5) / 10 if ordered else None,
    }


CUTOFF = date(2026, 6, 1)


def _family(family: str, names: tuple[tuple[str, Dtype], ...]) -> tuple[Feature, ...]:
    return tuple(Feature(name, dtype, family, name.replace("_", " ")) for name, dtype in names)


# A small catalog in the shape of features.catalog.FAMILIES (every family a service names).
FAMILIES = {
    "rfm": _family(
        "rfm", (("recency_days", "float"), ("frequency", "float"), ("monetary", "float"))
    ),
    "behaviour": _family("behaviour", (("logins_30d", "float"),)),
    "profile": _family(
        "profile",
        (
            ("tenure_days", "float"),
            ("tier", "string"),
            ("has_ordered", "bool"),
            ("consent_marketing", "bool"),
            ("consent_personalization", "bool"),
            ("distance_to_next_tier", "float"),
        ),
    ),
    "lifecycle": _family(
        "lifecycle",
        tuple(
            (name, "float")
            for name in (
                "days_since_registration",
                "days_since_first_order",
                "days_overdue",
                "last_gap_days",
            )
        ),
    ),
    "btyd": _family("btyd", (("btyd_p_alive", "float"),)),
    "segment": _family("segment", (("segment", "string"),)),
    "tags": _family("tags", (("tags", "string"),)),
}


def _snapshot(rows: dict[str, dict]) -> pd.DataFrame:
    """The conftest members as a snapshot of cutoff CUTOFF (tags as comma-separated text)."""
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis("member_id").reset_index()
    frame["tags"] = frame["tags"].map(lambda t: t if isinstance(t, str) else ",".join(t))
    frame["as_of"] = pd.Timestamp(CUTOFF, tz="UTC")
    return build.conform(frame, FAMILIES)


class FakeReader:
    """The online store: known rows, published cards, and a switch to take it down."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        self.rows = dict(rows)
        self.cards: dict[str, PublishedCard] = {}
        self.down = False

    def read(self, member_ids: Sequence[str], service: Sequence[str]) -> MemberFeatures:
        self.ping()
        known = [m for m in member_ids if m in self.rows]
        return MemberFeatures({m: self.rows[m] for m in known}, dict.fromkeys(known, AS_OF))

    def published(self, member_ids: Sequence[str]) -> dict[str, PublishedCard]:
        self.ping()
        return {m: self.cards[m] for m in member_ids if m in self.cards}

    def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("the Redis online store at 127.0.0.1:6379 cannot be reached")


class FakeDomain:
    """Reason codes, stages, BTYD outlook and decisions with fixed simple rules."""

    def reasons(
        self, model: str, contributions: np.ndarray, names: Sequence[str], features: Any
    ) -> list[ReasonCode]:
        order = np.argsort(-np.abs(contributions))
        return [
            ReasonCode(f"{names[j]}_high", f"{names[j]} matters", float(contributions[j]))
            for j in order
        ]

    def lifetime(
        self, features: Mapping[str, Any], as_of: datetime | None, outlook: Any
    ) -> tuple[float, date]:
        return 0.8, (as_of or AS_OF).date() + timedelta(days=14)

    def stage(
        self, features: Mapping[str, Any], scores: Mapping[str, float | None]
    ) -> tuple[str, str]:
        if not features.get("has_ordered"):
            return "registered", "no_order_yet"
        return (
            ("at_risk", "churn_above_0.5")
            if (scores["churn"] or 0) > 0.5
            else ("active", "default")
        )

    def next_best_actions(
        self,
        features: pd.DataFrame,
        scores: pd.DataFrame,
        contacts: pd.DataFrame,
        consents: pd.DataFrame,
        now: datetime,
        uplift: Any,
    ) -> list[Decision]:
        candidates = [
            Candidate("winback_email", "email", 4.0),
            Candidate("push_reminder", "push", 1.5),
        ]
        decisions = []
        for member_id in features.index:
            mine = contacts[contacts["member_id"] == member_id]
            recent = set(mine["action_id"]) if len(mine) else set()
            open_ = [c for c in candidates if c.action_id not in recent]
            reasons = (
                ("cooldown: winback_email sent recently",)
                if recent
                else ("highest expected value",)
            )
            chosen = open_[0] if open_ else Candidate("no_action", None, 0.0)
            decisions.append(Decision(chosen, tuple(open_[1:]), reasons, False))
        return decisions


def _trained(kind: str, seed: int) -> Any:
    """A tiny real `training.models` model on synthetic rows of FEATURES (tier as text):
    churn-like / activation-like classifiers, or the spend model for clv."""
    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame(
        {
            "recency_days": rng.uniform(0, 300, n),
            "frequency": rng.integers(0, 9, n).astype(float),
            "monetary": rng.uniform(0, 400, n),
            "tenure_days": rng.uniform(0, 700, n),
            "tier": pd.Series(rng.choice(TIERS, n), dtype="string"),
        }
    )
    params = BoostParams(
        seed=seed,
        num_boost_round=8,
        num_leaves=4,
        min_data_in_leaf=10,
        learning_rate=0.1,
        lambda_l2=1.0,
    )
    fit, calib = frame.iloc[:300], frame.iloc[300:]
    if kind == "spend":
        spend = frame["monetary"].to_numpy() * (rng.uniform(0, 1, n) < 0.6)
        return SpendModel(params).fit(fit, spend[:300], X_calib=calib, y_calib=spend[300:])
    label = (frame["recency_days"] > 120).to_numpy(dtype=float)
    flip = rng.uniform(0, 1, n) < 0.1  # some noise, so calibration has both classes everywhere
    label = np.where(flip, 1 - label, label)
    return CalibratedClassifier(params).fit(fit, label[:300], X_calib=calib, y_calib=label[300:])


SPEND_OUTPUTS = ("orders_mean", "spend_mean", "p10", "p50", "p90")


class FakeSpendModel:
    """The serving surface of `training.models.spend.SpendModel` (`outputs`, `predict_matrix`,
    `contributions`, `encoding_`) with known outputs of the FEATURES matrix: orders_mean =
    frequency / 2, spend_mean = monetary, and the interval 2, 0.9 and 0.5 × monetary in the
    p10, p50, p90 columns (crossed, as quantile boosters may give; served sorted). Missing
    values count as 0. `outputs` may be any subset and order of SPEND_OUTPUTS (the models
    before the expected values had p10, p50, p90)."""

    def __init__(self, outputs: Sequence[str] = SPEND_OUTPUTS) -> None:
        self.outputs = tuple(outputs)
        self.encoding_ = SimpleNamespace(feature_names=list(FEATURES), categories={"tier": TIERS})

    @staticmethod
    def expected(frequency: float, monetary: float) -> dict[str, float]:
        """What serving should give for a member: the means, and the interval sorted."""
        return {
            "orders_mean": frequency / 2,
            "spend_mean": monetary,
            "p10": 0.5 * monetary,
            "p50": 0.9 * monetary,
            "p90": 2 * monetary,
        }

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        frequency, monetary = np.nan_to_num(matrix[:, 1]), np.nan_to_num(matrix[:, 2])
        raw = {
            "orders_mean": frequency / 2,
            "spend_mean": monetary,
            "p10": 2 * monetary,
            "p50": 0.9 * monetary,
            "p90": 0.5 * monetary,
        }
        return np.column_stack([raw[name] for name in self.outputs])

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return np.zeros((len(matrix), len(FEATURES) + 1))


# Trained once per test session: the production predictor behind every fake registry load.
_MODELS = {
    "churn": _trained("binary", 1),
    "activation": _trained("binary", 2),
    "clv": _trained("spend", 3),
}
# Quality tags of the fake registry's versions (horizon_days comes from the models' meta).
QUALITY = {
    "churn": ModelQuality(grade="A", notes="beats the BTYD baseline"),
    "clv": ModelQuality(grade="C", notes="interval too narrow", label_horizon_days=180),
}


class FakeSource:
    """The registry: current versions, bumped by `promote`; load builds a bundle of boosters
    (with `clv` instead of the trained spend model, e.g. a FakeSpendModel, and `outlook` as the
    BTYD outlook when given), without the models named in `without` (no champion: e.g.
    `("activation",)`, a programme where every member has bought)."""

    def __init__(self, clv: Any = None, outlook: Any = None, without: Sequence[str] = ()) -> None:
        self.version = 1
        self.loads = 0
        models = _MODELS if clv is None else _MODELS | {"clv": clv}
        self._models = {name: m for name, m in models.items() if name not in without}
        self.outlook = outlook

    def promote(self) -> None:
        self.version += 1

    def fingerprint(self) -> dict[str, str]:
        return {name: str(self.version) for name in self._models}

    def load(self) -> ModelBundle:
        self.loads += 1
        spec = {
            "churn": (90, "churn_v1"),
            "activation": (30, "activation_v1"),
            "clv": (365, "clv_v1"),
        }
        models = {}
        for name, (horizon, service) in spec.items():
            if name not in self._models:
                continue
            ref = ModelRef(
                name,
                str(self.version),
                "champion",
                f"run-{name}-{self.version}",
                QUALITY.get(name, ModelQuality()),
            )
            meta = {"horizon_days": horizon, "feature_service": service}
            models[name] = served_model(self._models[name], meta, ref)
        return ModelBundle(models, outlook=self.outlook)


@pytest.fixture
def serving_settings(settings: Settings) -> Settings:
    """Test settings with one read key and one write key (only their hashes stored)."""
    keys = ((hash_key(READ_KEY), "read"), (hash_key(WRITE_KEY), "write"))
    return settings.model_copy(
        update={"serving": ServingSettings(api_keys=keys, max_body_bytes=200_000)}
    )


@pytest.fixture(scope="session")
def member_rows() -> dict[str, dict[str, Any]]:
    """Members m0..m39 with orders, n0..n4 never ordered."""
    rows = {f"m{i}": member_row(i) for i in range(40)}
    return rows | {f"n{i}": member_row(i, ordered=False) for i in range(5)}


@pytest.fixture(scope="session")
def families() -> dict[str, tuple[Feature, ...]]:
    """Catalog families of the test members, for a real Feast store."""
    return FAMILIES


@pytest.fixture(scope="session")
def snapshot(member_rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """`member_rows` as a conformed feature snapshot of cutoff CUTOFF."""
    return _snapshot(member_rows)


@pytest.fixture
def reader(member_rows: dict[str, dict[str, Any]]) -> FakeReader:
    """The online store holding `member_rows`."""
    return FakeReader(member_rows)


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def holder(source: FakeSource) -> ModelHolder:
    holder = ModelHolder(source)
    holder.refresh()
    return holder


@pytest.fixture
def contact_log(serving_settings: Settings) -> Iterator[ContactLog]:
    log = open_contact_log(serving_settings)
    yield log
    log.close()


@pytest.fixture
def client(
    serving_settings: Settings, reader: FakeReader, holder: ModelHolder, contact_log: ContactLog
) -> TestClient:
    """The real app, lifespan not run, with fakes for the store, registry and domain."""
    app = create_app(serving_settings)
    app.dependency_overrides |= {
        get_feature_reader: lambda: reader,
        get_model_holder: lambda: holder,
        get_contact_log: lambda: contact_log,
        get_domain: FakeDomain,
    }
    return TestClient(app)


@pytest.fixture
def read_headers() -> dict[str, str]:
    """A read-scope key as a bearer token."""
    return {"Authorization": f"Bearer {READ_KEY}"}


@pytest.fixture
def write_headers() -> dict[str, str]:
    """A write-scope key in the X-API-Key header."""
    return {"X-API-Key": WRITE_KEY}
