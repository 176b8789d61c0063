"""Embedded default cache: one MBTiles 1.3 SQLite file per (world, model version) that QGIS/GDAL can open.

Files are `{world}-{version}.mbtiles` in WAL mode with a busy timeout, so several processes may share them;
each write is one transaction, so a crash never leaves a partial tile. Rows use the TMS row order the spec
requires (tile_row = 2^z - 1 - y). Connections are per thread. With a byte budget, every write evicts the least
recently used tiles of any world (cache.budget) once the directory outgrows it; a full disk fails the write (the
caller keeps the tile in memory) and is remembered in `disk_full` until a write succeeds again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from terradream.cache.base import CacheKey, check_names
from terradream.cache.budget import (
    BUSY_TIMEOUT_MS,
    INDEX_NAME,
    UseIndex,
    checkpoint_truncate,
    directory_bytes,
    is_disk_full,
    now_ms,
    release_free_pages,
    transaction,
)
from terradream.core.regions import TileRange
from terradream.core.tiles import WEB_MERCATOR_MAX_LAT_DEG

log = logging.getLogger("terradream.cache.mbtiles")

LOW_WATER = 0.8  # eviction brings the directory down to this share of its budget
EVICTION_ROUNDS = 4  # file sizes only follow deletions approximately: measure and evict again, this often at most
PIN_S = 1.0  # tiles read or written this recently are never evicted (a generation in flight reads and writes them)
WORLD_BOUNDS = f"-180.0,{-WEB_MERCATOR_MAX_LAT_DEG:.8f},180.0,{WEB_MERCATOR_MAX_LAT_DEG:.8f}"

SCHEMA = """
CREATE TABLE IF NOT EXISTS metadata (name TEXT, value TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS metadata_name ON metadata (name);
CREATE TABLE IF NOT EXISTS tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS tile_index ON tiles (zoom_level, tile_column, tile_row);
"""


def _retry_locked(step: Callable[[], None]) -> None:
    """Run step, again while SQLite says the database is locked without waiting (another process switching a new
    file to WAL), for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


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

    def __init__(self, directory: Path, max_bytes: int | None = None, pin_s: float = PIN_S) -> None:
        """Keep tilesets under directory (created if missing), within max_bytes on disk when given (LRU eviction)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.pin_s = pin_s
        self.evicted_tiles = 0  # since start, by this process
        self.disk_full = False  # the last write failed for want of space
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._evicting = threading.Lock()
        self._zoom_span: dict[Path, tuple[int, int]] = {}
        self._closed = False
        self._index: UseIndex | None = None
        if max_bytes is not None:
            adopt = not (self.directory / INDEX_NAME).exists()
            self._index = UseIndex(self.directory)
            if adopt:
                self._adopt_existing_tiles(self._index)

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
        with self._setup_lock:  # threads set up one at a time: switching a new file to WAL skips the busy handler
            _retry_locked(lambda: self._set_up(conn))
        conns[path] = conn
        with self._lock:
            self._all.append(conn)
        return conn

    @staticmethod
    def _set_up(conn: sqlite3.Connection) -> None:
        """Pragmas and schema of a new connection (idempotent)."""
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before the first table
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable across process crashes, never corrupt
        conn.execute("PRAGMA journal_size_limit = 1048576")  # a checkpointed WAL shrinks back to 1 MiB
        with transaction(conn):  # also waits out another process still creating the file
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)

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
        if row is None:
            return None
        if self._index is not None:
            self._index.touch(key)
        return bytes(row[0])

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, bytes]:
        """The cached tiles among keys."""
        return {k: v for k in keys if (v := self.get(k)) is not None}

    def put(self, key: CacheKey, data: bytes) -> None:
        """Store one tile in its own transaction."""
        self.put_many({key: data})

    def put_many(self, items: Mapping[CacheKey, bytes]) -> None:
        """Store tiles, then keep the directory within its budget; a full disk raises (and sets disk_full)."""
        if not items:
            return
        try:
            if self._index is not None:  # first: a tile stored but not indexed could never be evicted
                self._index.record((key, len(data)) for key, data in items.items())
            self._write(items)
        except (sqlite3.Error, OSError) as error:
            if is_disk_full(error) and not self.disk_full:
                log.warning("cache disk full: tiles are kept in memory only until space returns",
                            extra={"directory": str(self.directory)})
            self.disk_full = self.disk_full or is_disk_full(error)
            raise
        if self.disk_full:
            log.warning("cache disk has space again", extra={"directory": str(self.directory)})
            self.disk_full = False
        self.enforce_budget()

    def _write(self, items: Mapping[CacheKey, bytes]) -> None:
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
            release_free_pages(conn)
        if self._index is not None and tile_ranges is None:
            self._index.forget_world(world, version)
        return removed

    def used_bytes(self) -> int:
        """Bytes the cache directory takes on disk now."""
        return directory_bytes(self.directory)

    def enforce_budget(self) -> int:
        """Evict least recently used tiles (never those used in the last pin_s) until the directory is back under
        LOW_WATER of max_bytes, once it is over max_bytes; returns how many were evicted (0 while another thread
        evicts)."""
        if self._index is None or self.max_bytes is None or not self._evicting.acquire(blocking=False):
            return 0
        evicted = 0
        try:
            for _ in range(EVICTION_ROUNDS):
                used = directory_bytes(self.directory)
                if used <= self.max_bytes * (LOW_WATER if evicted else 1.0):
                    break
                if not evicted:  # write-ahead logs hold recent tiles twice until checkpointed (up to 4 MB each)
                    self._checkpoint_all()
                    used = directory_bytes(self.directory)
                    if used <= self.max_bytes:
                        break
                victims = self._index.oldest(used - int(self.max_bytes * LOW_WATER),
                                             now_ms() - int(self.pin_s * 1000))
                if not victims:
                    log.warning("cache over its budget, but every tile is in use",
                                extra={"bytes": used, "max_bytes": self.max_bytes})
                    break
                self._delete([key for key, _ in victims])
                self._index.forget(key for key, _ in victims)
                self._index.checkpoint()
                evicted += len(victims)
        finally:
            self._evicting.release()
        self.evicted_tiles += evicted
        if evicted:
            log.info("evicted least recently used tiles", extra={"tiles": evicted, "max_bytes": self.max_bytes})
        return evicted

    def _checkpoint_all(self) -> None:
        """Fold every tileset's write-ahead log into its file and truncate the log."""
        for path in sorted(self.directory.glob("*-*.mbtiles")):
            conn = self._connect(path, create=False)
            if conn is not None:
                checkpoint_truncate(conn)

    def _delete(self, keys: Sequence[CacheKey]) -> None:
        """Delete tiles from their tilesets, then give the space back to the file system."""
        groups: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
        for key in keys:
            groups[key.world, key.version].append((key.z, key.x, tms_row(key.z, key.y)))
        for (world, version), rows in groups.items():
            conn = self._connect(self.path(world, version), create=False)
            if conn is None:
                continue
            with transaction(conn):
                conn.executemany("DELETE FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?", rows)
            release_free_pages(conn)
            checkpoint_truncate(conn)

    def _adopt_existing_tiles(self, index: UseIndex) -> None:
        """Index the tiles of a cache written before it had a budget, as least recently used."""
        for path in sorted(self.directory.glob("*-*.mbtiles")):
            world, _, version = path.stem.rpartition("-")
            conn = self._connect(path, create=False)
            if conn is None:
                continue
            rows = conn.execute("SELECT zoom_level, tile_column, tile_row, length(tile_data) FROM tiles").fetchall()
            index.record(((CacheKey(world, version, z, x, tms_row(z, row)), size) for z, x, row, size in rows),
                         used_ms=0)

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
        if self._index is not None:
            self._index.close()

    def describe(self) -> str:
        """Directory (and budget), for logs."""
        budget = "" if self.max_bytes is None else f", at most {self.max_bytes / 2**20:.0f} MiB"
        return f"MBTiles in {self.directory}{budget}"


def read_zoom_span(conn: sqlite3.Connection) -> tuple[int, int]:
    """(minzoom, maxzoom) from metadata; (big, -1) when no tile was written yet."""
    rows = dict(conn.execute("SELECT name, value FROM metadata WHERE name IN ('minzoom', 'maxzoom')").fetchall())
    return int(rows.get("minzoom", 1 << 30)), int(rows.get("maxzoom", -1))
