"""Embedded default cache: one MBTiles 1.3 SQLite file per (world, model version) that QGIS/GDAL can open.

Files are `{world}-{version}.mbtiles` in WAL mode with a busy timeout, so several processes may share them;
each write is one transaction, so a crash never leaves a partial tile. Rows use the TMS row order the spec
requires (tile_row = 2^z - 1 - y). Connections are per thread.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from terradream.cache.base import CacheKey, check_names
from terradream.core.regions import TileRange
from terradream.core.tiles import WEB_MERCATOR_MAX_LAT_DEG

BUSY_TIMEOUT_MS = 10_000
WORLD_BOUNDS = f"-180.0,{-WEB_MERCATOR_MAX_LAT_DEG:.8f},180.0,{WEB_MERCATOR_MAX_LAT_DEG:.8f}"

SCHEMA = """
CREATE TABLE IF NOT EXISTS metadata (name TEXT, value TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS metadata_name ON metadata (name);
CREATE TABLE IF NOT EXISTS tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS tile_index ON tiles (zoom_level, tile_column, tile_row);
"""


def tms_row(z: int, y: int) -> int:
    """MBTiles (TMS, y up) row of XYZ (y down) row y at zoom z; the flip is its own inverse."""
    return (1 << z) - 1 - y


def mbtiles_name(world: str, version: str) -> str:
    """File name of the tileset of one world and model version."""
    check_names(world, version)
    return f"{world}-{version}.mbtiles"


def initial_metadata(world: str, version: str) -> dict[str, str]:
    """MBTiles 1.3 metadata rows of a new tileset; minzoom/maxzoom follow the tiles written."""
    return {
        "name": f"terradream {world} ({version})",
        "format": "png",
        "type": "baselayer",
        "version": "1",
        "description": f"Generated imagery of terradream world '{world}', model version {version}.",
        "bounds": WORLD_BOUNDS,
        "center": "0,0,0",
    }


class MBTilesCache:
    """TileCache on MBTiles files in one directory; created lazily on the first write of a (world, version)."""

    def __init__(self, directory: Path) -> None:
        """Keep tilesets under directory (created if missing)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._zoom_span: dict[Path, tuple[int, int]] = {}
        self._closed = False

    def path(self, world: str, version: str) -> Path:
        """Where the tileset of (world, version) lives."""
        return self.directory / mbtiles_name(world, version)

    def _connect(self, path: Path, create: bool) -> sqlite3.Connection | None:
        """This thread's connection to path, opened on first use; None if the file is absent and not to be created."""
        if self._closed:
            raise RuntimeError("MBTilesCache is closed")
        conns: dict[Path, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(path)
        if conn is not None:
            return conn
        if not create and not path.exists():
            return None
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before the first table
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable across process crashes, never corrupt
        with transaction(conn):  # idempotent; also waits out another process still creating the file
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)
        conns[path] = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _writer(self, world: str, version: str) -> sqlite3.Connection:
        """This thread's connection to the tileset, creating the file and its metadata if needed."""
        path = self.path(world, version)
        conn = self._connect(path, create=True)
        assert conn is not None
        if path not in self._zoom_span:
            with transaction(conn):
                conn.executemany("INSERT OR IGNORE INTO metadata (name, value) VALUES (?, ?)",
                                 initial_metadata(world, version).items())
                self._zoom_span[path] = read_zoom_span(conn)
        return conn

    def get(self, key: CacheKey) -> bytes | None:
        """The tile's PNG bytes, or None."""
        conn = self._connect(self.path(key.world, key.version), create=False)
        if conn is None:
            return None
        row = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (key.z, key.x, tms_row(key.z, key.y))).fetchone()
        return None if row is None else bytes(row[0])

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, bytes]:
        """The cached tiles among keys."""
        return {k: v for k in keys if (v := self.get(k)) is not None}

    def put(self, key: CacheKey, data: bytes) -> None:
        """Store one tile in its own transaction."""
        self.put_many({key: data})

    def put_many(self, items: Mapping[CacheKey, bytes]) -> None:
        """Store tiles, one transaction per tileset; also widens minzoom/maxzoom when the tiles need it."""
        groups: dict[tuple[str, str], list[tuple[int, int, int, bytes]]] = defaultdict(list)
        for key, data in items.items():
            groups[key.world, key.version].append((key.z, key.x, tms_row(key.z, key.y), bytes(data)))
        for (world, version), rows in groups.items():
            conn = self._writer(world, version)
            path = self.path(world, version)
            with transaction(conn):
                conn.executemany("INSERT OR REPLACE INTO tiles (zoom_level, tile_column, tile_row, tile_data) "
                                 "VALUES (?, ?, ?, ?)", rows)
                self._widen_zoom_span(conn, path, min(r[0] for r in rows), max(r[0] for r in rows))

    def _widen_zoom_span(self, conn: sqlite3.Connection, path: Path, min_z: int, max_z: int) -> None:
        """Lower minzoom / raise maxzoom in metadata, touching it only when this process saw them narrower."""
        known_min, known_max = self._zoom_span[path]
        if min_z < known_min:
            conn.execute("UPDATE metadata SET value = ? WHERE name = 'minzoom' AND CAST(value AS INTEGER) > ?",
                         (str(min_z), min_z))
            conn.execute("INSERT OR IGNORE INTO metadata (name, value) VALUES ('minzoom', ?)", (str(min_z),))
        if max_z > known_max:
            conn.execute("UPDATE metadata SET value = ? WHERE name = 'maxzoom' AND CAST(value AS INTEGER) < ?",
                         (str(max_z), max_z))
            conn.execute("INSERT OR IGNORE INTO metadata (name, value) VALUES ('maxzoom', ?)", (str(max_z),))
        self._zoom_span[path] = (min(known_min, min_z), max(known_max, max_z))

    def purge(self, world: str, version: str | None = None,
              tile_ranges: Sequence[TileRange] | None = None) -> int:
        """Delete rows of the world's tilesets; files and their minzoom/maxzoom stay, freed pages are vacuumed."""
        check_names(world, version)
        paths = [self.path(world, version)] if version else [
            p for p in self.directory.glob(f"{world}-*.mbtiles") if p.stem.rsplit("-", 1)[0] == world]
        removed = 0
        for path in paths:
            conn = self._connect(path, create=False)
            if conn is None:
                continue
            with transaction(conn):
                if tile_ranges is None:
                    removed += conn.execute("DELETE FROM tiles").rowcount
                for r in tile_ranges or ():
                    removed += conn.execute(
                        "DELETE FROM tiles WHERE zoom_level = ? AND tile_column BETWEEN ? AND ? "
                        "AND tile_row BETWEEN ? AND ?",
                        (r.z, r.min_x, r.max_x, tms_row(r.z, r.max_y), tms_row(r.z, r.min_y))).rowcount
            conn.execute("PRAGMA incremental_vacuum").fetchall()
        return removed

    def ping(self) -> bool:
        """Whether the directory is writable now."""
        return not self._closed and self.directory.is_dir() and os.access(self.directory, os.W_OK)

    def close(self) -> None:
        """Close every connection any thread opened."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def describe(self) -> str:
        """Directory, for logs."""
        return f"MBTiles in {self.directory}"


def read_zoom_span(conn: sqlite3.Connection) -> tuple[int, int]:
    """(minzoom, maxzoom) from metadata; (big, -1) when no tile was written yet."""
    rows = dict(conn.execute("SELECT name, value FROM metadata WHERE name IN ('minzoom', 'maxzoom')").fetchall())
    return int(rows.get("minzoom", 1 << 30)), int(rows.get("maxzoom", -1))


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection: writers queue on busy_timeout."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

