"""Decisions of many members in a child process, so that the worker's event loop stays free.

A next-best-action call for 100 members holds the GIL for tens of milliseconds (live scores,
the engine, the answer's JSON). Run in the worker's thread pool, that stalls its event loop,
and with it every other request of the worker: one-member score calls beside 100-member
decisions waited hundreds of milliseconds. Calls of at least `PROCESS_MEMBERS` members run
the same function (`serving.api.service.decisions`) on the same inputs in one child process
per worker instead, spawned at the first such call; the operating system then shares the
cores between the worker and its child, and the event loop keeps answering.

The child keeps the model bundle, domain rules and settings it was last sent, so they are
pickled once per model reload, not per call: each call names them by a token, and a child
without them (a new one, or one that lost them) asks for them once. A child that dies is
replaced at the next call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

PROCESS_MEMBERS = 20  # members of a call from which it is decided in the child process

# What the child holds: (token, (bundle, domain, settings)).
_held: tuple[int, tuple[Any, Any, Any]] | None = None


class _Missing(Exception):
    """The child does not hold the collaborators a call names."""


@dataclasses.dataclass(frozen=True)
class _Portable:
    """A frozen dataclass whose read-only mappings (which pickle refuses) travel as dicts and
    are rebuilt by the class itself on arrival."""

    kind: type
    fields: dict[str, Any]

    @classmethod
    def of(cls, value: Any) -> Any:
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return value
        names = (f.name for f in dataclasses.fields(value) if f.init)
        return cls(type(value), {n: _plain(getattr(value, n)) for n in names})

    def rebuilt(self) -> Any:
        return self.kind(**{n: _rebuilt(v) for n, v in self.fields.items()})


def _plain(value: Any) -> Any:
    from types import MappingProxyType

    if isinstance(value, MappingProxyType):
        return {k: _Portable.of(v) for k, v in value.items()}
    return _Portable.of(value)


def _rebuilt(value: Any) -> Any:
    if isinstance(value, _Portable):
        return value.rebuilt()
    if isinstance(value, dict):
        return {k: _rebuilt(v) for k, v in value.items()}
    return value


def _run(
    token: int, state: tuple[Any, Any, Any] | None, work: Callable[..., Any], args: tuple[Any, ...]
) -> Any:
    """In the child: `work(bundle, domain, settings, *args)` with the collaborators of `token`
    (`state` when sent, else those held)."""
    global _held
    if state is not None:
        bundle, domain, settings = state
        _held = token, (_rebuilt(bundle), domain, settings)
    if _held is None or _held[0] != token:
        raise _Missing(token)
    return work(*_held[1], *args)


class DecisionProcess:
    """One child process of a worker running decisions (see the module docstring)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._sent: tuple[Any, Any, Any] | None = None  # the objects of `_token`
        self._token = 0
        self._child_has = -1  # the token the child is known to hold

    async def run(
        self,
        collaborators: tuple[Any, Any, Any],
        work: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """`work(bundle, domain, settings, *args)` in the child; `work` and `args` pickled.
        `collaborators` (bundle, domain, settings) are sent only when the child lacks them."""
        loop = asyncio.get_running_loop()
        for attempt in range(3):
            pool, token, state = self._prepare(collaborators, resend=attempt > 0)
            try:
                result = await loop.run_in_executor(pool, _run, token, state, work, args)
            except _Missing:
                continue
            except BrokenProcessPool:
                self._drop(pool)
                continue
            self._child_has = token
            return result
        raise RuntimeError("the decision process failed three times in a row")

    def _prepare(
        self, collaborators: tuple[Any, Any, Any], resend: bool
    ) -> tuple[ProcessPoolExecutor, int, tuple[Any, Any, Any] | None]:
        """The pool (started on first use), the token of `collaborators` and what to send."""
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")  # never fork a threaded worker
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
                self._child_has = -1
            sent = self._sent
            if sent is None or any(a is not b for a, b in zip(sent, collaborators, strict=True)):
                self._sent, self._token = collaborators, self._token + 1
            if resend or self._child_has != self._token:
                bundle, domain, settings = collaborators
                return self._pool, self._token, (_Portable.of(bundle), domain, settings)
            return self._pool, self._token, None

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the child (if started)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
