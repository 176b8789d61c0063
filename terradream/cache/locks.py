"""Cross-process single flight: one generation per tile across processes, through a Redis lock (or, for the workers
of one server sharing the embedded cache, a FileLock: the same steps with flock(2)).

The sequence (`exclusive`; the in-process part, one execution per key in a process, is engine.singleflight):

a. `lock.acquire(name, ttl_ms)` (SET NX PX, random token).
b. Acquired: re-check `lookup()` (another process may just have finished), else `produce()` (generate AND put into
   the shared cache), extending the lock every third of its TTL meanwhile, then `release` (compare-and-delete +
   PUBLISH a wake-up).
c. Held elsewhere: `wait_released(name)` (pub/sub wake-up, polling fallback bounded by the lock's PTTL), then
   `lookup()`; on a miss (the holder failed, or died and its TTL expired) go back to (a) and take over.
d. Lock backend unreachable, or waited longer than wait_timeout_s: just `produce()` (tiles are pure functions,
   duplicate work is harmless, unavailability is not).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import redis
from anyio import CapacityLimiter, to_thread
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
WAIT_SLICE_S = 2.0  # one blocking wait for a foreign lock; waiters loop, re-checking the cache in between


class ExclusiveLock(Protocol):
    """A cross-process mutex per name (RedisLock, or a test double); blocking calls, run off the event loop."""

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

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

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
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
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


class FileLock:
    """A cross-process mutex per name among the processes of one host: flock(2) on one of `buckets` lock files.

    For server workers sharing the embedded cache. The kernel drops a dead holder's lock at once (no TTL to wait out);
    names hashing to the same file merely wait for each other. Methods are synchronous (call them off the event loop).
    """

    def __init__(self, directory: Path, buckets: int = 4096, poll_s: float = 0.05) -> None:
        """Keep the lock files under directory (created if missing); poll a held lock every poll_s."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.buckets = buckets
        self.poll_s = poll_s
        self._held: dict[str, int] = {}  # token -> file descriptor holding the flock
        self._guard = threading.Lock()

    def ping(self) -> bool:
        """Whether the lock directory is still there (a lock file can be created in it)."""
        return os.access(self.directory, os.W_OK)

    def close(self) -> None:
        """Release every lock this instance holds."""
        with self._guard:
            held, self._held = self._held, {}
        for fd in held.values():
            os.close(fd)

    def path(self, name: str) -> Path:
        """The lock file of name."""
        bucket = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") % self.buckets
        return self.directory / f"{bucket:04x}.lock"

    def _try(self, name: str, mode: int) -> int | None:
        """An open descriptor holding flock `mode` on name's file, or None when another holder excludes it."""
        fd = os.open(self.path(name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def acquire(self, name: str, ttl_ms: int) -> str | None:
        """Take the lock (ttl_ms is moot: it lasts until release or the holder's death); a token, or None if held."""
        fd = self._try(name, fcntl.LOCK_EX)
        if fd is None:
            return None
        token = secrets.token_hex(8)
        with self._guard:
            self._held[token] = fd
        return token

    def release(self, name: str, token: str) -> bool:
        """Release the lock token holds (closing its descriptor drops the flock); False if it was not held."""
        with self._guard:
            fd = self._held.pop(token, None)
        if fd is None:
            return False
        os.close(fd)
        return True

    def extend(self, name: str, token: str, ttl_ms: int) -> bool:
        """Whether token still holds its lock (flocks do not expire, so there is nothing to extend)."""
        with self._guard:
            return token in self._held

    def wait_released(self, name: str, timeout_s: float) -> bool:
        """Block until nobody holds name's lock file (True), or False after timeout_s; polls every poll_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            fd = self._try(name, fcntl.LOCK_SH)
            if fd is not None:
                os.close(fd)
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))


class ReentrantLock:
    """An ExclusiveLock that the process holding it may take again (counted), for nested claims: the generation
    service holds a block's lock while its cascade claims that block and the parents under it.

    Re-entry is per resource: a name for Redis, a lock file for FileLock (names sharing a file are one resource,
    so a process never waits for itself); threads of one process share what it holds (they are one process's work,
    kept apart by the in-process single flight)."""

    def __init__(self, inner: ExclusiveLock) -> None:
        self.inner = inner
        self._held: dict[Any, tuple[str, str, int]] = {}  # resource -> (inner name, inner token, holders)
        self._guard = threading.Lock()

    def _resource(self, name: str) -> Any:
        path = getattr(self.inner, "path", None)
        return path(name) if callable(path) else name

    def acquire(self, name: str, ttl_ms: int) -> str | None:
        """The held token again (one more holder) when this process holds name's resource, else the inner lock's."""
        resource = self._resource(name)
        with self._guard:
            held = self._held.get(resource)
            if held is not None:
                self._held[resource] = (held[0], held[1], held[2] + 1)
                return held[1]
        token = self.inner.acquire(name, ttl_ms)
        if token is not None:
            with self._guard:
                self._held[resource] = (name, token, 1)
        return token

    def release(self, name: str, token: str) -> bool:
        """One holder fewer; the last one releases the inner lock. False when token does not hold name."""
        resource = self._resource(name)
        with self._guard:
            held = self._held.get(resource)
            if held is None or held[1] != token:
                return False
            if held[2] > 1:
                self._held[resource] = (held[0], token, held[2] - 1)
                return True
            del self._held[resource]
        return bool(self.inner.release(held[0], token))

    def extend(self, name: str, token: str, ttl_ms: int) -> Any:
        held = self._held.get(self._resource(name))
        return self.inner.extend(held[0], token, ttl_ms) if held is not None else False

    def wait_released(self, name: str, timeout_s: float) -> Any:
        return self.inner.wait_released(name, timeout_s)

    def ping(self) -> bool:
        """Whether the inner lock's backend answers."""
        return bool(getattr(self.inner, "ping", lambda: True)())

    def close(self) -> None:
        """Close the inner lock (its connections, or the lock files it holds)."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


async def exclusive(lock: ExclusiveLock, name: str, lookup: Callable[[], Awaitable[T | None]],
                    produce: Callable[[], Awaitable[T]], *, ttl_ms: int, wait_timeout_s: float | None = None,
                    waiters: CapacityLimiter | None = None) -> T:
    """Steps a-d of this module's docstring: lookup() reads the shared cache, produce() generates AND stores it.

    Lock calls run in worker threads (waits bounded by `waiters`, so blocked waits never starve other thread work);
    wait_timeout_s None waits for a foreign holder as long as it keeps its lock.
    """
    deadline = math.inf if wait_timeout_s is None else time.monotonic() + wait_timeout_s
    while True:
        try:
            token = await to_thread.run_sync(lock.acquire, name, ttl_ms)
        except Exception as error:  # lock backend down: produce without it
            log.debug("lock %s unavailable (%r); producing without it", name, error)
            return await produce()
        if token is not None:
            heartbeat = asyncio.ensure_future(_keep_extended(lock, name, token, ttl_ms))
            try:
                found = await lookup()
                return found if found is not None else await produce()
            finally:
                heartbeat.cancel()
                await asyncio.shield(to_thread.run_sync(_release_quietly, lock, name, token))
        try:
            await to_thread.run_sync(lock.wait_released, name, max(0.0, min(WAIT_SLICE_S, deadline - time.monotonic())),
                                     limiter=waiters)
        except Exception as error:  # the next acquire tells whether the backend is gone
            log.debug("waiting for lock %s failed (%r)", name, error)
        found = await lookup()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            return await produce()


def run_exclusive(lock: ExclusiveLock, name: str, lookup: Callable[[], T | None], produce: Callable[[], T],
                  ttl_ms: int = 60_000, wait_timeout_s: float = 30.0) -> T:
    """exclusive() for blocking callers (a thread or a script): lookup and produce are plain functions."""
    async def run() -> T:
        return await exclusive(lock, name, lambda: to_thread.run_sync(lookup), lambda: to_thread.run_sync(produce),
                               ttl_ms=ttl_ms, wait_timeout_s=wait_timeout_s)

    return anyio.run(run)


async def _keep_extended(lock: ExclusiveLock, name: str, token: str, ttl_ms: int) -> None:
    """Extend a held lock every third of its TTL, so a generation longer than the TTL keeps it."""
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            await to_thread.run_sync(lock.extend, name, token, ttl_ms)
        except Exception as error:  # the TTL still bounds the lock; waiters may take over later
            log.debug("extending lock %s failed (%r)", name, error)


def _release_quietly(lock: ExclusiveLock, name: str, token: str) -> None:
    """Release, tolerating a backend outage (the TTL frees the lock then)."""
    try:
        lock.release(name, token)
    except Exception as error:
        log.debug("could not release lock %s (%r); it expires by TTL", name, error)
