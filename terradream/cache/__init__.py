"""Tile caches (memory LRU, embedded MBTiles, shared Redis), their stacking, the PNG codec and store, and locks."""

from __future__ import annotations

from pathlib import Path

from terradream.cache.base import CacheKey, TileCache
from terradream.cache.locks import FileLock, RedisLock, exclusive, run_exclusive
from terradream.cache.mbtiles import MBTilesCache
from terradream.cache.memory import MemoryLRU
from terradream.cache.redis import RedisCache, safe_url
from terradream.cache.tiered import TieredCache

__all__ = [
    "CacheKey", "FileLock", "MBTilesCache", "MemoryLRU", "RedisCache", "RedisLock", "TieredCache", "TileCache",
    "exclusive", "open_cache", "run_exclusive", "safe_url",
]


def open_cache(cache_dir: Path | None, redis_url: str | None, lru_bytes: int,
               redis_prefix: str = "terradream", max_bytes: int | None = None) -> TieredCache:
    """The cache stack from settings: an LRU of lru_bytes in front of Redis when redis_url is set, else MBTiles
    (within max_bytes on disk when given).

    cache_dir is required without redis_url (it is ignored with one).
    """
    back: TileCache
    if redis_url:
        back = RedisCache(redis_url, prefix=redis_prefix)
    elif cache_dir is not None:
        back = MBTilesCache(cache_dir, max_bytes)
    else:
        raise ValueError("open_cache needs a cache_dir or a redis_url")
    return TieredCache(MemoryLRU(lru_bytes), back)
