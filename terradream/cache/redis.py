"""Shared Redis tile cache: survives Redis outages by serving misses and reconnects by itself.

Keys are `{prefix}:tile:{world}:{version}:{z}:{x}:{y}` holding PNG bytes, each written by one SET (atomic).
While Redis is unreachable every call returns at once (a miss / a skipped write) and one call per
`retry_after_s` probes it again, so an outage costs requests no timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from terradream.cache.base import CacheKey, check_names
from terradream.core.regions import TileRange, in_ranges

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors meaning "Redis cannot serve us now" (connection refused/reset, timeouts, auth, read-only replica...).
UNAVAILABLE = (RedisError, OSError)


def safe_url(url: str) -> str:
    """The URL with any password replaced by '***', for logs and describe()."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def redis_client(url: str, timeout_s: float = 0.5, max_connections: int = 64) -> redis.Redis:
    """A pooled client for url (redis://, rediss:// for TLS, passwords in the URL or its query) that fails fast.

    Short socket/connect timeouts, a health check of idle connections, and one quick retry so a connection
    broken by a Redis restart is replaced transparently.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        max_connections=max_connections,
    )


def tile_key(prefix: str, key: CacheKey) -> str:
    """Redis key of a tile."""
    return f"{prefix}:tile:{key.world}:{key.version}:{key.z}:{key.x}:{key.y}"


class CircuitOpen(RedisConnectionError):
    """Raised without touching the network while a CircuitBreaker is open (Redis was unreachable moments ago)."""


class CircuitBreaker:
    """Fails Redis calls fast after an outage: once a call fails, calls raise CircuitOpen for retry_after_s.

    After that, the next call is a probe: success closes the breaker, failure opens it again for twice as long
    (at most max_retry_after_s), so a hung Redis (every probe a full timeout) costs few requests a timeout. Only
    the transitions are logged (down / back), with `label` (never a password) naming the connection.
    """

    def __init__(self, label: str, retry_after_s: float = 1.0, max_retry_after_s: float = 8.0) -> None:
        """Start closed (Redis assumed reachable)."""
        self.label = label
        self.retry_after_s = retry_after_s
        self.max_retry_after_s = max(retry_after_s, max_retry_after_s)
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._open_s = retry_after_s
        self._degraded = False

    @property
    def degraded(self) -> bool:
        """True since the last call that could not reach Redis, until one that could."""
        return self._degraded

    def record(self, error: BaseException | None) -> None:
        """Record the outcome of a Redis call made outside call(), logging only transitions."""
        with self._lock:
            if error is None:
                if self._degraded:
                    log.warning("%s reachable again", self.label)
                self._degraded = False
                self._open_s = self.retry_after_s
                return
            if not self._degraded:
                log.warning("%s unreachable (%s: %s); failing fast, retrying after %.1fs (backing off to %.0fs)",
                            self.label, type(error).__name__, error, self.retry_after_s, self.max_retry_after_s)
                self._open_s = self.retry_after_s
            else:
                self._open_s = min(self.max_retry_after_s, self._open_s * 2)
            self._degraded = True
            self._open_until = time.monotonic() + self._open_s

    def call(self, op: Callable[[], T]) -> T:
        """op(), or CircuitOpen at once while open; Redis/socket errors are recorded and re-raised."""
        if self._degraded and time.monotonic() < self._open_until:
            raise CircuitOpen(f"{self.label} is unreachable; next retry in at most {self._open_s:.1f}s")
        try:
            result = op()
        except UNAVAILABLE as error:
            self.record(error)
            raise
        self.record(None)
        return result


class RedisCache:
    """TileCache on Redis, shared by every server process; an outage reads as misses, never as errors."""

    def __init__(self, url: str, prefix: str = "terradream", ttl_s: int | None = None,
                 timeout_s: float = 0.5, retry_after_s: float = 1.0) -> None:
        """Connect lazily to url; tiles expire after ttl_s when given; probe a down Redis every retry_after_s."""
        if ":" in prefix or not prefix:
            raise ValueError("prefix must be non-empty and free of ':'")
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.retry_after_s = retry_after_s
        self._safe_url = safe_url(url)
        self.client = redis_client(url, timeout_s=timeout_s)
        self.breaker = CircuitBreaker(f"redis cache {self._safe_url}", retry_after_s)

    @property
    def degraded(self) -> bool:
        """True since the last call that could not reach Redis, until one that could."""
        return self.breaker.degraded

    def _call(self, op: Callable[[], T], default: T) -> T:
        """op() when Redis is believed up (or is due a probe), else default; failures turn into default."""
        try:
            return self.breaker.call(op)
        except UNAVAILABLE:
            return default

    def get(self, key: CacheKey) -> bytes | None:
        """The tile's bytes, or None on a miss or an outage."""
        return self._call(lambda: cast(bytes | None, self.client.get(tile_key(self.prefix, key))), None)

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, bytes]:
        """The cached tiles among keys (one MGET)."""
        if not keys:
            return {}
        names = [tile_key(self.prefix, k) for k in keys]
        no_values: list[bytes | None] = []
        values = self._call(lambda: cast(list[bytes | None], self.client.mget(names)), no_values)
        return {k: v for k, v in zip(keys, values, strict=False) if v is not None}

    def put(self, key: CacheKey, data: bytes) -> None:
        """Store one tile (skipped during an outage)."""
        self.put_many({key: data})

    def put_many(self, items: Mapping[CacheKey, bytes]) -> None:
        """Store tiles in one pipelined round trip, one SET each (skipped during an outage)."""
        if not items:
            return

        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key, data in items.items():
                pipe.set(tile_key(self.prefix, key), bytes(data), ex=self.ttl_s)
            pipe.execute()

        self._call(write, None)

    def purge(self, world: str, version: str | None = None,
              tile_ranges: Sequence[TileRange] | None = None) -> int:
        """Delete a world's tiles by SCAN + UNLINK; raises RedisError when Redis is unreachable."""
        check_names(world, version)
        pattern = f"{self.prefix}:tile:{world}:{version or '*'}:*"
        removed = 0
        batch: list[bytes] = []
        for name in self.client.scan_iter(match=pattern, count=1000):
            z, x, y = (int(v) for v in name.rsplit(b":", 3)[1:])
            if in_ranges(z, x, y, tile_ranges):
                batch.append(name)
            if len(batch) >= 500:
                removed += int(self.client.unlink(*batch))
                batch = []
        if batch:
            removed += int(self.client.unlink(*batch))
        return removed

    def ping(self) -> bool:
        """Whether Redis answers PING now; False at once while failing fast (a due probe pings for real)."""
        try:
            self.breaker.call(self.client.ping)
        except UNAVAILABLE:
            return False
        return True

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def describe(self) -> str:
        """URL without password and key prefix, for logs."""
        return f"Redis at {self._safe_url} (prefix {self.prefix!r})"
