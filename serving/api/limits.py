"""The next-best action's cost bounds: members per call and members per second per API key.

A decision costs CPU per member (guardrails, uplift predictions, reasons), so the bounds count
members, not calls. The rate is a token bucket per key, refilled at `rate` members per second
up to `burst` (a full call always fits once the bucket has refilled); each server process holds
its own buckets, so with N workers a key may get up to N times the rate.
"""

from __future__ import annotations

import math
import threading


class MemberRate:
    """Token buckets of members per API key (hashed); `take` is pure given `now`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (members left, at)
        self._lock = threading.Lock()

    def take(self, key: str, members: int, now: float) -> float:
        """Take `members` from `key`'s bucket at `now` (monotonic seconds) and answer 0, or,
        when too few are left, take nothing and answer the seconds until enough are."""
        with self._lock:
            left, at = self._buckets.get(key, (self.burst, now))
            left = min(self.burst, left + (now - at) * self.rate)
            if members <= left:
                self._buckets[key] = (left - members, now)
                return 0.0
            self._buckets[key] = (left, now)
            return (members - left) / self.rate


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
