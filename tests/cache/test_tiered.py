"""TieredCache and open_cache: read-through, write-through, and serving the LRU through a back-end outage."""

from __future__ import annotations

from pathlib import Path

from terradream.cache import CacheKey, MBTilesCache, MemoryLRU, RedisCache, TieredCache, open_cache

KEY = CacheKey("earth", "v1", 4, 3, 2)


def test_read_through_fills_the_lru(tmp_path: Path) -> None:
    back = MBTilesCache(tmp_path)
    back.put(KEY, b"from disk")
    cache = TieredCache(MemoryLRU(1000), back)
    assert cache.front.get(KEY) is None
    assert cache.get(KEY) == b"from disk"
    assert cache.front.get(KEY) == b"from disk"
    back.put(KEY._replace(x=0), b"other")
    assert cache.get_many([KEY, KEY._replace(x=0), KEY._replace(x=1)]) == {
        KEY: b"from disk", KEY._replace(x=0): b"other"}
    assert cache.front.get(KEY._replace(x=0)) == b"other"


def test_write_through_and_purge_both_tiers(tmp_path: Path) -> None:
    cache = TieredCache(MemoryLRU(1000), MBTilesCache(tmp_path))
    cache.put_many({KEY: b"a", KEY._replace(z=5): b"b"})
    assert cache.front.get(KEY) == b"a" and cache.back.get(KEY._replace(z=5)) == b"b"
    assert cache.purge("earth", "v1") == 2
    assert cache.get(KEY) is None and cache.front.get(KEY._replace(z=5)) is None


def test_redis_outage_still_serves_the_lru(redis_server, tmp_path: Path) -> None:
    server = type(redis_server)(tmp_path)  # a private Redis: stopping it disturbs no other test
    server.start()
    try:
        cache = TieredCache(MemoryLRU(1000), RedisCache(server.url, retry_after_s=0.05))
        cache.put(KEY, b"hot")
        server.stop()
        assert cache.get(KEY) == b"hot"
        assert cache.get(KEY._replace(x=0)) is None
        cache.put(KEY._replace(x=1), b"new")  # back write skipped, LRU keeps it
        assert cache.get(KEY._replace(x=1)) == b"new"
        assert not cache.ping()
    finally:
        server.stop()


def test_open_cache_picks_the_back_end(redis_url: str, tmp_path: Path) -> None:
    embedded = open_cache(tmp_path, None, lru_bytes=10_000)
    assert isinstance(embedded, TieredCache) and isinstance(embedded.back, MBTilesCache)
    assert embedded.front.max_bytes == 10_000
    shared = open_cache(tmp_path, redis_url, lru_bytes=10_000)
    assert isinstance(shared.back, RedisCache)
    shared.put(KEY, b"shared")
    assert RedisCache(redis_url).get(KEY) == b"shared"
    assert "Redis" in shared.describe() and "memory" in shared.describe()
