"""Admission by expected wait: the measured seconds per tile, refusals at once past the cold deadline, and queued
requests answered 503 when it passes (stub renderer, in-memory cache: milliseconds per test)."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.test_generation_service import StubRenderer, key, renderer, until  # tests/engine
from terradream.api.errors import status_of
from terradream.cache import MemoryLRU
from terradream.cache.store import CacheTileStore
from terradream.core.errors import Backlogged, RateLimited
from terradream.engine.admission import Admission, FairShare, TileRate
from terradream.engine.generation import GenerationService
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import Priority

pytestmark = pytest.mark.unit


def test_tile_rate_is_an_ewma_of_seconds_per_tile() -> None:
    rate = TileRate(weight=0.5)
    assert rate.expected_wait_s(100) == 0.0  # nothing measured yet: no estimate, nothing refused
    rate.observe(4, 2.0)
    assert rate.seconds_per_tile == 0.5 and rate.expected_wait_s(3) == 2.0  # three ahead, then this one
    rate.observe(2, 3.0)
    assert rate.seconds_per_tile == 1.0
    rate.observe(0, 9.0)  # an empty batch says nothing
    assert rate.seconds_per_tile == 1.0


async def started_service(deadline_s: float, seconds_per_tile: float | None = None,
                          burst: int = 100) -> GenerationService:
    """A started, paused service over a stub renderer, with a cold deadline and (optionally) a measured rate."""
    metrics = ServerMetrics()
    admission = Admission(metrics, queue_max=64, retry_after_s=3, cold_deadline_s=deadline_s,
                          fair_share=FairShare(rate_per_s=0.001, burst=burst))
    if seconds_per_tile is not None:
        admission.rate.observe(1, seconds_per_tile)
    store = CacheTileStore(MemoryLRU(2**24), "v1")
    service = GenerationService(StubRenderer(store), store, metrics, admission, batch_size=4)
    service.start()
    service.pause()
    return service


def test_a_tile_that_cannot_start_in_time_is_refused_at_once() -> None:
    async def main() -> None:
        service = await started_service(deadline_s=1.0, seconds_per_tile=0.5)
        try:
            admitted = [asyncio.ensure_future(service.fetch(key(x), client="a")) for x in range(2)]
            await until(lambda: service.queue_depth == 2)  # 0.5 s and 1.0 s expected: both within 1 s
            started = time.monotonic()
            with pytest.raises(Backlogged) as refused:
                await service.fetch(key(2), client="b")  # 1.5 s expected
            assert time.monotonic() - started < 0.5 and status_of(refused.value) == 503
            assert refused.value.retry_after_s == 3 and "deadline" in str(refused.value)
            assert service.fair_share is not None and service.fair_share.tokens("b") == 100  # no token spent
            assert service.queue_depth == 2
            joined = asyncio.ensure_future(service.fetch(key(1), client="b"))  # joining a queued tile is free
            internal = asyncio.ensure_future(service.fetch(key(3), Priority.BULK))  # no client: no deadline
            await until(lambda: service.queue_depth == 3)
            service.resume()
            results = await asyncio.gather(*admitted, joined, internal)
            assert [r.hit for r in results] == [False] * 4
            assert (await service.fetch(key(2), client="b")).hit is False  # the queue drained: admitted again
            assert (await service.fetch(key(2), client="b")).hit  # and a cached tile is never refused
        finally:
            await service.close(timeout_s=5.0)

    asyncio.run(asyncio.wait_for(main(), 10.0))


def test_a_queued_request_past_the_deadline_gets_503_and_its_tile_is_dropped() -> None:
    async def main() -> None:
        service = await started_service(deadline_s=0.3)  # nothing measured: admitted, then the worker is held
        try:
            started = time.monotonic()
            with pytest.raises(Backlogged) as expired:
                await service.fetch(key(5), client="a")
            assert 0.25 < time.monotonic() - started < 1.0 and expired.value.retry_after_s == 3
            assert service.metrics.deadline_expired._value.get() == 1
            assert service.queue_depth == 0  # nobody else wanted it: dropped before the worker took it
            kept = asyncio.ensure_future(service.fetch(key(6)))  # an internal caller waits as long as it takes
            late = asyncio.ensure_future(service.fetch(key(6), client="a"))  # a client joining it does not
            with pytest.raises(Backlogged):
                await late
            assert service.queue_depth == 1
            service.resume()
            assert not (await kept).hit
            assert [k for batch in renderer(service).batches for k in batch] == [key(6)]
        finally:
            await service.close(timeout_s=5.0)

    asyncio.run(asyncio.wait_for(main(), 10.0))


def test_an_idle_worker_always_takes_a_tile_and_the_share_is_checked_first() -> None:
    async def main() -> None:
        service = await started_service(deadline_s=5.0, seconds_per_tile=10.0, burst=2)
        try:
            first = asyncio.ensure_future(service.fetch(key(1), client="a"))  # nothing ahead: admitted anyway,
            await until(lambda: service.queue_depth == 1)  # or one slow batch would refuse every tile for good
            with pytest.raises(Backlogged):
                await service.fetch(key(2), client="a")  # 20 s expected, 5 s allowed
            assert service.fair_share is not None and int(service.fair_share.tokens("a")) == 1  # refused: not charged
            service.admission.cold_deadline_s = 60.0
            second = asyncio.ensure_future(service.fetch(key(2), client="a"))
            await until(lambda: service.queue_depth == 2)
            with pytest.raises(RateLimited):
                await service.fetch(key(3), client="a")
            service.resume()
            await asyncio.gather(first, second)
        finally:
            await service.close(timeout_s=5.0)

    asyncio.run(asyncio.wait_for(main(), 10.0))
