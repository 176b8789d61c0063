"""GenerationService: one worker thread owns the Cascade; the event loop queues, de-duplicates and cancels tiles.

Requests for a cold tile join one pending entry (in-process single-flight, from SingleFlight). Its producer task
optionally takes a cross-process lock (Redis, one per 2x2 block), re-checks the cache, and queues the tile for the
worker, which renders up to batch_size distinct tiles per cascade call, interactive before bulk. A tile whose every
requester went away before the worker took it is dropped. A full queue refuses new cold tiles with Overloaded (HTTP
503); a client past its fair share of new generations (FairShare, a token bucket per client address) gets
RateLimited (HTTP 429).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from anyio import CapacityLimiter, to_thread

from terradream.model.cascade import Cascade
from terradream.core.keys import TileKey
from terradream.engine.admission import FairShare, RateLimited
from terradream.cache.codec import encode_png
from terradream.engine.metrics import ServerMetrics
from terradream.engine.singleflight import PendingTile, Priority, SingleFlight
from terradream.cache.store import CacheTileStore

log = logging.getLogger("terradream.engine.generation")

LOCK_WAIT_SLICE_S = 2.0  # one blocking wait for a foreign lock; waiters loop, re-checking the cache in between


class Overloaded(Exception):
    """The generation queue is full: the client should retry after retry_after_s seconds (HTTP 503)."""

    def __init__(self, retry_after_s: int, depth: int) -> None:
        """Remember when to retry and how deep the queue was."""
        super().__init__(f"generation queue is full ({depth} tiles waiting); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class GenerationLock(Protocol):
    """A cross-process mutex per tile (Redis SET NX PX with a token); blocking calls, run off the event loop."""

    def acquire(self, name: str, ttl_ms: int) -> str | None:
        """A token when taken, None when someone else holds it."""
        ...

    def release(self, name: str, token: str) -> Any:
        """Release (only if still ours) and wake waiters."""
        ...

    def wait_released(self, name: str, timeout_s: float) -> Any:
        """Block until the lock is released or timeout_s passes."""
        ...

    def extend(self, name: str, token: str, ttl_ms: int) -> Any:
        """Reset the lock's TTL if token still owns it (long generations)."""
        ...


@dataclass(eq=False)
class QueuedTile(PendingTile):
    """A pending tile with its place in the worker's queue."""

    queued: bool = False  # pushed onto the worker's heap
    started: bool = False  # taken by the worker: it will finish
    dropped: bool = False  # every requester left before the worker took it
    counted: bool = True  # still counted in the queue depth
    rendered: asyncio.Future[bytes] | None = field(default=None, repr=False)


