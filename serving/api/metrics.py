"""Prometheus metrics of one app: request counts, latency, score distributions and the drift of
served scores.

Each app owns its registry (no process-global state), so tests can build many apps. Labels carry
route templates and model and score names only, never member ids.

Drift gauges: `memberscore_score_psi{score}` is the PSI (`training.monitoring.psi`) of the last
`monitor.served_window` served values of a score against the reference distribution recorded
with the champion's version (model-version tag `score_reference`, written by `memberscore
monitor` from the champion's scores on its training snapshots); it is set once
`monitor.served_min` values are in the window, and `memberscore_score_psi_window{score}` counts
them. A version without the tag has no gauge until `memberscore monitor` has run; the gauges
start again from an empty window when the served versions change.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from memberscore.errors import MemberscoreError, StoreUnavailable
from memberscore.redact import redact
from training.monitoring.psi import REFERENCE_TAG, Reference, from_json, psi, shares

if TYPE_CHECKING:
    from memberscore.settings import Settings
    from serving.scoring.bundle import ModelBundle

LOG = logging.getLogger("memberscore.serving.metrics")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
# Score name → reference distribution, for the versions a bundle serves.
References = Callable[["ModelBundle"], Mapping[str, Reference]]


class ServedWindow:
    """The last `size` served values of one score, as counts per bin of its reference."""

    def __init__(self, reference: Reference, size: int) -> None:
        self.reference = reference
        self.bins: deque[int] = deque(maxlen=size)
        self.counts = np.zeros(reference.bins, dtype=np.int64)

    def add(self, value: float) -> None:
        """Count one served value (not missing), dropping the oldest once the window is full."""
        if len(self.bins) == self.bins.maxlen:
            self.counts[self.bins[0]] -= 1
        b = int(self.reference.bin_of(np.array([value], dtype=float))[0])
        self.bins.append(b)
        self.counts[b] += 1

    def psi(self) -> float:
        """PSI of the window against the reference."""
        return psi(self.reference.shares, shares(self.counts))


class Metrics:
    """The app's collectors and the text exposition of its registry; with `references`, the
    drift gauges of the scores whose reference it finds (`watch`)."""

    def __init__(
        self,
        *,
        window: int = 5_000,
        min_values: int = 500,
        references: References | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "memberscore_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "memberscore_request_seconds",
            "Request latency in seconds by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "memberscore_score",
            "Distribution of served probabilities by score name (e.g. churn_90d, p_alive).",
            ["score"],
            buckets=_SCORE_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "memberscore_model_reloads",
            "Model reload attempts by result (swapped, unchanged, failed).",
            ["result"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "memberscore_model_version",
            "Registry version of each served model.",
            ["model"],
            registry=self.registry,
        )
        self.score_psi = Gauge(
            "memberscore_score_psi",
            "PSI of the served scores in the rolling window against the champion's reference "
            "distribution, by score (above 0.25: drifted).",
            ["score"],
            registry=self.registry,
        )
        self.score_psi_window = Gauge(
            "memberscore_score_psi_window",
            "Served values in the rolling PSI window, by score.",
            ["score"],
            registry=self.registry,
        )
        self.window, self.min_values = window, min_values
        self._references = references
        self._windows: dict[str, ServedWindow] = {}
        self._watched: dict[str, str] | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> Metrics:
        """The metrics of an app of `settings`: drift windows from `settings.monitor`, the
        references read from the registry (`registry_references`)."""
        return cls(
            window=settings.monitor.served_window,
            min_values=settings.monitor.served_min,
            references=lambda bundle: registry_references(settings, bundle),
        )

    def watch(self, bundle: ModelBundle) -> None:
        """Track the drift of the scores of `bundle`'s versions (once per set of versions);
        a failed look-up of the references is logged and tried again at the next call."""
        if self._references is None or bundle.fingerprint == self._watched:
            return
        try:
            found = self._references(bundle)
        except (MemberscoreError, ValueError) as error:  # serving goes on; the gauges wait
            LOG.warning("score references not read, drift gauges wait: %s", redact(error))
            return
        self.track(found)
        self._watched = bundle.fingerprint

    def track(self, references: Mapping[str, Reference]) -> None:
        """Compare served scores with `references` (score name → reference) from now on, each
        from an empty window; the gauges of scores no longer tracked are removed."""
        with self._lock:
            for name in self._windows:
                for gauge in (self.score_psi, self.score_psi_window):
                    gauge.remove(name)
            self._windows = {n: ServedWindow(r, self.window) for n, r in references.items()}

    def observe_scores(self, score: str, values: Iterable[float | None]) -> None:
        """Add served probabilities (0..1) to the distribution of `score` and to its drift
        window when it has a reference; None is skipped."""
        child = self.scores.labels(score=score)
        window = self._windows.get(score)
        for value in values:
            if value is None:
                continue
            child.observe(value)
            if window is not None:
                with self._lock:
                    window.add(value)
        if window is None:
            return
        with self._lock:
            size, value = len(window.bins), window.psi()
        if size >= self.min_values:
            self.score_psi.labels(score=score).set(value)
        self.score_psi_window.labels(score=score).set(size)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def registry_references(settings: Settings, bundle: ModelBundle) -> dict[str, Reference]:
    """The score references recorded on the versions `bundle` serves (tag `score_reference`),
    by score name; versions without one add nothing."""
    from training import tracking

    # A registry that is not there fails here, before MLflow is imported (seconds).
    tracking.require_store(settings, tracking.tracking_uri(settings), create=False)
    from mlflow.exceptions import MlflowException

    client = tracking.client(settings, create=False)
    found: dict[str, Reference] = {}
    for model in bundle.models.values():
        try:
            version = client.get_model_version(model.ref.name, model.ref.version)
        except MlflowException as error:
            raise StoreUnavailable(
                f"{model.ref.name} version {model.ref.version}: {error}"
            ) from error
        text = (version.tags or {}).get(REFERENCE_TAG)
        if text:
            found |= from_json(text)
    return found
