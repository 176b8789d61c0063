"""Cross-process single flight: RedisLock and run_exclusive against a real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from terradream.cache import RedisLock, run_exclusive


def test_redis_lock_is_exclusive_across_threads_with_own_clients(redis_url: str) -> None:
    counter = redis.Redis.from_url(redis_url)
    counter.set("counter", 0)
    errors: list[BaseException] = []

    def worker() -> None:
        lock = RedisLock(redis_url)  # own pool, as another process would have
        try:
            for _ in range(15):
                while (token := lock.acquire("tile", ttl_ms=5000)) is None:
                    lock.wait_released("tile", timeout_s=5)
                value = int(lock.client.get("counter"))  # non-atomic read-modify-write: lost updates
                time.sleep(0.002)  # unless the lock really excludes
                lock.client.set("counter", value + 1)
                assert lock.release("tile", token)
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert int(counter.get("counter")) == 60


def test_release_needs_the_owner_token(redis_url: str) -> None:
    lock = RedisLock(redis_url)
    token = lock.acquire("t", ttl_ms=5000)
    assert token is not None and lock.acquire("t", ttl_ms=5000) is None
    assert not lock.release("t", "not-the-token")
    assert lock.acquire("t", ttl_ms=5000) is None
    assert lock.extend("t", token, 60_000) and lock.client.pttl(lock.key("t")) > 10_000
    assert lock.release("t", token)
    assert lock.acquire("t", ttl_ms=5000) is not None


def test_wait_released_wakes_on_release_not_on_poll(redis_url: str) -> None:
    lock = RedisLock(redis_url, poll_s=5.0)
    token = lock.acquire("t", ttl_ms=30_000)
    assert token is not None
    releaser = threading.Timer(0.2, lock.release, args=("t", token))
    releaser.start()
    started = time.monotonic()
    assert lock.wait_released("t", timeout_s=10)
    waited = time.monotonic() - started
    releaser.join()
    assert 0.15 < waited < 1.5  # woken by PUBLISH, long before the 5 s poll


def test_wait_released_on_dead_holder_returns_at_ttl_expiry_and_times_out(redis_url: str) -> None:
    lock = RedisLock(redis_url, poll_s=5.0)
    assert lock.acquire("dead", ttl_ms=300) is not None  # holder "dies": never releases
    started = time.monotonic()
    assert lock.wait_released("dead", timeout_s=10)
    assert 0.2 < time.monotonic() - started < 2.0  # at the TTL, not at the 5 s poll
    assert lock.acquire("held", ttl_ms=30_000) is not None
    started = time.monotonic()
    assert not lock.wait_released("held", timeout_s=0.3)
    assert time.monotonic() - started < 2.0


def test_run_exclusive_produces_once_across_threads(redis_url: str) -> None:
    store: dict[str, bytes] = {}
    produced = 0

    def produce() -> bytes:
        nonlocal produced
        produced += 1
        time.sleep(0.2)
        store["tile"] = b"png"
        return b"png"

    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(
        run_exclusive(RedisLock(redis_url), "tile", lambda: store.get("tile"), produce))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"png"] * 5 and produced == 1


def test_run_exclusive_rechecks_the_cache_after_acquiring(redis_url: str) -> None:
    # Another process stored the tile and released between our cache miss and our acquire.
    def produce() -> bytes:
        raise AssertionError("must not generate a tile that is already cached")

    assert run_exclusive(RedisLock(redis_url), "tile", lambda: b"cached meanwhile", produce) == b"cached meanwhile"


def test_run_exclusive_takes_over_from_a_dead_holder(redis_url: str) -> None:
    lock = RedisLock(redis_url, poll_s=5.0)
    assert lock.acquire("tile", ttl_ms=300) is not None  # a crashed process's lock
    started = time.monotonic()
    assert run_exclusive(lock, "tile", lambda: None, lambda: b"mine") == b"mine"
    assert time.monotonic() - started < 2.5


def test_run_exclusive_still_produces_when_redis_is_down(redis_server, tmp_path) -> None:
    server = type(redis_server)(tmp_path)
    server.start()
    lock = RedisLock(server.url)
    server.stop()
    with pytest.raises(redis.RedisError):
        lock.acquire("tile", ttl_ms=1000)
    assert run_exclusive(lock, "tile", lambda: None, lambda: b"generated anyway") == b"generated anyway"
