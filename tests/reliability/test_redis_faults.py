"""Redis faults: absent at start, killed mid-load and restarted, black-holed; damaged entries.

Tiles keep being served, /readyz reports the degradation, the server reconnects by itself, and every tile read
back is whole: the same bytes every time, a decodable 256x256 PNG.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from support import RedisServer  # tests/support.py

from terradream.cache.locks import RedisLock
from terradream.cache.redis import CircuitOpen

from .conftest import Served, decode_tile, readyz, wait_until

TILES = [f"/tiles/earth/{z}/{x}/{y}.png" for z in range(4) for x in range(2**z) for y in range(2**z)][:40]


def tile_entries(url: str) -> dict[str, bytes]:
    """Every tile entry in Redis, by its z/x/y suffix."""
    client = redis.Redis.from_url(url)
    try:
        return {k.decode().split(":", 4)[-1].replace(":", "/"): client.get(k) or b""
                for k in client.scan_iter("terradream:tile:earth:*")}
    finally:
        client.close()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers: a hung Redis."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield int(sock.getsockname()[1])
    sock.close()


def test_redis_absent_at_start_then_appearing(serve: Callable[..., Served], tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)  # its port is chosen, nothing listens there yet
    server = serve("--redis", redis_server.url, degraded_ok=True)
    try:
        down = readyz(server)
        assert down.status_code == 503
        assert down.json()["cache"] == "unreachable" and down.json()["model"] == "loaded"
        served = {}
        for path in TILES[:6]:
            response = httpx.get(server.url + path, timeout=120)
            assert response.status_code == 200, response.text
            decode_tile(response.content)
            served[path] = response.content
        assert readyz(server).json()["generation_lock"] == "failing fast"
        redis_server.start()
        wait_until(lambda: readyz(server).status_code == 200, 15, "reconnecting to Redis")
        assert readyz(server).json()["cache"] == "ok"
        fresh = "/tiles/earth/4/3/5.png"
        response = httpx.get(server.url + fresh, timeout=120)
        assert response.status_code == 200
        assert tile_entries(redis_server.url)["4/3/5"] == response.content  # written through after reconnecting
        for path, body in served.items():  # tiles made during the outage come back unchanged (memory LRU)
            assert httpx.get(server.url + path, timeout=60).content == body
        assert "reachable again" in server.log_text()
    finally:
        redis_server.stop()


def test_redis_killed_mid_load_then_restarted(serve: Callable[..., Served], redis_server: RedisServer,
                                              redis_url: str) -> None:
    server = serve("--redis", redis_url, env={"TERRADREAM_CLIENT_COLD_RATE_PER_S": "0"})
    bodies: dict[str, set[bytes]] = defaultdict(set)
    statuses: dict[int, int] = defaultdict(int)
    readiness: list[tuple[str, int]] = []
    stop = threading.Event()

    async def load() -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            async def worker(offset: int) -> None:
                i = offset
                while not stop.is_set():
                    path = TILES[i % len(TILES)]
                    response = await client.get(server.url + path)
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        bodies[path].add(response.content)
                    i += 7
            await asyncio.gather(*(worker(k) for k in range(4)))

    thread = threading.Thread(target=lambda: asyncio.run(load()))
    thread.start()
    try:
        time.sleep(4)
        redis_server.stop()
        outage_started = time.monotonic()
        while time.monotonic() - outage_started < 4:
            readiness.append(("down", readyz(server).status_code))
            time.sleep(0.5)
        redis_server.start()
        wait_until(lambda: readyz(server).status_code == 200, 15, "reconnecting to Redis")
        time.sleep(3)
    finally:
        stop.set()
        thread.join(120)
    assert set(statuses) == {200}, dict(statuses)
    assert sum(statuses.values()) > 40
    assert any(status == 503 for phase, status in readiness if phase == "down")
    for path, seen in bodies.items():
        assert len(seen) == 1, f"{path} was served with {len(seen)} different bodies"
        decode_tile(next(iter(seen)))
    for x in range(6):  # new tiles after the restart reach the (empty, restarted) Redis again
        bodies[f"/tiles/earth/4/{x}/7.png"] = {httpx.get(f"{server.url}/tiles/earth/4/{x}/7.png", timeout=120).content}
    stored = tile_entries(redis_url)
    assert {f"4/{x}/7" for x in range(6)} <= set(stored)
    for suffix, data in stored.items():  # everything in Redis is whole and identical to what was served
        decode_tile(data)
        assert bodies[f"/tiles/earth/{suffix}.png"] == {data}


def test_a_damaged_entry_is_never_served(serve: Callable[..., Served], redis_url: str) -> None:
    server = serve("--redis", redis_url)
    version = readyz(server).json()["version"]
    whole = httpx.get(server.url + "/tiles/earth/2/1/2.png", timeout=120).content
    client = redis.Redis.from_url(redis_url)
    try:  # a truncated copy of a whole tile, and foreign bytes, under the keys of two tiles not served yet
        client.set(f"terradream:tile:earth:{version}:3:2:4", whole[: len(whole) // 2])
        client.set(f"terradream:tile:earth:{version}:3:3:4", b"not a png")
        for path, key in (("/tiles/earth/3/2/4.png", "3:2:4"), ("/tiles/earth/3/3/4.png", "3:3:4")):
            response = httpx.get(server.url + path, timeout=120)
            assert response.status_code == 200
            decode_tile(response.content)
            assert response.headers["x-cache"] == "miss"  # regenerated, not read back
            assert client.get(f"terradream:tile:earth:{version}:{key}") == response.content  # and repaired
    finally:
        client.close()
    assert "damaged cached tile ignored" in server.log_text()


def test_the_lock_fails_fast_while_redis_hangs(black_hole: int) -> None:
    lock = RedisLock(f"redis://127.0.0.1:{black_hole}/0", retry_after_s=5.0)
    started = time.monotonic()
    with pytest.raises(redis.RedisError):
        lock.acquire("tile", 1000)
    first_s = time.monotonic() - started
    assert first_s >= 0.4  # a real timeout: the socket timeout (0.5 s) expired
    started = time.monotonic()
    for _ in range(50):
        with pytest.raises(CircuitOpen):
            lock.acquire("tile", 1000)
    assert time.monotonic() - started < 0.5, "an open circuit must not touch the network"
    assert lock.breaker.degraded


def test_cold_tiles_do_not_pay_a_timeout_each_while_redis_hangs(serve: Callable[..., Served],
                                                                 black_hole: int) -> None:
    server = serve("--redis", f"redis://127.0.0.1:{black_hole}/0", degraded_ok=True)
    httpx.get(server.url + "/tiles/earth/0/0/0.png", timeout=120).raise_for_status()  # opens both breakers
    latencies_s = []
    for x, y in [(x, y) for x in range(4) for y in range(4)][:10]:
        started = time.monotonic()
        response = httpx.get(f"{server.url}/tiles/earth/2/{x}/{y}.png", timeout=120)
        latencies_s.append(time.monotonic() - started)
        assert response.status_code == 200
        decode_tile(response.content)
    # root tiles cost milliseconds; without the breakers every one would wait >= 1 s (lock and cache timeouts),
    # with them only the occasional probe does
    assert sorted(latencies_s)[len(latencies_s) // 2] < 0.3, latencies_s
    report = readyz(server).json()
    assert report["cache"] == "unreachable" and report["generation_lock"] == "failing fast"
