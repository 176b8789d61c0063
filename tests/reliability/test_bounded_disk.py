"""Bounded disk over HTTP against `terradream serve`: a crawl of many worlds keeps the embedded cache within
--cache-max-bytes, and a full disk (a small tmpfs) loses no response, shows on /readyz and /metrics, and recovers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
from support import fill_disk, small_tmpfs  # tests/support.py

from reliability.conftest import Served, decode_tile, mbtiles_rows, readyz  # tests/reliability/conftest.py
from terradream.cache.budget import directory_bytes

MIB = 2**20
WORLDS = 3


def get_tile(server: Served, path: str) -> bytes:
    """GET a tile that must be answered with a whole PNG."""
    response = httpx.get(f"{server.url}/tiles/{path}.png", timeout=120)
    assert response.status_code == 200, (path, response.status_code, response.text[:200])
    decode_tile(response.content)
    return response.content


def test_a_crawl_of_many_worlds_stays_within_the_cache_budget(serve: Callable[..., Served], tmp_path: Path) -> None:
    budget = MIB
    cache = tmp_path / "cache"
    server = serve("--cache-max-bytes", "1M", cache=cache)
    written = 0
    largest = 0
    for world in range(WORLDS):  # each world is a new planet: a crawler's favourite way to fill a disk
        for z in (0, 1, 2):
            for x in range(2**z):
                for y in range(2**z):
                    written += len(get_tile(server, f"crawler{world}/{z}/{x}/{y}"))
                    largest = max(largest, directory_bytes(cache))
    final = directory_bytes(cache)
    print(f"crawl: {written / MIB:.1f} MiB of tiles served, cache at most {largest / MIB:.2f} MiB, "
          f"finally {final / MIB:.2f} MiB, budget {budget / MIB:.1f} MiB, "
          f"{server.metric('terradream_cache_evicted_tiles'):.0f} tiles evicted")
    assert written > 1.5 * budget  # the crawl really needed eviction
    assert final <= budget and largest <= budget * 1.25  # at most one batch over, for the moment it is written
    assert server.metric("terradream_cache_max_bytes") == budget
    assert server.metric("terradream_cache_evicted_tiles") > 0
    assert get_tile(server, f"crawler{WORLDS - 1}/0/0/0")  # recent tiles are still there (or made again: same bytes)


def test_a_full_disk_loses_no_response_and_recovers(serve: Callable[..., Served], tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "16m") as disk:
        cache = disk / "cache"
        server = serve("--cache-max-bytes", "0", cache=cache)
        get_tile(server, "earth/0/0/0")
        fill_disk(disk / "filler")
        tiles = {path: get_tile(server, path) for path in (f"earth/3/{x}/2" for x in range(4))}  # made, not stored
        report = readyz(server)
        assert report.status_code == 200  # still serving: from memory
        assert report.json()["cache_disk"] == "full" and report.json()["cache_writes"].startswith("failing")
        assert server.metric("terradream_cache_disk_full") == 1
        assert server.metric("terradream_cache_write_failing") == 1
        assert all(get_tile(server, path) == png for path, png in tiles.items())  # the same bytes again
        os.remove(disk / "filler")
        get_tile(server, "earth/3/7/2")  # a new tile: written to disk again
        report = readyz(server)
        assert report.json()["cache_disk"] == "ok" and report.json()["cache_writes"] == "ok"
        assert server.metric("terradream_cache_disk_full") == 0
        rows = mbtiles_rows(next(cache.glob("earth-*.mbtiles")))
        assert (3, 7, 5) in {(z, x, row) for z, x, row, _ in rows}  # TMS row of y = 2 at z3
        server.stop()
