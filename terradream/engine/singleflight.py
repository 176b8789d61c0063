"""In-process single flight: concurrent callers with one key share one execution, its result or its exception.

Both tile services (local and cluster) put every cold tile through one SingleFlight, so a stampede on a tile costs
one generation. The execution outlives any one caller; when the last caller leaves before it finished, the
execution's `abandon` callback decides whether it is cancelled (a tile nobody waits for is dropped) or left to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def cancel_it() -> bool:
    """The default abandon policy: cancel an execution nobody waits for."""
    return True


@dataclass(eq=False)
class Flight(Generic[T]):
    """One shared execution: its task, how many callers await it, and what to do once none does."""

    abandon: Callable[[], bool]
    task: asyncio.Future[T] | None = None
    waiters: int = 0


class SingleFlight(Generic[K, T]):
    """One execution per key in flight; one instance per event loop."""

    def __init__(self) -> None:
        """Start with nothing in flight."""
        self._flights: dict[K, Flight[T]] = {}

    def __len__(self) -> int:
        """Number of keys in flight."""
        return len(self._flights)

    def __contains__(self, key: K) -> bool:
        """Whether an execution for key is in flight."""
        return key in self._flights

    def waiters(self, key: K) -> int:
        """How many callers await key's execution now (0 when none is in flight)."""
        flight = self._flights.get(key)
        return flight.waiters if flight is not None else 0

    async def run(self, key: K, factory: Callable[[], Awaitable[T]], *, join: Callable[[], None] | None = None,
                  abandon: Callable[[], bool] = cancel_it) -> T:
        """Await factory() for key, or join the execution already running for it (then join() is called).

        factory() is called synchronously, so it may refuse by raising (nothing is then in flight). `abandon` is the
        new execution's: called when its last caller leaves early, True cancels it. A caller that is cancelled only
        withdraws itself.
        """
        flight = self._flights.get(key)
        if flight is None:
            flight = Flight(abandon)
            awaitable = factory()
            self._flights[key] = flight
            flight.task = asyncio.ensure_future(self._execute(key, flight, awaitable))
            flight.task.add_done_callback(_retrieve)
        elif join is not None:
            join()
        assert flight.task is not None
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done() and flight.abandon():
                self._forget(key, flight)
                flight.task.cancel()

    def cancel_all(self) -> list[asyncio.Future[T]]:
        """Cancel every execution in flight (shutdown); returns them, to be awaited if wanted."""
        tasks = [flight.task for flight in self._flights.values() if flight.task is not None]
        for task in tasks:
            task.cancel()
        return tasks

    async def _execute(self, key: K, flight: Flight[T], awaitable: Awaitable[T]) -> T:
        """Await the execution, then forget it before any waiter resumes (a new caller starts afresh)."""
        try:
            return await awaitable
        finally:
            self._forget(key, flight)

    def _forget(self, key: K, flight: Flight[T]) -> None:
        """Drop key's entry if it is still this flight."""
        if self._flights.get(key) is flight:
            del self._flights[key]


def _retrieve(task: asyncio.Future[T]) -> None:
    """Mark a failed execution's exception as retrieved: every waiter may be gone."""
    if not task.cancelled():
        task.exception()
