"""Per-client fair share of cold generation: a token bucket per client address, so one client cannot starve the rest.

Only requests that would start a new generation spend a token; cached tiles, and cold tiles someone else already
queued, are free. A client out of tokens gets RateLimited (HTTP 429 with Retry-After), independently of the global
queue bound (Overloaded, HTTP 503).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

CLIENTS_MAX = 65_536  # buckets remembered; the least recently seen client is forgotten (it starts full again)


class RateLimited(Exception):
    """A client started more cold generations than its share: retry after retry_after_s seconds (HTTP 429)."""

    def __init__(self, client: str, retry_after_s: int, rate_per_s: float, burst: int) -> None:
        """Say who, when to come back and what the share is."""
        super().__init__(f"client {client} exceeded its share of new tile generations ({rate_per_s:g}/s, burst "
                         f"{burst}); cached tiles are not limited; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


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


def fair_share_from(rate_per_s: float, burst: int) -> FairShare | None:
    """The FairShare of the settings, or None when rate_per_s is 0 (no per-client limit)."""
    return FairShare(rate_per_s, burst) if rate_per_s > 0 else None
