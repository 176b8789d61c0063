"""Crash safety: SIGKILL the server while it generates and writes tiles, restart it on the same
embedded cache: the MBTiles files open cleanly and hold only whole tiles, which are then served as they are.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from terradream.cache.store import is_whole_tile_png

from .conftest import Served, decode_tile, mbtiles_rows, readyz, wait_until

ROUNDS = 3
NO_SHARE = {"TERRADREAM_CLIENT_COLD_RATE_PER_S": "0"}


def stored_count(cache: Path) -> int:
    """Tiles in every MBTiles file of the cache directory (0 while none exists yet)."""
    total = 0
    for path in cache.glob("*.mbtiles"):
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                total += int(conn.execute("SELECT count(*) FROM tiles").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.OperationalError:  # created but the schema is not committed yet
            pass
    return total


def request_cold_tiles(url: str, paths: list[str]) -> threading.Thread:
    """Ask for many cold tiles at once from a background thread; errors (the server dies) are expected."""
    async def run() -> None:
        async with httpx.AsyncClient(timeout=300) as client:
            await asyncio.gather(*(client.get(url + p) for p in paths), return_exceptions=True)

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


def test_sigkill_during_generation_leaves_only_whole_tiles(serve: Callable[..., Served], tmp_path: Path) -> None:
    cache = tmp_path / "crash-cache"
    kills_with_pending_work = 0
    for round_ in range(ROUNDS):
        server = serve("--batch-size", "2", cache=cache, env=NO_SHARE)
        before = stored_count(cache)
        paths = [f"/tiles/earth/6/{8 * round_ + i}/{20 + j}.png" for i in range(8) for j in range(4)]
        loader = request_cold_tiles(server.url, paths)
        wait_until(lambda before=before: stored_count(cache) > before, 120, "the first tiles being written")
        queue_depth = readyz(server).json()["queue_depth"]
        server.kill()  # SIGKILL: no shutdown, mid-batch, perhaps mid-transaction
        kills_with_pending_work += queue_depth > 0
        loader.join(60)
    assert kills_with_pending_work >= 1  # the kills did land while generation was still going on

    server = serve(cache=cache, env=NO_SHARE)  # opens the crashed files cleanly
    assert readyz(server).json()["cache"] == "ok"
    files = sorted(cache.glob("*.mbtiles"))
    assert files
    rows = [row for path in files for row in mbtiles_rows(path)]  # integrity_check on each file, then every row
    assert len(rows) >= ROUNDS
    for z, x, tms_y, data in rows:
        assert is_whole_tile_png(data), (z, x, tms_y)
        decode_tile(data)
    for z, x, tms_y, data in [r for r in rows if r[0] == 6][:8]:  # served from the cache exactly as stored
        y = (1 << z) - 1 - tms_y
        response = httpx.get(f"{server.url}/tiles/earth/{z}/{x}/{y}.png", timeout=120)
        assert response.status_code == 200 and response.headers["x-cache"] == "hit"
        assert response.content == data
    fresh = httpx.get(f"{server.url}/tiles/earth/6/60/40.png", timeout=300)  # and it writes on
    assert fresh.status_code == 200 and fresh.headers["x-cache"] == "miss"
    wait_until(lambda: any(r[:2] == (6, 60) for p in files for r in mbtiles_rows(p)), 30, "the new tile stored")
