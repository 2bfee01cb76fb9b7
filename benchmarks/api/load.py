"""A bounded HTTP/1.1 load generator on asyncio (keep-alive connections, no client library).

A *call* is one logical request of the system under test, possibly several HTTP requests in
sequence (the peers: Feast's feature server, then MLflow's model server with its answer).
Two modes, both bounded by a count and a time limit:

- `closed`: `concurrency` callers, each starting its next call when the last one answered
  (the highest throughput the server sustains);
- `fixed`: calls started on a fixed schedule of `rate` per second whatever the answers
  (open loop). Latency is measured from the scheduled start, so a server that falls behind
  is charged for the queue it builds (no coordinated omission).

The client costs about 0.1 ms of CPU per HTTP request; it shares the machine with the servers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class HttpError(Exception):
    """A non-2xx answer."""


class Connection:
    """One keep-alive HTTP/1.1 connection to host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """Send one request and return the body of a 2xx answer (HttpError otherwise)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = _framing(head)
        if chunked:
            payload = await _read_chunked(self.reader)
        else:
            payload = await self.reader.readexactly(length)
        if close:
            self.close()
        if not 200 <= status < 300:
            raise HttpError(f"{status}: {payload[:200]!r}")
        return payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _framing(head: bytes) -> tuple[int, bool, bool]:
    """(content length, chunked, connection close) from a response head."""
    length, chunked, close = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            close = True
    return length, chunked, close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


# A call: given a pool of connections (one per target) and the call's index, do the work.
Call = Callable[[dict[str, Connection], int], Awaitable[None]]


@dataclass
class Result:
    """Latencies (seconds) of the calls that succeeded, the error count and the wall time."""

    mode: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    seconds: float = 0.0
    offered_rate: float | None = None
    concurrency: int | None = None

    def summary(self) -> dict[str, Any]:
        """Count, errors, achieved rate and latency percentiles in milliseconds."""
        ms = np.asarray(self.latencies) * 1000
        pct = (lambda q: round(float(np.percentile(ms, q)), 2)) if len(ms) else (lambda q: None)
        return {
            "mode": self.mode,
            "offered_rate": self.offered_rate,
            "concurrency": self.concurrency,
            "calls": len(ms) + self.errors,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.seconds, 2),
            "rate": round(len(ms) / self.seconds, 1) if self.seconds else None,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        }


class _Pool:
    """Idle connection sets; a call takes one set (one connection per target) at a time."""

    def __init__(self, targets: dict[str, tuple[str, int]], limit: int) -> None:
        self.targets, self.limit = targets, limit
        self.idle: list[dict[str, Connection]] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def take(self) -> dict[str, Connection]:
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        return {name: Connection(*where) for name, where in self.targets.items()}

    async def give(self, conns: dict[str, Connection]) -> None:
        async with self.freed:
            self.idle.append(conns)
            self.freed.notify()

    def close(self) -> None:
        for conns in self.idle:
            for conn in conns.values():
                conn.close()


async def _timed(call: Call, pool: _Pool, i: int, started: float, result: Result) -> None:
    conns = await pool.take()
    try:
        await call(conns, i)
        result.latencies.append(time.perf_counter() - started)
    except (HttpError, OSError, asyncio.IncompleteReadError, ValueError) as error:
        result.errors += 1
        result.first_error = result.first_error or f"{type(error).__name__}: {error}"
        for conn in conns.values():
            conn.close()
    finally:
        await pool.give(conns)


async def closed_loop(
    targets: dict[str, tuple[str, int]], call: Call, concurrency: int, count: int, seconds: float
) -> Result:
    """`concurrency` callers back to back until `count` calls or `seconds` have passed."""
    pool, result = _Pool(targets, concurrency), Result("closed", concurrency=concurrency)
    began = time.perf_counter()
    deadline, issued = began + seconds, 0

    async def caller() -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            issued += 1
            await _timed(call, pool, issued, time.perf_counter(), result)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    pool.close()
    return result


async def fixed_rate(
    targets: dict[str, tuple[str, int]],
    call: Call,
    rate: float,
    count: int,
    seconds: float,
    max_connections: int = 64,
) -> Result:
    """Calls started `rate` times a second until `count` or `seconds`; waits (at most 10 s)
    for the ones in flight."""
    pool, result = _Pool(targets, max_connections), Result("fixed", offered_rate=rate)
    began = time.perf_counter()
    tasks = []
    for i in range(count):
        scheduled = began + i / rate
        if scheduled - began >= seconds:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(_timed(call, pool, i, scheduled, result)))
    if tasks:
        _, late = await asyncio.wait(tasks, timeout=10)
        for task in late:
            task.cancel()
        result.errors += len(late)
    result.seconds = max(time.perf_counter() - began, len(tasks) / rate)
    pool.close()
    return result


async def drain(
    targets: dict[str, tuple[str, int]], call: Call, ceiling: float, seconds: float
) -> None:
    """Call once at a time until a call takes at most `ceiling` seconds (the server has worked
    off what an overloaded step left queued), or `seconds` have passed."""
    pool = _Pool(targets, 1)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        result = Result("drain")
        await _timed(call, pool, 0, time.perf_counter(), result)
        if result.latencies and result.latencies[0] <= ceiling:
            break
        await asyncio.sleep(0.2)
    pool.close()


def highest_rate(
    run_at: Callable[[float], Result], rates: Sequence[float], p99_ms: float = 50.0
) -> tuple[float | None, list[dict[str, Any]]]:
    """Step through `rates` (ascending) until p99 exceeds `p99_ms`, a call fails or the server
    falls 10 % short of the offered rate; the highest rate that held, and every step."""
    held, steps = None, []
    for rate in rates:
        summary = run_at(rate).summary()
        steps.append(summary)
        ok = (
            summary["errors"] == 0
            and summary["p99_ms"] is not None
            and summary["p99_ms"] <= p99_ms
            and summary["rate"] >= 0.9 * rate
        )
        if not ok:
            break
        held = rate
    return held, steps


def json_body(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()