class GenerationService(SingleFlight[QueuedTile]):
    """Serves canonical PNG tiles from the cache, generating cold ones once, in batches, off the event loop."""

    def __init__(self, cascade: Cascade, store: CacheTileStore, metrics: ServerMetrics, *, batch_size: int = 8,
                 queue_max: int = 1024, retry_after_s: int = 2, lock: GenerationLock | None = None,
                 lock_ttl_s: float = 300.0, fair_share: FairShare | None = None) -> None:
        """Wire the worker to a cascade writing into `store`; `lock` enables cross-process single-flight.

        `fair_share` limits how many new generations each client may start (None: no per-client limit).
        """
        super().__init__(store, metrics)
        self.cascade = cascade
        self.batch_size = batch_size
        self.queue_max = queue_max
        self.retry_after_s = retry_after_s
        self.lock = lock
        self.lock_ttl_s = lock_ttl_s
        self.fair_share = fair_share
        self._cv = threading.Condition()
        self._heap: list[tuple[int, int, QueuedTile]] = []
        self._seq = itertools.count()
        self._depth = 0  # tiles waiting for the worker (guarded by _cv)
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
        self._cancel_producers()
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
        unit = self.cascade.unit_of(key)
        return f"gen:{unit.world}/{self.store.version}/{unit.z}/{unit.x}/{unit.y}"

    # ---- the event-loop side ----
    def _admit(self, key: TileKey, priority: Priority, client: str | None) -> QueuedTile:
        """A new pending tile (queued unless a lock must be taken first); RateLimited past the client's share,
        Overloaded when full.

        The share is checked first (a greedy client is told to slow down even while the queue is full) but only
        spent on admission, so a 503 costs the client no token.
        """
        share = self.fair_share
        with self._cv:
            if share is not None and client is not None:
                try:
                    share.check(client)
                except RateLimited:
                    self.metrics.rate_limited.inc()
                    raise
            if self._depth >= self.queue_max:
                self.metrics.overloaded.inc()
                raise Overloaded(self.retry_after_s, self._depth)
            if share is not None and client is not None:
                share.take(client)  # cannot fail: only this loop spends, and tokens only grew since check()
            self._depth += 1
        entry = QueuedTile(key, priority, asyncio.get_running_loop().create_future())
        if self.lock is None:  # straight onto the worker's heap: queue_depth then counts only queued tiles
            self._enqueue(entry)
        return entry

    def _join(self, entry: QueuedTile, priority: Priority) -> None:
        """Move a waiting tile up when a more urgent requester joins it."""
        with self._cv:
            if priority < entry.priority and not entry.started:
                entry.priority = priority
                if entry.queued:  # the stale heap item is skipped when popped
                    heapq.heappush(self._heap, (int(priority), next(self._seq), entry))

    def _uncount(self, entry: QueuedTile) -> None:
        """Remove a tile from the queue depth exactly once (caller holds _cv)."""
        if entry.counted:
            entry.counted = False
            self._depth -= 1

    def _drop(self, entry: QueuedTile) -> None:
        """Forget a tile nobody wants any more, unless the worker already took it (then it finishes into the cache)."""
        with self._cv:
            if entry.started:
                return
            entry.dropped = True
        super()._drop(entry)
        log.debug("dropped tile nobody waits for", extra={"tile": "/".join(map(str, entry.key))})

    def _retire(self, entry: QueuedTile) -> None:
        """Out of the queue depth and the pending map."""
        with self._cv:
            self._uncount(entry)
        super()._retire(entry)

    async def _make(self, entry: QueuedTile) -> bytes:
        """The worker's PNG for the tile, behind the cross-process lock when there is one."""
        return await (self._rendered(entry) if self.lock is None else self._produce_locked(entry))

    async def _produce_locked(self, entry: QueuedTile) -> bytes:
        """Cross-process single-flight: take the tile's lock, re-check the cache, render, release; or wait and read."""
        assert self.lock is not None
        name = self.lock_name(entry.key)
        ttl_ms = int(self.lock_ttl_s * 1000)
        while True:
            try:
                token = await to_thread.run_sync(self.lock.acquire, name, ttl_ms)
            except Exception as exc:  # lock backend down: degrade to in-process single-flight
                log.debug("generation lock unavailable; generating without it", extra={"error": repr(exc)})
                self._enqueue(entry)
                return await self._rendered(entry)
            if token is not None:
                heartbeat = asyncio.create_task(self._keep_lock(name, token, ttl_ms))
                try:  # another process may have finished the tile just before we took the lock
                    png = await to_thread.run_sync(self.store.get_png, entry.key)
                    if png is not None:
                        return png
                    self._enqueue(entry)
                    return await self._rendered(entry)
                finally:
                    heartbeat.cancel()
                    await self._release(name, token)
            try:
                await to_thread.run_sync(self.lock.wait_released, name, LOCK_WAIT_SLICE_S,
                                         limiter=self._lock_waiters)
            except Exception as exc:
                log.debug("waiting for a generation lock failed", extra={"error": repr(exc)})
            png = await to_thread.run_sync(self.store.get_png, entry.key)
            if png is not None:
                return png

    async def _keep_lock(self, name: str, token: str, ttl_ms: int) -> None:
        """Extend a held lock every third of its TTL, so a generation longer than the TTL keeps it."""
        assert self.lock is not None
        while True:
            await asyncio.sleep(ttl_ms / 3000)
            try:
                await to_thread.run_sync(self.lock.extend, name, token, ttl_ms)
            except Exception as exc:  # the TTL still bounds the lock; waiters may take over later
                log.debug("extending a generation lock failed", extra={"error": repr(exc)})

    async def _release(self, name: str, token: str) -> None:
        """Release a lock we hold; failures only delay waiters until the TTL."""
        assert self.lock is not None
        try:
            await asyncio.shield(to_thread.run_sync(self.lock.release, name, token))
        except Exception as exc:
            log.debug("releasing a generation lock failed", extra={"error": repr(exc)})

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
                self._uncount(entry)
                batch.append(entry)
            return batch

    def _work(self) -> None:
        """Worker loop: render batches until stopped."""
        while (batch := self._take_batch()) is not None:
            if batch:
                self._render_batch(batch)

    def _render_batch(self, batch: list[QueuedTile]) -> None:
        """One cascade call for the batch; hands each requester its PNG (or the error) on the event loop."""
        keys = [entry.key for entry in batch]
        generated_before = self.cascade.stats.tiles_generated
        started_s = time.perf_counter()
        outcome: dict[TileKey, bytes] | Exception
        try:
            arrays = self.cascade.render(keys)
            written = self.store.take_written()
            outcome = {k: written[k] if k in written else encode_png(arrays[k]) for k in keys}
        except Exception as exc:
            self.store.take_written()
            log.exception("tile generation failed", extra={"tiles": len(keys)})
            outcome = exc
        elapsed_s = time.perf_counter() - started_s
        self.metrics.observe_batch(len(keys), elapsed_s, self.cascade.stats.tiles_generated - generated_before)
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
