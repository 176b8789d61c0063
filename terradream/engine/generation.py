"""The local generation service: one worker thread owns the Renderer; the event loop queues, de-duplicates, cancels.

Requests for a cold tile join one flight (TileService). Its producer optionally takes a cross-process lock (Redis, one
per metatile block, cache.locks.exclusive), re-checks the cache, and queues the tile for the worker, which renders up
to batch_size distinct tiles per call, interactive before bulk. A tile whose every requester went away before the
worker took it is dropped; one the worker took finishes into the cache. Admission refuses new cold tiles when the
queue is full (Overloaded, 503), when the queue ahead would take longer than the cold deadline at the measured
seconds per tile (Backlogged, 503), or when the client is past its fair share (RateLimited, 429).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from anyio import CapacityLimiter, to_thread

from terradream.cache.codec import encode_png
from terradream.cache.locks import ExclusiveLock, exclusive
from terradream.cache.store import CacheTileStore
from terradream.core.keys import TileKey
from terradream.engine.admission import Admission
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import Priority, TileService

log = logging.getLogger("terradream.engine.generation")


class RenderStats(Protocol):
    """The renderer's monotonic counters the service reads."""

    tiles_generated: int


class Renderer(Protocol):
    """What the worker needs from the model (the Cascade): tiles for keys, their metatile unit, counters."""

    @property
    def stats(self) -> RenderStats:
        """Counters of what the renderer made."""
        ...

    def render(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        """The tiles for keys, generating (and storing) whatever is missing."""
        ...

    def unit_of(self, key: TileKey) -> TileKey:
        """The unit (metatile block) one window makes key in."""
        ...


@dataclass(eq=False)
class QueuedTile:
    """A cold tile on its way through the worker's queue."""

    key: TileKey
    priority: Priority
    queued: bool = False  # pushed onto the worker's heap
    started: bool = False  # taken by the worker: it will finish
    dropped: bool = False  # every requester left before the worker took it
    counted: bool = True  # still counted in the queue depth
    rendered: asyncio.Future[bytes] | None = field(default=None, repr=False)


class LockClaims:
    """The cascade's unit claims through a cross-process lock (names as the generation service's own); a lock
    backend that fails lets this process make the unit (tiles are pure functions: duplicate work is harmless)."""

    UNLOCKED = object()

    def __init__(self, lock: ExclusiveLock, name_of: Callable[[TileKey], str], ttl_s: float) -> None:
        self.lock, self.name_of, self.ttl_s = lock, name_of, ttl_s

    def claim(self, unit: TileKey) -> object | None:
        try:
            return self.lock.acquire(self.name_of(unit), int(self.ttl_s * 1000))
        except Exception as error:
            log.debug("unit lock unavailable (%r); making the unit without it", error)
            return self.UNLOCKED

    def release(self, unit: TileKey, token: object) -> None:
        if token is not self.UNLOCKED:
            try:
                self.lock.release(self.name_of(unit), str(token))
            except Exception as error:  # the TTL frees it
                log.debug("could not release a unit lock (%r)", error)

    def wait(self, unit: TileKey) -> None:
        try:
            self.lock.wait_released(self.name_of(unit), self.ttl_s)
        except Exception as error:
            log.debug("waiting for a unit lock failed (%r)", error)


class GenerationService(TileService):
    """Serves canonical PNG tiles from the cache, generating cold ones once, in batches, off the event loop."""

    def __init__(self, renderer: Renderer, store: CacheTileStore, metrics: ServerMetrics, admission: Admission, *,
                 batch_size: int = 8, lock: ExclusiveLock | None = None, lock_ttl_s: float = 300.0) -> None:
        """Wire the worker to a renderer writing into `store`; `lock` enables cross-process single flight."""
        super().__init__(store, metrics, admission)
        self.renderer = renderer
        self.batch_size = batch_size
        self.lock = lock
        self.lock_ttl_s = lock_ttl_s
        self._cv = threading.Condition()
        self._heap: list[tuple[int, int, QueuedTile]] = []
        self._seq = itertools.count()
        self._entries: dict[TileKey, QueuedTile] = {}  # the flights' queue state (event loop only)
        self._depth = 0  # tiles waiting for the worker (guarded by _cv)
        self._rendering = 0  # tiles of the batch the worker is rendering now (guarded by _cv)
        self._paused = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock_waiters = CapacityLimiter(16)  # threads blocked on foreign locks never starve cache reads
        metrics.watch_queue_depth(lambda: self.queue_depth)

    # ---- lifecycle ----
    def start(self) -> None:
        """Start the worker thread; call from the event loop that will await tiles."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="terradream-generation", daemon=True)
        self._thread.start()

    async def close(self, timeout_s: float = 30.0) -> None:
        """Cancel waiting tiles and stop the worker after its current batch (waits at most timeout_s for it)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._cancel_pending()
        if self._thread is not None:
            await to_thread.run_sync(self._thread.join, timeout_s)

    def pause(self) -> None:
        """Hold the worker before its next batch (maintenance, tests); queued tiles wait."""
        with self._cv:
            self._paused = True

    def resume(self) -> None:
        """Let a paused worker go on."""
        with self._cv:
            self._paused = False
            self._cv.notify_all()

    @property
    def queue_depth(self) -> int:
        """Tiles waiting for the worker (including those waiting on another process's lock)."""
        with self._cv:
            return self._depth

    def lock_name(self, key: TileKey) -> str:
        """Name of the cross-process generation lock of a tile: its block's (one window makes the block), with the
        model version."""
        unit = self.renderer.unit_of(key)
        return f"gen:{unit.world}/{self.store.version}/{unit.z}/{unit.x}/{unit.y}"

    # ---- the event-loop side ----
    def _start(self, key: TileKey, priority: Priority, client: str | None) -> Coroutine[Any, Any, bytes]:
        """Admit a new tile and queue it at once (unless a lock must be taken first); returns its producer."""
        with self._cv:
            self.admission.admit(self._depth, client, ahead=self._depth + self._rendering)
            self._depth += 1
        entry = self._entries[key] = QueuedTile(key, priority)
        if self.lock is None:  # straight onto the worker's heap: queue_depth then counts only queued tiles
            self._enqueue(entry)
        return self._produce(entry)

    def _join(self, key: TileKey, priority: Priority) -> None:
        """Move a waiting tile up when a more urgent requester joins it."""
        entry = self._entries[key]
        with self._cv:
            if priority < entry.priority and not entry.started:
                entry.priority = priority
                if entry.queued:  # the stale heap item is skipped when popped
                    heapq.heappush(self._heap, (int(priority), next(self._seq), entry))

    def _abandon(self, key: TileKey) -> bool:
        """Drop a tile nobody wants any more, unless the worker already took it (then it finishes into the cache)."""
        entry = self._entries[key]
        with self._cv:
            if entry.started:
                return False
            entry.dropped = True
        self._retire(entry)
        log.debug("dropped tile nobody waits for", extra={"tile": "/".join(map(str, key))})
        return super()._abandon(key)

    def _retire(self, entry: QueuedTile) -> None:
        """Out of the queue depth (exactly once) and the entries."""
        with self._cv:
            if entry.counted:
                entry.counted = False
                self._depth -= 1
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]

    async def _produce(self, entry: QueuedTile) -> bytes:
        """The worker's PNG for the tile, behind the cross-process lock when there is one."""
        try:
            if self.lock is None:
                return await self._rendered(entry)
            return await exclusive(self.lock, self.lock_name(entry.key),
                                   lambda: to_thread.run_sync(self.store.get_png, entry.key),
                                   lambda: self._queue_and_render(entry), ttl_ms=int(self.lock_ttl_s * 1000),
                                   waiters=self._lock_waiters)
        finally:
            self._retire(entry)

    async def _queue_and_render(self, entry: QueuedTile) -> bytes:
        """Queue a tile for the worker and await its PNG."""
        self._enqueue(entry)
        return await self._rendered(entry)

    def _enqueue(self, entry: QueuedTile) -> None:
        """Put the tile on the worker's heap (a tile already cached costs the worker a store read, no generation)."""
        entry.rendered = asyncio.get_running_loop().create_future()
        with self._cv:
            if entry.dropped:
                raise asyncio.CancelledError()
            entry.queued = True
            heapq.heappush(self._heap, (int(entry.priority), next(self._seq), entry))
            self._cv.notify()

    @staticmethod
    async def _rendered(entry: QueuedTile) -> bytes:
        """Await the worker's PNG for a queued tile."""
        assert entry.rendered is not None
        return await entry.rendered

    # ---- the worker thread ----
    def _take_batch(self) -> list[QueuedTile] | None:
        """Up to batch_size distinct waiting tiles, most urgent first; None when stopping."""
        with self._cv:
            while not self._stopping and (self._paused or not self._heap):
                self._cv.wait()
            if self._stopping:
                return None
            batch: list[QueuedTile] = []
            while self._heap and len(batch) < self.batch_size:
                _, _, entry = heapq.heappop(self._heap)
                if entry.dropped or entry.started:
                    continue
                entry.started = True
                if entry.counted:
                    entry.counted = False
                    self._depth -= 1
                batch.append(entry)
            self._rendering = len(batch)
            return batch

    def _work(self) -> None:
        """Worker loop: render batches until stopped."""
        while (batch := self._take_batch()) is not None:
            if batch:
                self._render_batch(batch)

    def _render_batch(self, batch: list[QueuedTile]) -> None:
        """One render call for the batch; hands each requester its PNG (or the error) on the event loop."""
        keys = [entry.key for entry in batch]
        generated_before = self.renderer.stats.tiles_generated
        started_s = time.perf_counter()
        outcome: dict[TileKey, bytes] | Exception
        try:
            arrays = self.renderer.render(keys)
            written = self.store.take_written()
            outcome = {k: written[k] if k in written else encode_png(arrays[k]) for k in keys}
        except Exception as exc:
            self.store.take_written()
            log.exception("tile generation failed", extra={"tiles": len(keys)})
            outcome = exc
        elapsed_s = time.perf_counter() - started_s
        with self._cv:
            self._rendering = 0
        generated = self.renderer.stats.tiles_generated - generated_before
        if generated > 0:  # batches that only read the cache or made root tiles say nothing about the model's rate
            # per tile made, parents included: a cold chain's first batch must not read as the cost of every tile
            # (its parents serve the tiles after it); the deadline of a queued request still bounds its wait
            self.admission.rate.observe(max(len(keys), generated), elapsed_s)
        self.metrics.observe_batch(len(keys), elapsed_s, generated)
        log.info("rendered batch", extra={"tiles": len(keys), "seconds": round(elapsed_s, 3)})
        for entry in batch:
            result = outcome if isinstance(outcome, Exception) else outcome[entry.key]
            self._settle_threadsafe(entry, result)

    def _settle_threadsafe(self, entry: QueuedTile, result: bytes | Exception) -> None:
        """Resolve entry.rendered from the worker thread (ignored when the loop is gone or nobody awaits)."""
        future, loop = entry.rendered, self._loop
        if future is None or loop is None:
            return
        settle: Callable[[], None]
        if isinstance(result, Exception):
            def settle() -> None:
                if not future.done():
                    future.set_exception(result)
        else:
            def settle() -> None:
                if not future.done():
                    future.set_result(result)
        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # loop closed during shutdown
            pass
