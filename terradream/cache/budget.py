"""The disk budget of the embedded cache: last use and size of every tile in one shared SQLite index, so the least
recently used tiles of any world can be evicted when the cache directory grows past its budget.

The index (`lru.sqlite` in the cache directory, WAL, shared by every process on the directory) is bookkeeping only:
tiles stay in their MBTiles files. Reads are noted in memory and written in batches with the next write, so a cache
hit costs no disk write.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from terradream.cache.base import CacheKey

INDEX_NAME = "lru.sqlite"
DEFAULT_FREE_FRACTION = 0.5  # the default budget: this share of (free space + the cache's own size) at start
BUSY_TIMEOUT_MS = 10_000  # every cache SQLite connection (tilesets and the index) waits this long for a lock

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS tile_use (world TEXT, version TEXT, z INTEGER, x INTEGER, y INTEGER,
    bytes INTEGER, used_ms INTEGER, PRIMARY KEY (world, version, z, x, y)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tile_use_order ON tile_use (used_ms);
"""


def directory_bytes(directory: Path) -> int:
    """Bytes of the regular files directly in directory (tilesets, their WAL and shared-memory files, the index)."""
    total = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # removed meanwhile
                continue
    return total


def default_max_bytes(directory: Path, fraction: float = DEFAULT_FREE_FRACTION) -> int:
    """The default budget: `fraction` of what the cache could grow to at start (free space plus its own size), but
    never less than it already takes (a default must not throw away an existing cache)."""
    directory.mkdir(parents=True, exist_ok=True)
    used = directory_bytes(directory)
    return max(used, int(fraction * (shutil.disk_usage(directory).free + used)))


def is_disk_full(error: BaseException) -> bool:
    """Whether a write failed because the disk (or quota) is full: SQLite's SQLITE_FULL or ENOSPC/EDQUOT."""
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def now_ms() -> int:
    """Wall-clock milliseconds: the index is shared between processes, so a monotonic clock will not do."""
    return time.time_ns() // 1_000_000


class UseIndex:
    """Last use and size of each cached tile, in `lru.sqlite`; thread-safe (one connection per thread)."""

    def __init__(self, directory: Path) -> None:
        """Open (or create) the index of the cache in directory."""
        self.path = directory / INDEX_NAME
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._touched: dict[CacheKey, int] = {}  # reads not yet written to the index

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA journal_size_limit = 1048576")
            with transaction(conn):
                for statement in filter(str.strip, INDEX_SCHEMA.split(";")):
                    conn.execute(statement)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def touch(self, key: CacheKey) -> None:
        """Note a read of key now (written to the index with the next write)."""
        with self._lock:
            self._touched[key] = now_ms()

    def record(self, sizes: Iterable[tuple[CacheKey, int]], used_ms: int | None = None) -> None:
        """Note tiles just written (their sizes, used now or at used_ms) and every read noted since the last write."""
        with self._lock:
            touched, self._touched = self._touched, {}
        stamp = now_ms() if used_ms is None else used_ms
        conn = self._conn()
        with transaction(conn):
            conn.executemany("INSERT OR REPLACE INTO tile_use VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(*key, size, stamp) for key, size in sizes])
            conn.executemany("UPDATE tile_use SET used_ms = max(used_ms, ?) "
                             "WHERE world = ? AND version = ? AND z = ? AND x = ? AND y = ?",
                             [(used, *key) for key, used in touched.items()])

    def oldest(self, need_bytes: int, used_before_ms: int) -> list[tuple[CacheKey, int]]:
        """Least recently used tiles (last used before used_before_ms) whose sizes add up to need_bytes or more."""
        chosen: list[tuple[CacheKey, int]] = []
        total = 0
        rows = self._conn().execute("SELECT world, version, z, x, y, bytes FROM tile_use WHERE used_ms < ? "
                                    "ORDER BY used_ms", (used_before_ms,))
        for world, version, z, x, y, size in rows:
            if total >= need_bytes:
                break
            chosen.append((CacheKey(world, version, z, x, y), size))
            total += size
        return chosen

    def forget(self, keys: Iterable[CacheKey]) -> None:
        """Drop evicted (or purged) tiles from the index."""
        conn = self._conn()
        with transaction(conn):
            conn.executemany("DELETE FROM tile_use WHERE world = ? AND version = ? AND z = ? AND x = ? AND y = ?",
                             [tuple(key) for key in keys])

    def forget_world(self, world: str, version: str | None) -> None:
        """Drop a purged world's tiles (one model version, or all) from the index."""
        conn = self._conn()
        with transaction(conn):
            conn.execute("DELETE FROM tile_use WHERE world = ? AND (? IS NULL OR version = ?)",
                         (world, version, version))

    def checkpoint(self) -> None:
        """Fold the index's WAL back and truncate it (skipped, not waited for, while others read)."""
        checkpoint_truncate(self._conn())

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def release_free_pages(conn: sqlite3.Connection) -> None:
    """Give an auto_vacuum=INCREMENTAL database's free pages back to the file system (at its next checkpoint).

    Run as a script: executed as a statement, the pragma frees only one page per step.
    """
    conn.executescript("PRAGMA incremental_vacuum;")


def checkpoint_truncate(conn: sqlite3.Connection) -> None:
    """Checkpoint a WAL database and truncate its WAL file, giving up at once rather than waiting on readers."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.OperationalError:  # busy: the next eviction tries again
        pass
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
