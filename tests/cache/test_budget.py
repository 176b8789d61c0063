"""The embedded cache's disk budget: LRU eviction across worlds, recently used tiles pinned, a cache from before the
budget adopted, sizes parsed; and a full disk (a small tmpfs) failing writes without losing tiles, then recovering."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fill_disk, small_tmpfs  # tests/support.py

from terradream.cache import CacheKey, MBTilesCache, open_cache
from terradream.cache.budget import INDEX_NAME, default_max_bytes, directory_bytes
from terradream.engine.settings import Settings, parse_byte_size

from .tiles import noise_png

pytestmark = pytest.mark.integration

MIB = 2**20


def key(world: str, x: int) -> CacheKey:
    """Tile x of row 0 at zoom 10 of world."""
    return CacheKey(world, "v1", 10, x, 0)


def test_sizes_parse_with_binary_suffixes() -> None:
    assert parse_byte_size("123") == 123 and parse_byte_size("500M") == 500 * MIB
    assert parse_byte_size("1.5g") == int(1.5 * 2**30) and parse_byte_size("2TiB") == 2 * 2**40
    with pytest.raises(ValueError):
        parse_byte_size("lots")
    assert Settings(cache_max_bytes="64M").cache_max_bytes == 64 * MIB
    assert Settings().cache_max_bytes is None  # the engine then takes half of the free disk


def test_the_default_budget_is_half_the_room_and_never_below_the_cache(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    assert abs(default_max_bytes(tmp_path) - free / 2) < 64 * MIB  # others write to this disk meanwhile
    (tmp_path / "big.mbtiles").write_bytes(b"\0" * MIB)
    assert default_max_bytes(tmp_path, fraction=1e-9) == directory_bytes(tmp_path)


def test_a_crawl_of_many_worlds_stays_within_the_budget_evicting_least_recently_used(tmp_path: Path) -> None:
    budget = 3 * MIB
    cache = MBTilesCache(tmp_path, max_bytes=budget, pin_s=0.0)
    tiles = [noise_png(seed) for seed in range(4)]  # about 200 KB each
    kept = key("home", 0)
    cache.put(kept, tiles[0])
    largest = 0
    for i in range(60):  # 20 worlds, 3 tiles each: about 12 MB written into a 3 MB budget
        cache.put(key(f"crawl{i // 3}", i % 3), tiles[i % 4])
        assert cache.get(kept) == tiles[0]  # read between writes: always the most recently used
        largest = max(largest, directory_bytes(tmp_path))
    assert largest <= budget, f"the cache reached {largest} bytes"
    assert cache.evicted_tiles > 30
    assert cache.get(key("crawl0", 0)) is None  # the oldest went first
    assert cache.get(key("crawl19", 2)) == tiles[59 % 4]  # the newest stay
    cache.close()


def test_tiles_in_use_are_pinned(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path, max_bytes=MIB, pin_s=60.0)  # everything is "in use" for a minute
    for x in range(8):
        cache.put(key("w", x), noise_png(x))
    assert cache.evicted_tiles == 0 and all(cache.get(key("w", x)) is not None for x in range(8))
    assert directory_bytes(tmp_path) > MIB  # over budget rather than evict what a generation may be reading
    cache.pin_s = 0.0
    assert cache.enforce_budget() > 0 and directory_bytes(tmp_path) <= MIB
    cache.close()


def test_a_cache_from_before_the_budget_is_adopted_oldest_first(tmp_path: Path) -> None:
    unbounded = MBTilesCache(tmp_path)
    for x in range(6):
        unbounded.put(key("old", x), noise_png(x))
    unbounded.close()
    assert not (tmp_path / INDEX_NAME).exists()
    bounded = MBTilesCache(tmp_path, max_bytes=MIB, pin_s=0.0)
    bounded.put(key("new", 0), noise_png(9))
    assert directory_bytes(tmp_path) <= MIB
    assert bounded.get(key("new", 0)) is not None and bounded.get(key("old", 0)) is None
    bounded.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root), unmounted afterwards."""
    with small_tmpfs(tmp_path / "disk", "4m") as mount:
        yield mount


def test_a_full_disk_keeps_tiles_in_memory_and_recovers(small_disk: Path) -> None:
    cache = open_cache(small_disk / "cache", None, lru_bytes=16 * MIB, max_bytes=None)
    back = cache.back
    assert isinstance(back, MBTilesCache)
    cache.put(key("w", 0), noise_png(0))
    fill_disk(small_disk / "filler")
    for x in range(1, 4):  # a file system with no room left: the writes fail, the tiles stay in memory
        cache.put(key("w", x), noise_png(x))
        assert cache.get(key("w", x)) == noise_png(x)
    assert back.disk_full and cache.write_error is not None and "full" in cache.write_error
    assert back.get(key("w", 3)) is None and back.get(key("w", 0)) == noise_png(0)  # nothing torn on disk
    os.remove(small_disk / "filler")
    time.sleep(0.1)
    cache.put(key("w", 4), noise_png(4))
    assert not back.disk_full and cache.write_error is None
    assert back.get(key("w", 4)) == noise_png(4)
    cache.close()
