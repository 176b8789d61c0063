"""Admission of new cold tiles, one path for the local and the cluster service: a queue bound and a fair share.

The fair share is a token bucket per client address, so one client cannot starve the rest. Only requests that would
start a new generation are admitted (and spend a token); cached tiles, and cold tiles someone else already queued,
are free. A client out of tokens gets RateLimited (HTTP 429 with Retry-After), checked before the global queue bound
(Overloaded, HTTP 503), so a greedy client is told to slow down even while the queue is full; a refused request
spends no token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from terradream.core.errors import Overloaded, RateLimited
from terradream.engine.metrics import ServerMetrics

CLIENTS_MAX = 65_536  # buckets remembered; the least recently seen client is forgotten (it starts full again)


@dataclass
class TokenBucket:
    """`tokens` refill at rate_per_s up to burst; one cold generation spends one."""

    tokens: float
    updated_s: float

    def refill(self, now_s: float, rate_per_s: float, burst: int) -> None:
        """Add the tokens earned since the last update."""
        self.tokens = min(float(burst), self.tokens + max(0.0, now_s - self.updated_s) * rate_per_s)
        self.updated_s = now_s


def seconds_until_token(tokens: float, rate_per_s: float) -> int:
    """Whole seconds (at least 1) until a bucket holding `tokens` has one to spend: the Retry-After value."""
    return max(1, math.ceil((1.0 - tokens) / rate_per_s))


class FairShare:
    """Token buckets by client address; thread-safe; `take` raises RateLimited when the client has none left."""

    def __init__(self, rate_per_s: float, burst: int, clients_max: int = CLIENTS_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """rate_per_s > 0 tokens per second per client, at most burst saved up."""
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: LRUCache[str, TokenBucket] = LRUCache(maxsize=clients_max)
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Raise RateLimited when client has no token to spend now (spends nothing)."""
        tokens = self.tokens(client)
        if tokens < 1.0:
            raise RateLimited(client, seconds_until_token(tokens, self.rate_per_s), self.rate_per_s, self.burst)

    def take(self, client: str) -> None:
        """Spend one of client's tokens, or raise RateLimited (spending nothing)."""
        now_s = self._clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = TokenBucket(float(self.burst), now_s)
            bucket.refill(now_s, self.rate_per_s, self.burst)
            if bucket.tokens < 1.0:
                raise RateLimited(client, seconds_until_token(bucket.tokens, self.rate_per_s),
                                  self.rate_per_s, self.burst)
            bucket.tokens -= 1.0

    def tokens(self, client: str) -> float:
        """Tokens client could spend now (burst for a client never seen)."""
        now_s = self._clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                return float(self.burst)
            bucket.refill(now_s, self.rate_per_s, self.burst)
            return bucket.tokens


class Admission:
    """Decides whether a new cold tile may start: RateLimited past the client's share, Overloaded when full."""

    def __init__(self, metrics: ServerMetrics, queue_max: int = 1024, retry_after_s: int = 2,
                 fair_share: FairShare | None = None) -> None:
        """Count refusals in metrics; at most queue_max tiles waiting; fair_share None means no per-client limit."""
        self.metrics = metrics
        self.queue_max = queue_max
        self.retry_after_s = retry_after_s
        self.fair_share = fair_share

    def admit(self, depth: int, client: str | None) -> None:
        """Admit one new tile with depth tiles already waiting, spending one of client's tokens; or raise.

        Call from one thread (the event loop): the share is checked first and spent last, which cannot fail then.
        """
        share = self.fair_share if client is not None else None
        if share is not None and client is not None:
            try:
                share.check(client)
            except RateLimited:
                self.metrics.rate_limited.inc()
                raise
        if depth >= self.queue_max:
            self.metrics.overloaded.inc()
            raise Overloaded(self.retry_after_s, depth)
        if share is not None and client is not None:
            share.take(client)


def fair_share_from(rate_per_s: float, burst: int) -> FairShare | None:
    """The FairShare of the settings, or None when rate_per_s is 0 (no per-client limit)."""
    return FairShare(rate_per_s, burst) if rate_per_s > 0 else None
