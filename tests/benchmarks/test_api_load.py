"""The API benchmark's load generator against a tiny keep-alive HTTP server in the test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.api import load

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _server(status: int = 200) -> Handler:
    """Answer every request on a connection with `status` and a JSON body echoing the path."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            body = b'{"path": "%s"}' % head.split(b" ")[1]
            writer.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
            )
            await writer.drain()
        writer.close()

    return handle


def _measure(handler: Handler, scenario: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await scenario({"api": ("127.0.0.1", port)})

    return asyncio.run(main())


async def _get(conns: dict[str, load.Connection], i: int) -> None:
    body = await conns["api"].request("GET", f"/m{i}")
    assert body == b'{"path": "/m%d"}' % i, "each call reads its own answer"


def test_closed_loop_stops_at_the_count_and_keeps_connections_alive() -> None:
    result = _measure(_server(), lambda t: load.closed_loop(t, _get, 3, 30, 10))

    summary = result.summary()
    assert summary["calls"] == 30 and summary["errors"] == 0, summary
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]


def test_fixed_rate_is_bounded_by_time_and_counts_failures() -> None:
    ok = _measure(_server(), lambda t: load.fixed_rate(t, _get, 100, 1000, 0.2)).summary()
    failing = _measure(_server(503), lambda t: load.fixed_rate(t, _get, 50, 5, 10)).summary()

    assert 15 <= ok["calls"] <= 21, f"0.2 s at 100 calls/s is about 20 calls: {ok}"
    assert failing["errors"] == 5 and failing["first_error"].startswith("HttpError: 503")


def test_highest_rate_is_the_last_step_within_the_p99_bound() -> None:
    def run_at(rate: float) -> load.Result:
        p99 = {10: 0.01, 20: 0.04, 40: 0.08}[int(rate)]
        return load.Result("fixed", latencies=[0.005] * 95 + [p99] * 5, seconds=100 / rate)

    held, steps = load.highest_rate(run_at, (10, 20, 40), p99_ms=50)

    assert held == 20 and len(steps) == 3, "40 calls/s breaks the 50 ms bound"
