"""What the API, the seeder and the cluster worker ask of a generation service: fetch(key) -> PNG, and its lifecycle.

Both services, the local one (a worker thread renders batches) and the cluster one (Dask workers render), share this
base: a cache read, then one in-process single flight per cold tile, admitted once by the one Admission path.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import IntEnum

from anyio import to_thread

from terradream.cache.store import CacheTileStore
from terradream.core.keys import TileKey
from terradream.engine.admission import Admission, FairShare
from terradream.engine.metrics import ServerMetrics
from terradream.engine.singleflight import SingleFlight


class Priority(IntEnum):
    """Queue order: lower values go first."""

    INTERACTIVE = 0
    BULK = 1


@dataclass(frozen=True)
class TileResult:
    """A tile's canonical PNG and whether it was already cached when asked for."""

    png: bytes
    hit: bool


class TileService(ABC):
    """fetch() for cached and cold tiles; subclasses say how a cold tile is made (and may refuse to start one)."""

    def __init__(self, store: CacheTileStore, metrics: ServerMetrics, admission: Admission) -> None:
        """Read tiles from `store`; admit new cold tiles through `admission`; count drops in `metrics`."""
        self.store = store
        self.metrics = metrics
        self.admission = admission
        self._flights: SingleFlight[TileKey, bytes] = SingleFlight()  # event loop only

    @property
    def retry_after_s(self) -> int:
        """Retry-After of this service's refusals."""
        return self.admission.retry_after_s

    @property
    def fair_share(self) -> FairShare | None:
        """The per-client token buckets of admission (None: no per-client limit)."""
        return self.admission.fair_share

    def requesters(self, key: TileKey) -> int:
        """How many requests are waiting for a cold tile right now (0 when it is not pending)."""
        return self._flights.waiters(key)

    async def fetch(self, key: TileKey, priority: Priority = Priority.INTERACTIVE,
                    client: str | None = None) -> TileResult:
        """The tile's PNG: from the cache, or by joining (or starting) its pending generation.

        Starting one may be refused (RetryLater: Overloaded, Backlogged, RateLimited, NotReady). A client's request
        still waiting when the cold deadline passes gets Backlogged (503). Cancelling the caller, or the deadline,
        withdraws it as a requester; the tile is dropped when nobody else wants it (unless the service says it must
        finish).
        """
        started_s = time.monotonic()
        png = await to_thread.run_sync(self.store.get_png, key)
        if png is not None:
            return TileResult(png, True)
        flight = self._flights.run(key, lambda: self._start(key, priority, client),
                                   join=lambda: self._join(key, priority), abandon=lambda: self._abandon(key))
        deadline_s = self.admission.deadline_s(client)
        if deadline_s is None:
            return TileResult(await flight, False)
        scope = asyncio.timeout_at(asyncio.get_running_loop().time() + deadline_s - (time.monotonic() - started_s))
        try:
            async with scope:
                png = await flight
        except TimeoutError:
            if not scope.expired():  # the generation's own timeout, not the deadline
                raise
            raise self.admission.backlogged(time.monotonic() - started_s) from None
        return TileResult(png, False)

    @abstractmethod
    def start(self) -> None:
        """Start background work; call from the event loop that will await tiles."""

    @abstractmethod
    async def close(self) -> None:
        """Withdraw every pending tile and stop."""

    @property
    @abstractmethod
    def queue_depth(self) -> int:
        """Cold tiles waiting to be made."""

    @abstractmethod
    def _start(self, key: TileKey, priority: Priority, client: str | None) -> Awaitable[bytes]:
        """Admit a new cold tile (or raise to refuse it) and return what produces its PNG."""

    def _join(self, key: TileKey, priority: Priority) -> None:  # noqa: B027 - an optional hook
        """Another request joins a pending tile (a service may raise its priority)."""

    def _abandon(self, key: TileKey) -> bool:
        """The last requester left before the tile was made: True drops (cancels) it."""
        self.metrics.tiles_dropped.inc()
        return True

    def _cancel_pending(self) -> list[asyncio.Future[bytes]]:
        """Cancel every pending tile's production (shutdown); returns them, to be awaited if wanted."""
        return self._flights.cancel_all()
