"""The local generation service with a stub renderer: queueing, priorities, batching, cancellation, admission.

No model, no HTTP: the renderer records its batches and returns flat tiles, so every test runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from terradream.api.errors import status_of
from terradream.cache import MemoryLRU
from terradream.cache.store import CacheTileStore
from terradream.core.errors import Overloaded, RateLimited
from terradream.core.keys import TileKey
from terradream.engine.admission import Admission, FairShare
from terradream.engine.generation import GenerationService
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import Priority

pytestmark = pytest.mark.unit


@dataclass
class StubStats:
    """The renderer's counters."""

    tiles_generated: int = 0


@dataclass
class StubRenderer:
    """Renders flat tiles whose colour is x into the store (as the Cascade does), recording every batch of keys."""

    store: CacheTileStore
    batches: list[list[TileKey]] = field(default_factory=list)
    stats: StubStats = field(default_factory=StubStats)
    rendered: threading.Event = field(default_factory=threading.Event)

    def render(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        self.batches.append(list(keys))
        self.stats.tiles_generated += len(keys)
        made = {k: np.full((256, 256, 3), k.x % 256, dtype=np.uint8) for k in keys}
        self.store.put_tiles(made)
        self.rendered.set()
        return made

    def unit_of(self, key: TileKey) -> TileKey:
        return key


def key(x: int) -> TileKey:
    """Tile x of row 0 at zoom 8."""
    return TileKey("earth", 8, x, 0)


def run(body: Callable[[GenerationService], Awaitable[None]], queue_max: int = 8, burst: int = 100) -> None:
    """Run body with a started, paused service over a stub renderer and an in-memory cache (batch 4)."""
    async def main() -> None:
        metrics = ServerMetrics()
        admission = Admission(metrics, queue_max=queue_max, retry_after_s=3,
                              fair_share=FairShare(rate_per_s=0.001, burst=burst))
        store = CacheTileStore(MemoryLRU(2**24), "v1")
        service = GenerationService(StubRenderer(store), store, metrics, admission, batch_size=4)
        service.start()
        service.pause()
        try:
            await asyncio.wait_for(body(service), timeout=5.0)
        finally:
            await service.close(timeout_s=5.0)

    asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until condition() holds (run() bounds the wait)."""
    while not condition():
        await asyncio.sleep(0.001)


def renderer(svc: GenerationService) -> StubRenderer:
    """The service's stub renderer."""
    assert isinstance(svc.renderer, StubRenderer)
    return svc.renderer


def test_interactive_tiles_render_before_bulk_ones() -> None:
    async def body(service: GenerationService) -> None:
        bulk = [asyncio.ensure_future(service.fetch(key(x), Priority.BULK)) for x in range(3)]
        interactive = [asyncio.ensure_future(service.fetch(key(x), Priority.INTERACTIVE)) for x in (10, 11)]
        await until(lambda: service.queue_depth == 5)
        service.batch_size = 2
        service.resume()
        results = await asyncio.gather(*bulk, *interactive)
        # both interactive tiles first; their order among themselves follows whichever cache lookup (a thread)
        # finished first
        assert sorted(renderer(service).batches[0]) == [key(10), key(11)]
        assert all(not r.hit for r in results)

    run(body)


def test_a_bulk_tile_joined_by_an_interactive_request_moves_up() -> None:
    async def body(service: GenerationService) -> None:
        first = [asyncio.ensure_future(service.fetch(key(x), Priority.BULK)) for x in range(3)]
        await until(lambda: service.queue_depth == 3)
        joined = asyncio.ensure_future(service.fetch(key(2), Priority.INTERACTIVE))
        await until(lambda: service.requesters(key(2)) == 2)
        service.batch_size = 1
        service.resume()
        await asyncio.gather(*first, joined)
        assert renderer(service).batches[0] == [key(2)]

    run(body)


def test_waiting_tiles_form_batches_of_batch_size() -> None:
    async def body(service: GenerationService) -> None:
        fetches = [asyncio.ensure_future(service.fetch(key(x))) for x in range(4)]
        fetches += [asyncio.ensure_future(service.fetch(key(x))) for x in range(4)]  # joiners add no work
        await until(lambda: service.queue_depth == 4)
        service.resume()
        results = await asyncio.gather(*fetches)
        batches = renderer(service).batches  # one batch of the four; their order follows cache look-up threads
        assert len(batches) == 1 and sorted(batches[0], key=lambda k: k.x) == [key(0), key(1), key(2), key(3)]
        assert [r.png for r in results[:4]] == [r.png for r in results[4:]]
        assert (await service.fetch(key(0))).hit  # cached now

    run(body)


def test_abandoned_tiles_are_dropped_before_rendering() -> None:
    async def body(service: GenerationService) -> None:
        wanted = asyncio.ensure_future(service.fetch(key(1)))
        abandoned = asyncio.ensure_future(service.fetch(key(2)))
        await until(lambda: service.queue_depth == 2)
        abandoned.cancel()
        await until(lambda: service.queue_depth == 1)
        assert service.requesters(key(2)) == 0
        service.resume()
        await wanted
        assert renderer(service).batches == [[key(1)]]
        assert service.metrics.tiles_dropped._value.get() == 1

    run(body)


def test_a_tile_the_worker_took_finishes_into_the_cache() -> None:
    async def body(service: GenerationService) -> None:
        service.resume()
        fetch = asyncio.ensure_future(service.fetch(key(5)))
        await until(lambda: renderer(service).rendered.is_set())
        fetch.cancel()
        await until(lambda: service.store.get_png(key(5)) is not None)

    run(body)


def test_a_full_queue_refuses_new_tiles_with_503() -> None:
    async def body(service: GenerationService) -> None:
        waiting = [asyncio.ensure_future(service.fetch(key(x), client="a")) for x in range(2)]
        await until(lambda: service.queue_depth == 2)
        with pytest.raises(Overloaded) as refused:
            await service.fetch(key(9), client="b")
        assert status_of(refused.value) == 503 and refused.value.retry_after_s == 3
        joined = asyncio.ensure_future(service.fetch(key(0), client="b"))  # joining a queued tile is free
        await until(lambda: service.requesters(key(0)) == 2)
        service.resume()
        await asyncio.gather(*waiting, joined)

    run(body, queue_max=2, burst=100)


def test_a_client_past_its_fair_share_gets_429() -> None:
    async def body(service: GenerationService) -> None:
        waiting = [asyncio.ensure_future(service.fetch(key(x), client="greedy")) for x in range(2)]
        await until(lambda: service.queue_depth == 2)
        with pytest.raises(RateLimited) as refused:
            await service.fetch(key(7), client="greedy")
        assert status_of(refused.value) == 429 and refused.value.retry_after_s >= 1
        other = asyncio.ensure_future(service.fetch(key(7), client="polite"))  # other clients still get through
        await until(lambda: service.queue_depth == 3)
        service.resume()
        await asyncio.gather(*waiting, other)
        assert service.metrics.rate_limited._value.get() == 1

    run(body, queue_max=100, burst=2)
