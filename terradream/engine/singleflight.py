"""Single-flight for cold tiles, shared by the local GenerationService and the cluster's DistributedGeneration.

Requests for one cold tile join one PendingTile: the first admits it (the service may refuse: queue full, client over
its share) and starts its producer task; everyone awaits the same future; the last requester to leave before the tile
is settled drops it. How a tile is produced (a local worker thread, or a Dask graph) is the subclass's business.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

from anyio import to_thread

from terradream.core.keys import TileKey
from terradream.engine.metrics import ServerMetrics
from terradream.cache.store import CacheTileStore


class Priority(IntEnum):
    """Queue order: lower values go first."""

    INTERACTIVE = 0
    BULK = 1


@dataclass(frozen=True)
class TileResult:
    """A tile's canonical PNG and whether it was already cached when asked for."""

    png: bytes
    hit: bool


@dataclass(eq=False)
class PendingTile:
    """One cold tile on its way: its requesters, its producer and the future they all await (PNG bytes)."""

    key: TileKey
    priority: Priority
    future: asyncio.Future[bytes]
    requesters: int = 0
    producer: asyncio.Task[None] | None = None


E = TypeVar("E", bound="PendingTile")


class SingleFlight(ABC, Generic[E]):
    """fetch() for cached and cold tiles: one PendingTile per cold key, settled by the subclass's _make()."""

    def __init__(self, store: CacheTileStore, metrics: ServerMetrics) -> None:
        """Read tiles from `store`; count drops in `metrics`."""
        self.store = store
        self.metrics = metrics
        self._pending: dict[TileKey, E] = {}  # event loop only

    def requesters(self, key: TileKey) -> int:
        """How many requests are waiting for a cold tile right now (0 when it is not pending)."""
        entry = self._pending.get(key)
        return entry.requesters if entry is not None else 0

    async def fetch(self, key: TileKey, priority: Priority = Priority.INTERACTIVE,
                    client: str | None = None) -> TileResult:
        """The tile's PNG: from the cache, or by joining (or creating) its pending generation.

        Admission may raise (Overloaded, RateLimited, NotReady). Cancelling the caller withdraws it as a requester;
        the tile is dropped when nobody else wants it.
        """
        png = await to_thread.run_sync(self.store.get_png, key)
        if png is not None:
            return TileResult(png, True)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._admit(key, priority, client)
            self._pending[key] = entry
            entry.producer = asyncio.create_task(self._settle(entry), name=f"terradream-produce-{key}")
        else:
            self._join(entry, priority)
        entry.requesters += 1
        try:
            return TileResult(await asyncio.shield(entry.future), False)
        finally:
            entry.requesters -= 1
            if entry.requesters == 0 and not entry.future.done():
                self._drop(entry)

    @abstractmethod
    def _admit(self, key: TileKey, priority: Priority, client: str | None) -> E:
        """A new pending entry for key, or an exception refusing it."""

    def _join(self, entry: E, priority: Priority) -> None:
        """Another request joins a pending tile (a service may raise its priority)."""

    @abstractmethod
    async def _make(self, entry: E) -> bytes:
        """Produce the tile's PNG."""

    async def _settle(self, entry: E) -> None:
        """The producer task: resolve entry.future with _make's PNG (or its error), then retire the entry."""
        try:
            png = await self._make(entry)
        except asyncio.CancelledError:
            entry.future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - reported to every requester
            entry.future.set_exception(exc)
            if entry.requesters == 0:
                entry.future.exception()  # retrieved: nobody is left to see it
        else:
            entry.future.set_result(png)
        finally:
            self._retire(entry)

    def _retire(self, entry: E) -> None:
        """Forget a settled or dropped entry (only if it is still the key's current one)."""
        if self._pending.get(entry.key) is entry:
            del self._pending[entry.key]

    def _drop(self, entry: E) -> None:
        """Forget a tile nobody wants any more and cancel its producer."""
        self._retire(entry)
        if entry.producer is not None:
            entry.producer.cancel()
        self.metrics.tiles_dropped.inc()

    def _cancel_producers(self) -> list[asyncio.Task[None]]:
        """Cancel every pending tile's producer (shutdown); returns them, to be awaited if wanted."""
        producers = [entry.producer for entry in self._pending.values() if entry.producer is not None]
        for producer in producers:
            producer.cancel()
        return producers
