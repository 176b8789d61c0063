"""MemoryLRU: byte-bounded eviction in LRU order, purge scopes, and thread safety."""

from __future__ import annotations

import random
import threading

from terradream.cache import CacheKey, MemoryLRU
from terradream.core.regions import TileRange


def key(z: int, x: int, y: int, world: str = "earth", version: str = "v1") -> CacheKey:
    """A cache key with defaults."""
    return CacheKey(world, version, z, x, y)


def test_evicts_least_recently_used_by_bytes() -> None:
    lru = MemoryLRU(max_bytes=300)
    lru.put(key(1, 0, 0), b"a" * 100)
    lru.put(key(1, 1, 0), b"b" * 100)
    lru.put(key(1, 0, 1), b"c" * 100)
    assert lru.used_bytes == 300
    assert lru.get(key(1, 0, 0)) == b"a" * 100  # now most recently used
    lru.put(key(1, 1, 1), b"d" * 150)  # needs 150 bytes: evicts (1,1,0) and (1,0,1), the two oldest
    assert lru.get(key(1, 1, 0)) is None
    assert lru.get(key(1, 0, 1)) is None
    assert lru.get(key(1, 0, 0)) == b"a" * 100
    assert lru.get(key(1, 1, 1)) == b"d" * 150
    assert lru.used_bytes == 250


def test_oversized_tile_is_not_cached_and_evicts_nothing() -> None:
    lru = MemoryLRU(max_bytes=100)
    lru.put(key(0, 0, 0), b"x" * 60)
    lru.put(key(1, 0, 0), b"y" * 101)
    assert lru.get(key(1, 0, 0)) is None
    assert lru.get(key(0, 0, 0)) == b"x" * 60


def test_get_many_and_versions_are_distinct() -> None:
    lru = MemoryLRU(max_bytes=10_000)
    lru.put_many({key(2, 1, 1): b"one", key(2, 1, 1, version="v2"): b"two"})
    assert lru.get_many([key(2, 1, 1), key(2, 1, 1, version="v2"), key(2, 0, 0)]) == {
        key(2, 1, 1): b"one", key(2, 1, 1, version="v2"): b"two"}


def test_purge_scopes() -> None:
    lru = MemoryLRU(max_bytes=10_000)
    lru.put_many({key(3, x, y): b"t" for x in range(8) for y in range(8)})
    lru.put(key(3, 0, 0, version="v2"), b"t")
    lru.put(key(3, 0, 0, world="mars"), b"t")
    assert lru.purge("earth", "v1", [TileRange(3, 0, 0, 1, 1)]) == 4
    assert lru.get(key(3, 1, 1)) is None and lru.get(key(3, 2, 2)) == b"t"
    assert lru.purge("earth") == 60 + 1
    assert lru.get(key(3, 0, 0, world="mars")) == b"t"
    assert len(lru) == 1


def test_thread_safety_keeps_byte_budget() -> None:
    lru = MemoryLRU(max_bytes=50_000)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(3000):
                k = key(10, rng.randrange(64), rng.randrange(64))
                if rng.random() < 0.5:
                    lru.put(k, bytes([k.x]) * rng.randrange(1, 2000))
                else:
                    value = lru.get(k)
                    assert value is None or set(value) == {k.x}
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    held = lru.get_many([key(10, x, y) for x in range(64) for y in range(64)])
    assert lru.used_bytes == sum(len(v) for v in held.values()) <= 50_000
