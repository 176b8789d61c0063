"""In-process LRU of encoded tiles bounded by total bytes: the hot front of every cache stack."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from cachetools import LRUCache

from terradream.cache.base import CacheKey, check_names
from terradream.core.regions import TileRange, in_ranges


class MemoryLRU:
    """A thread-safe LRU whose size is the sum of the cached values' lengths (key overhead not counted)."""

    def __init__(self, max_bytes: int) -> None:
        """Hold at most max_bytes of tile data; a single tile larger than that is not cached."""
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._lru: LRUCache[CacheKey, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        """Bytes of tile data held now."""
        with self._lock:
            return int(self._lru.currsize)

    def __len__(self) -> int:
        """Number of tiles held now."""
        with self._lock:
            return len(self._lru)

    def get(self, key: CacheKey) -> bytes | None:
        """The tile's bytes (and mark it recently used), or None."""
        with self._lock:
            return self._lru.get(key)

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, bytes]:
        """The held tiles among keys."""
        with self._lock:
            return {k: v for k in keys if (v := self._lru.get(k)) is not None}

    def put(self, key: CacheKey, data: bytes) -> None:
        """Hold a tile, evicting least recently used ones until the byte budget fits."""
        if len(data) > self.max_bytes:
            return
        with self._lock:
            self._lru[key] = bytes(data)

    def put_many(self, items: Mapping[CacheKey, bytes]) -> None:
        """Hold several tiles."""
        for key, data in items.items():
            self.put(key, data)

    def purge(self, world: str, version: str | None = None,
              tile_ranges: Sequence[TileRange] | None = None) -> int:
        """Drop a world's tiles (see TileCache.purge); returns how many were dropped."""
        check_names(world, version)
        with self._lock:
            doomed = [k for k in self._lru
                      if k.world == world and (version is None or k.version == version)
                      and in_ranges(k.z, k.x, k.y, tile_ranges)]
            for key in doomed:
                del self._lru[key]
        return len(doomed)

    def ping(self) -> bool:
        """Always reachable."""
        return True

    def close(self) -> None:
        """Drop everything."""
        with self._lock:
            self._lru.clear()

    def describe(self) -> str:
        """Size and budget, for logs."""
        return f"memory LRU ({self.max_bytes / 2**20:.0f} MiB)"
