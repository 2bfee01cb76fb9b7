"""Adapters from the serving ports to the other packages: the Feast online store
(`features.store`) and the domain libraries (`training`, `decisions`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.domain import Candidate, Decision, ReasonCode
from serving.sources import MemberFeatures

PING_MEMBER = "__readyz__"


@contextmanager
def _sqlite_reachable() -> Iterator[None]:
    """The local SQLite online store: a missing or locked file is 'unavailable', not a 500."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(f"the SQLite online store cannot be read ({error})") from error


class FeastReader:
    """Online features through `features.store.online_features`.

    One read of every feature view covers all services (fewer round trips than one read per
    service); members the store has no snapshot for (as_of missing) are left out. In the
    production profile a ping without retries goes first: the Redis client Feast builds retries
    with backoff for about 7 s before it gives up, and a request should fail fast instead.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._probe: Any = (
            _redis_probe(settings.redis_url) if settings.profile == "production" else None
        )

    def read(self, member_ids: Sequence[str], services: Sequence[str]) -> MemberFeatures:
        """Features of the known members among `member_ids`, with their snapshot cutoffs."""
        from features.store import AS_OF, JOIN_KEY, online_features

        self._check_redis()
        with _sqlite_reachable():
            frame = online_features(self._settings, list(member_ids))
        frame = frame[frame[AS_OF].notna()]
        as_of: dict[str, datetime] = {
            str(m): t.to_pydatetime() for m, t in zip(frame[JOIN_KEY], frame[AS_OF], strict=True)
        }
        values = frame.drop(columns=[AS_OF]).astype(object)
        values = values.where(values.notna(), None)
        rows = {str(row[JOIN_KEY]): _plain(row) for row in values.to_dict("records")}
        return MemberFeatures(rows, as_of)

    def ping(self) -> None:
        """One online read of an id that does not exist: it only has to answer."""
        self.read([PING_MEMBER], ())

    def _check_redis(self) -> None:
        """Raise StoreUnavailable at once when the production Redis does not answer."""
        import redis

        if self._probe is None:
            return
        try:
            self._probe.ping()
        except redis.exceptions.RedisError as error:
            raise StoreUnavailable(
                f"the Redis online store at {self._settings.redis_url} cannot be reached ({error})"
            ) from error


def _redis_probe(redis_url: str) -> Any:
    """A Redis client for `host:port[,options]` that never retries and waits 1 s at most."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, _, port = redis_url.split(",")[0].partition(":")
    return redis.Redis(
        host=host or "127.0.0.1",
        port=int(port or 6379),
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Feature values as plain Python (numpy scalars → int/float/bool)."""
    return {
        str(k): v.item() if hasattr(v, "item") and not isinstance(v, str) else v
        for k, v in row.items()
    }


class LibraryDomain:
    """The domain port over the real libraries: `training.reasons` for reason codes,
    `decisions.stages` for the lifecycle stage, `decisions.engine` for the next-best action.

    The uplift model comes with the request's model bundle (`uplift@champion`); while none is
    registered, `prior_uplift` (fitted on no contacts) makes the engine use the catalogue's
    prior uplift for every action, its documented fallback. P(alive) and the next-order date
    stay None: no BTYD model is served yet.
    """

    def __init__(
        self,
        catalogue: Any,
        prior_uplift: Any,
        decision_settings: Any,
        descriptions: Mapping[str, str],
    ) -> None:
        self.catalogue = catalogue
        self.prior_uplift = prior_uplift
        self.decision_settings = decision_settings
        self.descriptions = dict(descriptions)

    def reasons(
        self,
        model: str,
        contributions: np.ndarray,
        feature_names: Sequence[str],
        features: Mapping[str, Any],
    ) -> list[ReasonCode]:
        """The strongest positive drivers of `model`'s score, in plain words."""
        from training.reasons import top_reasons

        found = top_reasons(contributions, feature_names, features, self.descriptions)
        return [ReasonCode(r.code, r.text, r.impact) for r in found]

    def lifetime(
        self, features: Mapping[str, Any], as_of: datetime | None
    ) -> tuple[float | None, date | None]:
        """No BTYD model is served yet: unknown."""
        return None, None

    def stage(
        self, features: Mapping[str, Any], scores: Mapping[str, float | None]
    ) -> tuple[str, str]:
        """Stage and the rule in words, from `decisions.stages.stage_of`."""
        from decisions.stages import stage_of

        return stage_of(features, scores, self.decision_settings.stages)

    def next_best_action(
        self,
        member_id: str,
        features: Mapping[str, Any],
        scores: Mapping[str, float | None],
        contacts: pd.DataFrame,
        now: datetime,
        uplift: Any,
    ) -> Decision:
        """The engine's decision, after consent, cooldowns, caps and the control group."""
        from decisions.engine import next_best_action

        decision = next_best_action(
            member_id,
            features,
            scores,
            contacts,
            pd.Timestamp(now),
            self.catalogue,
            self.prior_uplift if uplift is None else uplift,
            self.decision_settings,
        )
        return Decision(
            action=_candidate(decision.action),
            alternatives=tuple(_candidate(o) for o in decision.alternatives),
            reasons=tuple(decision.reasons),
            control_group=bool(decision.control_group),
        )


def _candidate(option: Any) -> Candidate:
    """An engine option as the serving port's candidate."""
    return Candidate(
        action_id=str(option.action_id),
        channel=option.channel,
        expected_value=float(option.expected_value),
        reasons=tuple(option.reasons),
    )


def open_domain(settings: Settings) -> LibraryDomain:
    """The shipped action catalogue, the settings' decision rules, feature descriptions from
    the catalog and a priors-only uplift model for when none is registered."""
    from decisions.catalogue import load_catalogue
    from decisions.uplift import ACTION, GROUP, RESPONDED, VALUE, UpliftModel, catalogue_priors
    from training.reasons import catalog_descriptions

    catalogue = load_catalogue()
    no_contacts = pd.DataFrame(columns=[ACTION, GROUP, RESPONDED, VALUE])
    uplift = UpliftModel([]).fit(no_contacts, catalogue_priors(catalogue))
    return LibraryDomain(catalogue, uplift, settings.decisions, catalog_descriptions())
