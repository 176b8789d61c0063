"""FileLock: the flock-based cross-process mutex of server workers sharing the embedded cache."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from terradream.cache import FileLock, run_exclusive
from terradream.cache.locks import ReentrantLock

pytestmark = pytest.mark.unit

HOLDER = """
import sys, time
from pathlib import Path
from terradream.cache import FileLock
lock = FileLock(Path(sys.argv[1]))
assert lock.acquire("gen:earth/v/5/2/2", ttl_ms=1) is not None
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_in_child(directory: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes the lock and keeps it for `seconds` (or until killed)."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), str(seconds)], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_another_process_holding_excludes_until_it_releases_or_dies(tmp_path: Path) -> None:
    lock = FileLock(tmp_path)
    child = hold_in_child(tmp_path, 60)
    try:
        assert lock.acquire("gen:earth/v/5/2/2", ttl_ms=1) is None
        assert lock.wait_released("gen:earth/v/5/2/2", timeout_s=0.2) is False
        assert lock.acquire("gen:earth/v/9/0/0", ttl_ms=1) is not None  # other names (other lock files) are free
    finally:
        child.kill()  # a crashed holder: the kernel drops its lock at once
        child.wait()
    assert lock.wait_released("gen:earth/v/5/2/2", timeout_s=5) is True
    token = lock.acquire("gen:earth/v/5/2/2", ttl_ms=1)
    assert token is not None and lock.extend("gen:earth/v/5/2/2", token, 1)
    assert lock.acquire("gen:earth/v/5/2/2", ttl_ms=1) is None  # exclusive within one process too
    assert lock.release("gen:earth/v/5/2/2", token) and not lock.release("gen:earth/v/5/2/2", token)
    lock.close()


def test_run_exclusive_waits_for_the_holder_then_finds_its_tile(tmp_path: Path) -> None:
    store: dict[str, bytes] = {}
    child = hold_in_child(tmp_path, 0.5)
    started = time.monotonic()
    produced = run_exclusive(FileLock(tmp_path), "gen:earth/v/5/2/2", lambda: store.get("tile"),
                             lambda: store.setdefault("tile", b"mine"), wait_timeout_s=30)
    child.wait()
    assert produced == b"mine" and time.monotonic() - started >= 0.3  # waited for the holder, then took over


def test_reentrant_lock_lets_its_process_nest_and_keeps_others_out(tmp_path: Path) -> None:
    """A process holding a lock file takes it again for any name on that file; another holder (a second FileLock:
    its own open file, as another process has) waits until the last nested holder lets go."""
    mine = ReentrantLock(FileLock(tmp_path, buckets=1))  # one file: every name shares it
    theirs = FileLock(tmp_path, buckets=1)
    outer = mine.acquire("gen:a", 1000)
    assert outer is not None
    inner = mine.acquire("gen:b", 1000)  # same file, same process: nested, not a self-deadlock
    assert inner == outer
    assert theirs.acquire("gen:a", 1000) is None
    assert mine.release("gen:b", inner)
    assert theirs.acquire("gen:a", 1000) is None  # still held by the outer holder
    assert mine.release("gen:a", outer)
    assert theirs.acquire("gen:a", 1000) is not None
    assert not mine.release("gen:a", outer)  # released already
