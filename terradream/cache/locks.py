"""Single-flight building blocks: one generation per tile per process (asyncio) and across processes (Redis).

Intended sequence for a tile request (server: async handler; the model runs in one worker thread):

1. `cache.get(key)` (in a thread) -> hit: done.
2. `LocalSingleFlight.run(key, factory)`: concurrent requests in this process share one factory call.
3. The factory runs `run_exclusive(lock, name, lookup, produce)` in a thread (`anyio.to_thread.run_sync`):
   a. `lock.acquire(name, ttl_ms)` (SET NX PX, random token).
   b. Acquired: re-check `lookup()` (another process may just have finished), else `produce()` (generate
      AND put into the shared cache), then `release` (compare-and-delete + PUBLISH a wake-up).
   c. Held elsewhere: `wait_released(name)` (pub/sub wake-up, polling fallback bounded by the lock's PTTL),
      then `lookup()`; on a miss (the holder failed, or died and its TTL expired) go back to (a) and take over.
   d. Redis unreachable, or waited longer than wait_timeout_s: just `produce()` (tiles are pure functions,
      duplicate work is harmless, unavailability is not).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

import redis
from redis.exceptions import RedisError

from terradream.cache.redis import CircuitBreaker, redis_client, safe_url

log = logging.getLogger(__name__)
T = TypeVar("T")

# KEYS[1] lock key, KEYS[2] wake-up channel; ARGV[1] token, ARGV[2] message. Deletes only our own lock.
RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  redis.call('publish', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] lock key; ARGV[1] token, ARGV[2] new TTL in ms. Extends only our own lock.
EXTEND_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class LocalSingleFlight(Generic[T]):
    """Concurrent asyncio callers with the same key share one execution, its result or its exception.

    One instance per event loop. A caller that is cancelled does not cancel the shared execution.
    """

    def __init__(self) -> None:
        """Start with nothing in flight."""
        self._inflight: dict[Hashable, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        """Number of keys in flight."""
        return len(self._inflight)

    async def run(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        """Await factory() for key, or join the execution already running for it."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(factory())
            self._inflight[key] = future
            future.add_done_callback(partial(self._done, key))
        return await asyncio.shield(future)

    def _done(self, key: Hashable, future: asyncio.Future[T]) -> None:
        """Forget a finished execution (and mark its exception retrieved: every waiter may be gone)."""
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()


class RedisLock:
    """A cross-process mutex per name: SET NX PX with a random token, safe release, release wake-ups.

    Methods are synchronous (call them from a worker thread) and raise redis.RedisError when Redis is down;
    after one failure they raise CircuitOpen at once for retry_after_s, so an outage costs no timeout per tile.
    """

    def __init__(self, client: redis.Redis | str, prefix: str = "terradream", poll_s: float = 0.5,
                 retry_after_s: float = 1.0) -> None:
        """Use client (or a new pooled client for a URL); keys `{prefix}:lock:{name}`; poll at most every poll_s."""
        label = f"redis lock {safe_url(client)}" if isinstance(client, str) else "redis lock"
        self.client = redis_client(client) if isinstance(client, str) else client
        self.prefix = prefix
        self.poll_s = poll_s
        self.breaker = CircuitBreaker(label, retry_after_s)
        self._release = self.client.register_script(RELEASE_LUA)
        self._extend = self.client.register_script(EXTEND_LUA)

    def ping(self) -> bool:
        """Whether Redis answers PING now; False at once while failing fast (a due probe pings for real)."""
        try:
            self.breaker.call(self.client.ping)
        except (RedisError, OSError):
            return False
        return True

    def key(self, name: str) -> str:
        """Redis key of lock name."""
        return f"{self.prefix}:lock:{name}"

    def channel(self, name: str) -> str:
        """Pub/sub channel announcing the release of lock name."""
        return f"{self.prefix}:lock-released:{name}"

    def acquire(self, name: str, ttl_ms: int) -> str | None:
        """Take the lock for ttl_ms; returns the token needed to release it, or None when someone holds it."""
        token = secrets.token_hex(16)
        taken = self.breaker.call(lambda: self.client.set(self.key(name), token, nx=True, px=ttl_ms))
        return token if taken else None

    def release(self, name: str, token: str) -> bool:
        """Release the lock if token still owns it and wake waiters; False if it had expired or changed hands."""
        return bool(self.breaker.call(lambda: self._release(keys=[self.key(name), self.channel(name)],
                                                            args=[token, name])))

    def extend(self, name: str, token: str, ttl_ms: int) -> bool:
        """Reset the lock's TTL to ttl_ms if token still owns it (for generations longer than the TTL)."""
        return bool(self.breaker.call(lambda: self._extend(keys=[self.key(name)], args=[token, ttl_ms])))

    def wait_released(self, name: str, timeout_s: float) -> bool:
        """Block until lock name is free (released or expired): True, or False after timeout_s.

        Subscribes before checking, so a release between the check and the wait still wakes us; polls at
        most every poll_s and right when the lock's TTL runs out, so a dead holder costs no extra wait.
        """
        return self.breaker.call(lambda: self._wait_released(name, timeout_s))

    def _wait_released(self, name: str, timeout_s: float) -> bool:
        """wait_released without the circuit breaker."""
        deadline = time.monotonic() + timeout_s
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel(name))
            while True:
                ttl_ms = int(self.client.pttl(self.key(name)))
                if ttl_ms == -2:  # no such key
                    return True
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    return False
                expiry_s = ttl_ms / 1000 + 0.002 if ttl_ms > 0 else self.poll_s
                pubsub.get_message(timeout=min(remaining_s, self.poll_s, expiry_s))
        finally:
            pubsub.close()


def run_exclusive(lock: RedisLock, name: str, lookup: Callable[[], T | None], produce: Callable[[], T],
                  ttl_ms: int = 60_000, wait_timeout_s: float = 30.0) -> T:
    """The cross-process part of the sequence in this module's docstring (steps 3a-3d); blocking.

    lookup() reads the shared cache; produce() generates AND stores, so that waiters' lookup() finds it.
    """
    deadline = time.monotonic() + wait_timeout_s
    while True:
        try:
            token = lock.acquire(name, ttl_ms)
        except RedisError as error:
            log.debug("lock %s unavailable (%r); producing without it", name, error)
            return produce()
        if token is not None:
            try:
                found = lookup()
                return found if found is not None else produce()
            finally:
                _release_quietly(lock, name, token)
        try:
            lock.wait_released(name, max(0.0, deadline - time.monotonic()))
        except RedisError as error:
            log.debug("lock %s unavailable (%r); producing without it", name, error)
            return produce()
        found = lookup()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            return produce()


def _release_quietly(lock: RedisLock, name: str, token: str) -> None:
    """Release, tolerating a Redis outage (the TTL frees the lock then)."""
    try:
        lock.release(name, token)
    except RedisError as error:
        log.debug("could not release lock %s (%r); it expires by TTL", name, error)

