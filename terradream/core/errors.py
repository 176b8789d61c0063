"""The one error hierarchy: everything terradream reports to its callers; the API maps each class to one status.

TerradreamError is blamed on the request (HTTP 400 unless a subclass says otherwise); RetryLater means the request
is fine but cannot be served now, and carries the seconds after which to try again (Retry-After).
"""

from __future__ import annotations


class TerradreamError(Exception):
    """Base class for errors the generator and the service report to their callers."""


class TileOutOfRange(TerradreamError):
    """The tile lies outside the tile matrix (z above maxzoom, x or y >= 2^z, negatives): HTTP 404."""


class UnknownWorld(TerradreamError):
    """The world name is malformed, not configured, or arbitrary worlds are disabled: HTTP 404."""


class RetryLater(TerradreamError):
    """The request cannot be served now; retry after retry_after_s seconds (HTTP 503 unless a subclass says else)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        """Say why and when to come back."""
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReady(RetryLater):
    """The model is still loading (or failed to load): HTTP 503."""


class Overloaded(RetryLater):
    """The generation queue is full: HTTP 503."""

    def __init__(self, retry_after_s: int, depth: int) -> None:
        """Remember when to retry and how deep the queue was."""
        super().__init__(f"generation queue is full ({depth} tiles waiting); retry in {retry_after_s} s", retry_after_s)


class Backlogged(Overloaded):
    """A cold tile cannot be made within the cold deadline (expected or actual wait): HTTP 503."""

    def __init__(self, retry_after_s: int, wait_s: float, deadline_s: float) -> None:
        """Say how long the tile would take (or took so far) against the deadline, and when to retry."""
        RetryLater.__init__(self, f"a new tile would take {wait_s:.0f} s, more than the {deadline_s:g} s deadline; "
                                  f"cached tiles still answer; retry in {retry_after_s} s", retry_after_s)


class RateLimited(RetryLater):
    """A client started more cold generations than its fair share: HTTP 429."""

    def __init__(self, client: str, retry_after_s: int, rate_per_s: float, burst: int) -> None:
        """Say who, when to come back and what the share is."""
        super().__init__(f"client {client} exceeded its share of new tile generations ({rate_per_s:g}/s, burst "
                         f"{burst}); cached tiles are not limited; retry in {retry_after_s} s", retry_after_s)


class SchedulerUnavailable(NotReady):
    """No connection to the Dask scheduler: cold tiles cannot be made now (HTTP 503)."""


class CacheUnavailable(NotReady):
    """Redis, through which cluster workers hand tiles over, is unreachable: cold tiles cannot be delivered (503)."""
