"""Drift gauges of served scores: PSI of a rolling window against the champion's reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memberscore.errors import StoreUnavailable
from serving.api.metrics import Metrics, ServedWindow
from serving.scoring.bundle import ModelBundle
from training.monitoring.psi import Reference, reference

RNG = np.random.default_rng(11)
REFERENCE = reference(pd.Series(RNG.beta(2, 5, 20_000)), 10)


def gauge(metrics: Metrics, name: str, score: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"score": score})


def test_the_psi_gauge_waits_for_enough_values_then_tracks_the_window() -> None:
    metrics = Metrics(window=1_000, min_values=200)
    metrics.track({"churn_90d": REFERENCE})
    metrics.observe_scores("churn_90d", RNG.beta(2, 5, 150).tolist())
    assert gauge(metrics, "memberscore_score_psi", "churn_90d") is None, "150 < 200 values"
    assert gauge(metrics, "memberscore_score_psi_window", "churn_90d") == 150
    metrics.observe_scores("churn_90d", [*RNG.beta(2, 5, 850).tolist(), None])
    quiet = gauge(metrics, "memberscore_score_psi", "churn_90d")
    assert quiet is not None and quiet < 0.05, f"same distribution, PSI {quiet}"
    metrics.observe_scores("churn_90d", RNG.beta(5, 2, 1_000).tolist())  # churn risk jumped
    drifted = gauge(metrics, "memberscore_score_psi", "churn_90d")
    assert drifted is not None and drifted > 1.0, "the window holds only the shifted values"
    assert gauge(metrics, "memberscore_score_psi_window", "churn_90d") == 1_000
    assert b'memberscore_score_psi{score="churn_90d"}' in metrics.exposition()


def test_scores_without_a_reference_have_no_gauge() -> None:
    metrics = Metrics(window=100, min_values=1)
    metrics.track({"churn_90d": REFERENCE})
    metrics.observe_scores("p_alive", [0.5] * 10)
    assert gauge(metrics, "memberscore_score_psi_window", "p_alive") is None
    assert metrics.registry.get_sample_value("memberscore_score_count", {"score": "p_alive"}) == 10


def test_the_window_psi_equals_the_psi_of_its_values() -> None:
    window = ServedWindow(REFERENCE, 500)
    values = RNG.beta(3, 3, 800)
    for value in values:
        window.add(float(value))
    direct = reference(pd.Series(values[-500:]), 10)  # only to reuse compare's arithmetic
    from training.monitoring.psi import compare

    assert window.psi() == pytest.approx(compare(REFERENCE, values[-500:])[0])
    assert direct.rows == 500


def test_watch_reads_references_once_per_version_set_and_retries_a_failure() -> None:
    calls: list[dict[str, str]] = []
    failing = [True]

    def lookup(bundle: ModelBundle) -> dict[str, Reference]:
        calls.append(bundle.fingerprint)
        if failing:
            failing.clear()
            raise StoreUnavailable("registry away")
        return {"activation": REFERENCE}

    metrics = Metrics(window=10, min_values=1, references=lookup)
    bundle = ModelBundle({})
    metrics.watch(bundle)  # fails: the gauges wait
    metrics.observe_scores("activation", [0.1])
    assert gauge(metrics, "memberscore_score_psi_window", "activation") is None
    metrics.watch(bundle)
    metrics.watch(bundle)  # same versions: no new look-up
    metrics.observe_scores("activation", [0.1])
    assert len(calls) == 2
    assert gauge(metrics, "memberscore_score_psi_window", "activation") == 1
    metrics.track({})
    assert gauge(metrics, "memberscore_score_psi_window", "activation") is None, "removed"
