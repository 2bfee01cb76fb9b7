"""Picking up a new champion without a restart: one refresh, and the background poll."""

from __future__ import annotations

import asyncio
import logging

from memberscore.redact import redact
from serving.api.metrics import Metrics
from serving.scoring.bundle import ModelHolder

LOG = logging.getLogger("memberscore.serving.reload")
# Seconds between tries while no bundle is loaded yet (capped by the poll interval): a registry
# that was away at start-up is picked up soon after it is back.
UNLOADED_RETRY_SECONDS = 5.0


def refresh(holder: ModelHolder, metrics: Metrics, *, force: bool = False) -> bool:
    """Swap in new champions if the registry changed; True when swapped. Errors propagate
    (the holder keeps serving its current bundle)."""
    try:
        swapped = holder.refresh(force=force)
    except Exception:
        metrics.reloads.labels(result="failed").inc()
        raise
    metrics.reloads.labels(result="swapped" if swapped else "unchanged").inc()
    if swapped:
        for name, version in holder.current.fingerprint.items():
            if version.isdigit():
                metrics.model_version.labels(model=name).set(int(version))
        LOG.info("serving models %s", holder.current.fingerprint)
    metrics.watch(holder.current)  # the drift gauges follow the served versions
    return swapped


async def poll(holder: ModelHolder, metrics: Metrics, interval_seconds: float) -> None:
    """Refresh at once (the first load: start-up does not wait for it), then every
    `interval_seconds` until cancelled; every UNLOADED_RETRY_SECONDS while nothing is loaded.

    A failed look is logged and retried at the next tick rather than raised: the service keeps
    answering with the bundle it has (or 503 before the first), and /readyz and /v1/models show
    `last_error`.
    """
    while True:
        try:
            await asyncio.to_thread(refresh, holder, metrics)
        except Exception as error:
            kept = "keeping the current models" if holder.loaded else "no models yet"
            LOG.warning("model load failed, %s: %s", kept, redact(error))
        wait = interval_seconds if holder.loaded else min(interval_seconds, UNLOADED_RETRY_SECONDS)
        await asyncio.sleep(wait)
