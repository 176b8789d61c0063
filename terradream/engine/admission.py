"""Admission of new cold tiles, one path for the local and the cluster service: a queue bound, a fair share and a
deadline.

The fair share is a token bucket per client address, so one client cannot starve the rest. Only requests that would
start a new generation are admitted (and spend a token); cached tiles, and cold tiles someone else already queued,
are free. A client out of tokens gets RateLimited (HTTP 429 with Retry-After), checked before the global queue bound
(Overloaded, HTTP 503), so a greedy client is told to slow down even while the queue is full; a refused request
spends no token. A tile that would not start before the cold deadline (the queue ahead times the measured seconds per
tile, an EWMA of the worker's batches) is refused at once (Backlogged, HTTP 503 with Retry-After).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from terradream.core.errors import Backlogged, Overloaded, RateLimited
from terradream.engine.metrics import ServerMetrics

CLIENTS_MAX = 65_536  # buckets remembered; the least recently seen client is forgotten (it starts full again)
EWMA_WEIGHT = 0.3  # weight of the newest batch in the seconds-per-tile estimate
RETRY_AFTER_MAX_S = 120  # Retry-After of a deadline refusal never says more than this


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


class TileRate:
    """Measured seconds per tile made (parents included): an EWMA over the worker's batches (None until the first
    one finished). An optimistic rate: up-front refusals are for hopeless waits, the queued deadline bounds the rest."""

    def __init__(self, weight: float = EWMA_WEIGHT) -> None:
        """weight in (0, 1]: how much the newest batch counts."""
        self.weight = weight
        self.seconds_per_tile: float | None = None

    def observe(self, tiles: int, seconds: float) -> None:
        """One batch that made `tiles` tiles took `seconds` (from the worker thread; a float store is atomic)."""
        if tiles < 1:
            return
        sample = seconds / tiles
        old = self.seconds_per_tile
        self.seconds_per_tile = sample if old is None else old + self.weight * (sample - old)

    def expected_wait_s(self, ahead: int) -> float:
        """Seconds until a tile with `ahead` tiles before it is made (0 while nothing was measured)."""
        rate = self.seconds_per_tile
        return 0.0 if rate is None else (ahead + 1) * rate


class Admission:
    """Decides whether a new cold tile may start: RateLimited past the client's share, Overloaded when full,
    Backlogged when it could not be made within the cold deadline."""

    def __init__(self, metrics: ServerMetrics, queue_max: int = 1024, retry_after_s: int = 2,
                 fair_share: FairShare | None = None, cold_deadline_s: float = 0.0) -> None:
        """Count refusals in metrics; at most queue_max tiles waiting; fair_share None means no per-client limit;
        cold_deadline_s 0 means no deadline (it applies to requests from clients only, not to internal callers)."""
        self.metrics = metrics
        self.queue_max = queue_max
        self.retry_after_s = retry_after_s
        self.fair_share = fair_share
        self.cold_deadline_s = cold_deadline_s
        self.rate = TileRate()

    def deadline_s(self, client: str | None) -> float | None:
        """How long a request of client may wait for a cold tile (None: no limit, also for internal callers)."""
        return self.cold_deadline_s if client is not None and self.cold_deadline_s > 0 else None

    def backlogged(self, waited_s: float) -> Backlogged:
        """The refusal of a request that waited waited_s for its tile, past the deadline (counted)."""
        self.metrics.deadline_expired.inc()
        return Backlogged(self.retry_after_s, waited_s, self.cold_deadline_s)

    def admit(self, depth: int, client: str | None, ahead: int | None = None) -> None:
        """Admit one new tile with depth tiles already waiting, spending one of client's tokens; or raise.

        `ahead` (default depth) is how many tiles the worker makes before this one, for the expected wait.
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
        deadline_s = self.deadline_s(client)
        ahead = depth if ahead is None else ahead
        if deadline_s is not None and ahead > 0:  # an idle worker always takes a tile: else the rate could never
            wait_s = self.rate.expected_wait_s(ahead)  # be measured again after one slow batch
            if wait_s > deadline_s:
                self.metrics.overloaded.inc()
                retry_s = min(RETRY_AFTER_MAX_S, max(self.retry_after_s, math.ceil(wait_s - deadline_s)))
                raise Backlogged(retry_s, wait_s, deadline_s)
        if share is not None and client is not None:
            share.take(client)


def fair_share_from(rate_per_s: float, burst: int) -> FairShare | None:
    """The FairShare of the settings, or None when rate_per_s is 0 (no per-client limit)."""
    return FairShare(rate_per_s, burst) if rate_per_s > 0 else None
