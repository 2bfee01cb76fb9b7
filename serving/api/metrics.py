"""Prometheus metrics of one app: request counts, latency and score distributions.

Each app owns its registry (no process-global state), so tests can build many apps. Labels carry
route templates and model names only, never member ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))


class Metrics:
    """The app's collectors and the text exposition of its registry."""

    def __init__(self) -> None:
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

    def observe_scores(self, score: str, values: Iterable[float | None]) -> None:
        """Add served probabilities (0..1) to the distribution of `score`; None is skipped."""
        child = self.scores.labels(score=score)
        for value in values:
            if value is not None:
                child.observe(value)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
