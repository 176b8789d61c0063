"""`terradream serve --workers 2` over one embedded cache: both processes serve, and a tile is generated once."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from terradream.api.testing import wait_for_http
from terradream.cache.mbtiles import SCHEMA, mbtiles_name

from .conftest import ProcessServer

BLOCK = [(6, 34, 22), (6, 35, 22), (6, 34, 23), (6, 35, 23)]  # one 2x2 block: one window, one generation lock
REQUESTS_PER_TILE = 6

# Every row the cache writes is logged by a trigger, so a tile generated (and stored) twice shows up twice.
WRITE_LOG = """
CREATE TABLE IF NOT EXISTS written (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER);
CREATE TRIGGER IF NOT EXISTS log_writes AFTER INSERT ON tiles
BEGIN INSERT INTO written VALUES (NEW.zoom_level, NEW.tile_column, NEW.tile_row); END;
"""


def test_two_workers_generate_each_tile_once_and_serve_the_same_bytes(tiny_model: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    server = ProcessServer(["--workers", "2", "--model", str(tiny_model), "--device", "cpu", "--cache", str(cache)],
                           log_path=tmp_path / "serve.log")
    try:
        workers = psutil.Process(server.proc.pid).children()  # the server forks one process per worker
        assert len(workers) == 2, (tmp_path / "serve.log").read_text()
        version = wait_for_http(f"{server.url}/readyz").json()["version"]  # the worker that answers may still load
        tileset = cache / mbtiles_name("earth", version)
        with sqlite3.connect(tileset) as conn:  # the cache's own schema, created first, plus the write log
            conn.executescript(SCHEMA + WRITE_LOG)
        conn.close()

        def get(tile: tuple[int, int, int]) -> tuple[tuple[int, int, int], bytes]:
            """One tile on a fresh connection (so both workers accept some); 503 while a worker still loads: retry."""
            z, x, y = tile
            deadline = time.monotonic() + 120.0
            while True:
                with httpx.Client(timeout=120.0) as client:
                    response = client.get(f"{server.url}/tiles/earth/{z}/{x}/{y}.png")
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(float(response.headers.get("retry-after", "1")))
            assert response.status_code == 200, response.text
            return tile, response.content

        with ThreadPoolExecutor(len(BLOCK) * REQUESTS_PER_TILE) as pool:
            answers = list(pool.map(get, BLOCK * REQUESTS_PER_TILE))
        for tile in BLOCK:
            assert len({body for t, body in answers if t == tile}) == 1, f"{tile}: different bytes"
        with sqlite3.connect(tileset) as conn:
            writes = conn.execute("SELECT zoom_level, tile_column, tile_row, count(*) FROM written "
                                  "GROUP BY zoom_level, tile_column, tile_row").fetchall()
        conn.close()
        written = {(z, x, (1 << z) - 1 - row): n for z, x, row, n in writes}
        assert set(BLOCK) <= set(written)
        assert all(n == 1 for n in written.values()), f"tiles written more than once: {written}"
    finally:
        server.stop()


def test_workers_end_with_the_server_even_when_it_is_killed(tiny_model: Path, tmp_path: Path) -> None:
    """SIGKILL of the main process leaves no worker behind holding the port and the model's memory."""
    server = ProcessServer(["--workers", "2", "--model", str(tiny_model), "--device", "cpu", "--cache",
                            str(tmp_path / "cache")], log_path=tmp_path / "serve.log")
    try:
        workers = psutil.Process(server.proc.pid).children()
        assert len(workers) == 2
        server.proc.kill()
        server.proc.wait(30)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, [p.pid for p in alive]
    finally:
        server.stop()
