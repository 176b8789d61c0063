"""MBTilesCache: round trips, the MBTiles 1.3 layout (TMS rows, metadata), GDAL, threads, processes, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from terradream.cache import CacheKey, MBTilesCache
from terradream.core.regions import TileRange, bbox_tile_ranges

from .tiles import decode_rgb, noise_png, solid_png

REPO_ROOT = Path(__file__).resolve().parents[2]


def metadata(path: Path) -> dict[str, str]:
    """The metadata table of an MBTiles file, read with plain sqlite3."""
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, value FROM metadata").fetchall())


def test_round_trip_and_misses(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    tile = solid_png((10, 20, 30))
    cache.put(CacheKey("earth", "v1", 5, 3, 7), tile)
    assert cache.get(CacheKey("earth", "v1", 5, 3, 7)) == tile
    assert cache.get(CacheKey("earth", "v1", 5, 3, 8)) is None
    assert cache.get(CacheKey("earth", "v2", 5, 3, 7)) is None  # another model version: another file
    assert cache.get_many([CacheKey("earth", "v1", 5, 3, 7), CacheKey("earth", "v1", 0, 0, 0)]) == {
        CacheKey("earth", "v1", 5, 3, 7): tile}
    cache.put(CacheKey("earth", "v1", 5, 3, 7), b"replaced")
    assert cache.get(CacheKey("earth", "v1", 5, 3, 7)) == b"replaced"
    assert sorted(p.name for p in tmp_path.glob("*.mbtiles")) == ["earth-v1.mbtiles"]  # reads create nothing
    cache.close()
    assert MBTilesCache(tmp_path).get(CacheKey("earth", "v1", 5, 3, 7)) == b"replaced"  # persisted


def test_rows_are_tms_flipped_with_mbtiles_schema(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    cache.put(CacheKey("earth", "v1", 3, 2, 1), b"tile")
    with sqlite3.connect(tmp_path / "earth-v1.mbtiles") as conn:
        rows = conn.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [(3, 2, 2**3 - 1 - 1, b"tile")]
    assert any("UNIQUE" in sql and "zoom_level, tile_column, tile_row" in sql for _, sql in indexes)
    assert journal == "wal"


def test_metadata_and_zoom_span_follow_writes(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    cache.put(CacheKey("my-world", "abc123", 4, 0, 0), b"t")
    meta = metadata(tmp_path / "my-world-abc123.mbtiles")
    assert meta["format"] == "png" and meta["type"] == "baselayer"
    assert "my-world" in meta["name"] and "abc123" in meta["description"]
    assert meta["minzoom"] == "4" and meta["maxzoom"] == "4"
    west, south, east, north = map(float, meta["bounds"].split(","))
    assert (west, east) == (-180, 180) and north == -south == pytest.approx(85.0511, abs=1e-4)
    cache.put_many({CacheKey("my-world", "abc123", 9, 0, 0): b"t", CacheKey("my-world", "abc123", 2, 0, 0): b"t"})
    other_process_view = MBTilesCache(tmp_path)  # another instance keeps widening, never narrows
    other_process_view.put(CacheKey("my-world", "abc123", 6, 0, 0), b"t")
    other_process_view.put(CacheKey("my-world", "abc123", 12, 0, 0), b"t")
    meta = metadata(tmp_path / "my-world-abc123.mbtiles")
    assert (meta["minzoom"], meta["maxzoom"]) == ("2", "12")


def test_gdal_reads_the_cache_with_north_up_rows(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    colours = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255), (1, 1): (255, 255, 0)}
    cache.put_many({CacheKey("earth", "v1", 1, x, y): solid_png(rgb) for (x, y), rgb in colours.items()})
    cache.put(CacheKey("earth", "v1", 0, 0, 0), solid_png((9, 9, 9)))
    path = tmp_path / "earth-v1.mbtiles"
    info = subprocess.run(["gdalinfo", str(path)], check=False, capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, info.stderr
    assert "Driver: MBTiles/MBTiles" in info.stdout and "Size is 512, 512" in info.stdout
    out = tmp_path / "whole.png"
    subprocess.run(["gdal_translate", "-q", "-of", "PNG", str(path), str(out)], check=True, timeout=30)
    with Image.open(out) as image:
        rgb = image.convert("RGB")
        for (x, y), colour in colours.items():  # XYZ (0, 0) is the north-west quarter of the raster
            assert rgb.getpixel((x * 256 + 128, y * 256 + 128)) == colour


def test_concurrent_threads_write_and_read(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(40):
                key = CacheKey("earth", "v1", 8, thread, i)
                cache.put(key, f"{thread}/{i}".encode())
                assert cache.get(key) == f"{thread}/{i}".encode()
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    keys = [CacheKey("earth", "v1", 8, t, i) for t in range(8) for i in range(40)]
    assert len(MBTilesCache(tmp_path).get_many(keys)) == 320
    cache.close()


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from tiles import noise_png
    from terradream.cache import CacheKey, MBTilesCache
    cache = MBTilesCache(Path(sys.argv[1]))
    column, i = int(sys.argv[2]), 0
    while True:
        cache.put_many({CacheKey("earth", "v1", 12, column, i + j): noise_png(i + j, 128) for j in range(4)})
        i += 4
        if i == 8:
            print("ready", flush=True)
        if i >= 4000:
            break
""")


