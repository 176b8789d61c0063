"""In-process single flight: concurrent callers share one execution."""

from __future__ import annotations

import asyncio

import pytest

from terradream.engine.singleflight import SingleFlight

pytestmark = pytest.mark.unit


def test_local_single_flight_runs_the_factory_once_for_50_callers() -> None:
    calls = 0

    async def factory() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "tile"

    async def main() -> list[str]:
        flight: SingleFlight[str, str] = SingleFlight()
        results = await asyncio.gather(*(flight.run("k", factory) for _ in range(50)))
        assert len(flight) == 0  # entry removed when done
        assert await flight.run("k", factory) == "tile"  # a later call runs again
        return results

    assert asyncio.run(main()) == ["tile"] * 50
    assert calls == 2


def test_local_single_flight_shares_exceptions_and_survives_cancelled_waiters() -> None:
    started = 0

    async def failing() -> str:
        nonlocal started
        started += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("model failed")

    async def main() -> None:
        flight: SingleFlight[str, str] = SingleFlight()
        first = asyncio.ensure_future(flight.run("k", failing))
        others = [asyncio.ensure_future(flight.run("k", failing)) for _ in range(5)]
        await asyncio.sleep(0.01)
        first.cancel()  # the caller that started it goes away; the others still get the outcome
        results = await asyncio.gather(*others, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) and str(r) == "model failed" for r in results)
        assert len(flight) == 0

    asyncio.run(main())
    assert started == 1
