"""The API benchmark's load generator against a tiny keep-alive HTTP server in the test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.api import load

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _server(status: int = 200, seen: list[bytes] | None = None, delay: float = 0.0) -> Handler:
    """Answer every request on a connection with `status` and a JSON body echoing the path,
    after `delay` seconds; each request's method and path go to `seen` when given."""

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
            if seen is not None:
                seen.append(b" ".join(head.split(b" ")[:2]))
            if delay:
                await asyncio.sleep(delay)
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


def test_next_best_action_steps_call_their_routes_and_run_side_by_side() -> None:
    """The next-best-action steps send one-member GETs and 100-member POSTs to the
    next-best-action routes, and the scores-beside step runs both kinds at once; every step
    reports a summary, and the table shows them for both memberscore columns."""
    from benchmarks.api import run

    seen: list[bytes] = []

    ids = [f"m{i}" for i in range(300)]
    nba_one, nba_batch = run.memberscore_calls(ids, "next-best-action")
    scores_one, _ = run.memberscore_calls(ids)

    async def scenario(targets: dict[str, Any]) -> Any:
        return await asyncio.to_thread(
            run.nba_scenarios, targets, scores_one, nba_one, nba_batch, 0.02
        )

    out = _measure(_server(seen=seen, delay=0.002), scenario)

    assert set(out) == {
        "nba_one_sequential",
        "nba_one_at_rate",
        "nba_batch100",
        "scores_at_rate",
        "scores_beside_nba100",
        "nba100_beside_scores",
    }
    assert all(s["calls"] > 0 and s["errors"] == 0 for s in out.values()), out
    assert b"GET /v1/members/m1/next-best-action" in seen
    assert b"POST /v1/next-best-action" in seen and b"GET /v1/members/m0/scores" in seen
    rows = run.nba_rows(out, out)
    assert len(rows) == 6 and all("calls/s, p50" in published for _, published, _ in rows)