def start_writer(directory: Path, column: int) -> subprocess.Popen[str]:
    """A separate process writing batches of 4 noise PNGs to column `column` until killed."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(column), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_processes_share_a_file_and_sigkill_leaves_only_whole_tiles(tmp_path: Path) -> None:
    writers = [start_writer(tmp_path, column) for column in (1, 2)]
    cache = MBTilesCache(tmp_path)  # this process writes too, while both writers run
    for i in range(20):
        cache.put(CacheKey("earth", "v1", 12, 0, i), noise_png(i, 128))
    for proc in writers:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    cache.close()
    path = tmp_path / "earth-v1.mbtiles"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT tile_column, 4095 - tile_row, tile_data FROM tiles").fetchall()
    counts = {column: sum(1 for c, _, _ in rows if c == column) for column in (0, 1, 2)}
    assert counts[0] == 20 and counts[1] >= 8 and counts[2] >= 8
    assert counts[1] % 4 == 0 and counts[2] % 4 == 0  # each batch is one transaction: all or nothing
    for _, y, data in rows:
        assert np.array_equal(decode_rgb(data), decode_rgb(noise_png(y, 128)))


def test_purge_world_version_and_ranges(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    cache.put_many({CacheKey("earth", "v1", 2, x, y): b"t" for x in range(4) for y in range(4)})
    cache.put(CacheKey("earth", "v2", 2, 0, 0), b"t")
    cache.put(CacheKey("earth-two", "v1", 2, 0, 0), b"t")  # a world whose name starts like "earth-"
    north_west = bbox_tile_ranges(-179.0, 1.0, -1.0, 84.0, zooms=range(3))
    assert north_west[-1] == TileRange(2, 0, 0, 1, 1)
    assert cache.purge("earth", "v1", north_west) == 4
    assert cache.get(CacheKey("earth", "v1", 2, 1, 1)) is None  # TMS rows were matched correctly
    assert cache.get(CacheKey("earth", "v1", 2, 1, 2)) == b"t"
    assert cache.purge("earth") == 12 + 1
    assert cache.get(CacheKey("earth-two", "v1", 2, 0, 0)) == b"t"
    assert cache.purge("nowhere") == 0


def test_rejects_unsafe_names(tmp_path: Path) -> None:
    cache = MBTilesCache(tmp_path)
    for world, version in [("../etc", "v1"), ("earth", "a-b"), ("Earth", "v1"), ("earth", "x/y")]:
        with pytest.raises(ValueError):
            cache.put(CacheKey(world, version, 0, 0, 0), b"t")
    assert cache.ping()
