"""The collaborators of one score-API request, gathered once by `serving.api.deps` and handed to
`serving.api.service` as one object, and the store reads of that request.

The stores are blocking clients, so their reads run in threads, never on the event loop: a
hung store then holds threads, while the loop keeps answering (`/healthz` at once, other
requests), and the request answers 503 once `serving.store_timeout_seconds` has passed. Each
store has its own small pool of threads (`STORE_THREADS`), apart from the thread pool that
serves plain `def` routes and CPU work: threads blocked on a hung store cannot starve those.
A read queued behind busy threads counts its wait in the timeout too, and is dropped from the
queue when the request gives up. The stores' own client timeouts (`features.store.bound_waits`,
the contact log's) end the blocked reads, freeing their threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import pandas as pd

from memberscore.errors import StoreUnavailable
from serving.api.metrics import Metrics
from serving.api.offload import DecisionProcess
from serving.online.consent import ConsentRegister
from serving.online.contact_log import ContactLog
from serving.scoring.context import ScoringContext
from serving.scoring.sources import MemberFeatures, PublishedCard

Store = Literal["online store", "contact log", "consent register"]
STORE_THREADS = 8  # per store and process: reads in flight at once before they queue

T = TypeVar("T")


@functools.cache
def store_pool(store: Store) -> ThreadPoolExecutor:
    """The threads reading `store` (created on first use, shared by the process's apps)."""
    name = "memberscore-" + store.replace(" ", "-")
    return ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix=name)


@dataclass(frozen=True)
class RequestContext(ScoringContext):
    """A `ScoringContext` (bundle taken once per request, online store, domain rules, settings)
    plus the contact log the next-best action reads cooldowns from, the consent register it
    reads members' latest consent from, the metrics the served scores feed and the worker's
    decision process for calls of many members (`serving.api.offload`; None: in threads).

    `started` (`time.monotonic()` seconds, when the context was built) starts the request's
    store budget: all its store reads together wait at most `serving.store_timeout_seconds`.
    """

    contacts: ContactLog
    metrics: Metrics
    consent_register: ConsentRegister
    decider: DecisionProcess | None = None
    started: float = field(default_factory=time.monotonic)

    async def features(self, member_ids: Sequence[str]) -> MemberFeatures:
        """Online features of `member_ids` (`ScoringContext.read`), read off the event loop."""
        return await self._store("online store", self.read, member_ids)

    async def published(self, member_ids: Sequence[str]) -> Mapping[str, PublishedCard]:
        """Published cards of `member_ids` that the online store holds, read off the loop."""
        return await self._store("online store", self.reader.published, member_ids)

    async def history(self, member_ids: Sequence[str]) -> pd.DataFrame:
        """Contact history of `member_ids` (`ContactLog.history`), read off the event loop."""
        return await self._store("contact log", self.contacts.history, member_ids)

    async def consents(self, member_ids: Sequence[str]) -> pd.DataFrame:
        """Consent register entries of `member_ids` (`ConsentRegister.entries`), read off the
        event loop within the same budget."""
        return await self._store("consent register", self.consent_register.entries, member_ids)

    async def _store(
        self, store: Store, read: Callable[[Sequence[str]], T], ids: Sequence[str]
    ) -> T:
        """`read(ids)` in `store`'s threads, within what is left of the request's budget;
        StoreUnavailable (503) when it runs out."""
        budget = self.settings.serving.store_timeout_seconds
        call = functools.partial(contextvars.copy_context().run, read, ids)
        pending = asyncio.get_running_loop().run_in_executor(store_pool(store), call)
        try:
            return await asyncio.wait_for(pending, self.started + budget - time.monotonic())
        except TimeoutError:
            raise StoreUnavailable(
                f"the {store} did not answer within {budget:g} s "
                "(serving.store_timeout_seconds); retry in a few seconds"
            ) from None
