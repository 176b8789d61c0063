"""A memory LRU in front of a shared/persistent cache: read-through, write-through."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from terradream.cache.base import CacheKey, TileCache
from terradream.cache.memory import MemoryLRU
from terradream.core.regions import TileRange

log = logging.getLogger(__name__)


class TieredCache:
    """Reads hit the LRU first and fill it from the back; writes go to both.

    A back end that raises is treated as a miss / skipped write (logged once per outage, kept in write_error), so an
    outage, or a full disk, still serves the LRU.
    """

    def __init__(self, front: MemoryLRU, back: TileCache) -> None:
        """Stack front (hot, in-process) over back (shared or persistent)."""
        self.front = front
        self.back = back
        self.write_error: str | None = None  # why the last write to the back failed; None once one succeeds

    def get(self, key: CacheKey) -> bytes | None:
        """From the LRU, else from the back (then kept in the LRU)."""
        data = self.front.get(key)
        if data is not None:
            return data
        try:
            data = self.back.get(key)
        except Exception as error:  # a cache read failure is a miss
            log.warning("cache read from %s failed: %r", self.back.describe(), error)
            return None
        if data is not None:
            self.front.put(key, data)
        return data

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, bytes]:
        """The cached tiles among keys, asking the back only for LRU misses."""
        found = self.front.get_many(keys)
        missing = [k for k in keys if k not in found]
        if not missing:
            return found
        try:
            fetched = self.back.get_many(missing)
        except Exception as error:  # a cache read failure is a miss
            log.warning("cache read from %s failed: %r", self.back.describe(), error)
            return found
        self.front.put_many(fetched)
        return found | fetched

    def put(self, key: CacheKey, data: bytes) -> None:
        """Write through to both tiers."""
        self.put_many({key: data})

    def put_many(self, items: Mapping[CacheKey, bytes]) -> None:
        """Write through to both tiers; a back-end failure is logged, the LRU still keeps the tiles."""
        self.front.put_many(items)
        try:
            self.back.put_many(items)
        except Exception as error:  # losing a cache write only costs a later regeneration
            if self.write_error is None:  # once per outage: the next writes fail the same way
                log.warning("cache write to %s failed: %r", self.back.describe(), error)
            self.write_error = f"{type(error).__name__}: {error}"
            return
        if self.write_error is not None:
            log.warning("cache writes to %s work again", self.back.describe())
            self.write_error = None

    def purge(self, world: str, version: str | None = None,
              tile_ranges: Sequence[TileRange] | None = None) -> int:
        """Purge both tiers; returns the back end's count (the LRU holds a subset). Back-end errors propagate."""
        self.front.purge(world, version, tile_ranges)
        return self.back.purge(world, version, tile_ranges)

    def ping(self) -> bool:
        """Whether the back end is reachable."""
        return self.back.ping()

    def close(self) -> None:
        """Close both tiers."""
        self.front.close()
        self.back.close()

    def describe(self) -> str:
        """Both tiers, for logs."""
        return f"{self.front.describe()} -> {self.back.describe()}"
