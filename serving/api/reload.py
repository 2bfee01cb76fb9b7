"""Picking up a new champion without a restart: one refresh, and the background poll."""

from __future__ import annotations

import asyncio
import logging

from serving.api.metrics import Metrics
from serving.scoring.bundle import ModelHolder

LOG = logging.getLogger("memberscore.serving.reload")


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
    return swapped


async def poll(holder: ModelHolder, metrics: Metrics, interval_seconds: float) -> None:
    """Refresh every `interval_seconds` until cancelled.

    A failed look is logged and retried at the next tick rather than raised: the service keeps
    answering with the bundle it has, and /readyz and /v1/models show `last_error`.
    """
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await asyncio.to_thread(refresh, holder, metrics)
        except Exception as error:
            LOG.warning("model reload failed, keeping the current models: %s", error)
