"""The server on a real Redis: shared cache, readiness under an outage, single-flight across two processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from terradream.core.keys import TileKey

from .conftest import ProcessServer, ThreadServer
from .test_generation import wait_until

COLD_TILE = "/tiles/earth/5/11/12.png"
COLD_KEY = TileKey("earth", 5, 11, 12)
SIBLING_TILE = "/tiles/earth/5/12/12.png"  # in COLD_TILE's 2x2 block (blocks start at odd tiles)


def test_tiles_are_cached_in_redis(start_server: Callable[..., ThreadServer], redis_url: str) -> None:
    server = start_server(redis=redis_url)
    ready = httpx.get(f"{server.url}/readyz").json()
    assert "Redis" in ready["cache_backend"] or "redis" in ready["cache_backend"]
    first = httpx.get(server.url + COLD_TILE, timeout=300.0)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    client = redis.Redis.from_url(redis_url)
    try:
        keys = {k.decode() for k in client.scan_iter("terradream:tile:earth:*")}
        assert any(k.endswith(":5:11:12") for k in keys)
        stored = next(client.get(k) for k in keys if k.endswith(":5:11:12"))
        assert stored == first.content  # the canonical PNG, byte for byte
        assert not list(client.scan_iter("terradream:lock:*"))  # the generation lock was released
    finally:
        client.close()
    # a second server on the same Redis finds it: no generation there
    other = start_server(redis=redis_url)
    second = httpx.get(other.url + COLD_TILE, timeout=300.0)
    assert second.headers["x-cache"] == "hit" and second.content == first.content
    assert other.metric("terradream_tiles_generated_total") == 0


def test_a_long_generation_keeps_its_lock(start_server: Callable[..., ThreadServer], redis_url: str) -> None:
    server = start_server(redis=redis_url, lock_ttl_s=0.3)
    lock_key = "terradream:lock:" + server.generation.lock_name(COLD_KEY)
    client = redis.Redis.from_url(redis_url)
    server.generation.pause()  # the generation now lasts as long as we like

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(timeout=300.0) as http:
            request = asyncio.ensure_future(http.get(server.url + COLD_TILE))
            while client.get(lock_key) is None:
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.5)  # five TTLs
            assert client.pttl(lock_key) > 0, "the lock expired while its holder was still generating"
            server.generation.resume()
            return await request

    try:
        assert asyncio.run(scenario()).status_code == 200
        assert client.get(lock_key) is None  # released at the end
    finally:
        client.close()


def test_a_dead_lock_holder_is_taken_over(start_server: Callable[..., ThreadServer], redis_url: str) -> None:
    server = start_server(redis=redis_url)
    client = redis.Redis.from_url(redis_url)
    try:  # a process that took the lock and died: nobody will release it, its TTL will
        client.set("terradream:lock:" + server.generation.lock_name(COLD_KEY), "dead-token", px=1500)
    finally:
        client.close()
    started = time.monotonic()
    response = httpx.get(server.url + COLD_TILE, timeout=300.0)
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.4  # it waited for the TTL, then generated the tile itself
    assert server.metric("terradream_tiles_generated_total") >= 1


def test_readyz_reports_a_redis_outage(start_server: Callable[..., ThreadServer], redis_server, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    server = start_server(redis=redis_url)
    hot = httpx.get(f"{server.url}/tiles/earth/3/1/1.png", timeout=120.0)
    assert hot.status_code == 200
    redis_server.stop()
    try:
        down = httpx.get(f"{server.url}/readyz", timeout=10.0)
        assert down.status_code == 503
        assert down.json()["cache"] == "unreachable" and down.json()["model"] == "loaded"
        # hot tiles are still served from memory meanwhile
        again = httpx.get(f"{server.url}/tiles/earth/3/1/1.png", timeout=10.0)
        assert again.status_code == 200 and again.content == hot.content
    finally:
        redis_server.start()
    wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=10.0).status_code == 200, 30.0, "reconnect")


def test_stampede_across_two_processes_generates_once(
        start_server: Callable[..., ThreadServer], tiny_model: Path, tmp_path: Path, redis_url: str) -> None:
    reference = start_server()  # embedded cache: what one generation of the tile costs
    expected = httpx.get(reference.url + COLD_TILE, timeout=300.0)
    tiles_per_generation = reference.metric("terradream_tiles_generated_total")
    assert tiles_per_generation >= 1
    sibling = httpx.get(reference.url + SIBLING_TILE, timeout=300.0)
    assert sibling.headers["x-cache"] == "hit"  # made by the same window: one lock covers both
    paths = {COLD_TILE: expected.content, SIBLING_TILE: sibling.content}

    args = ["--model", str(tiny_model), "--device", "cpu", "--redis", redis_url, "--cache", str(tmp_path / "unused")]
    servers = [ProcessServer(args, log_path=tmp_path / f"server{i}.log") for i in range(2)]
    try:
        async def stampede() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
            async with httpx.AsyncClient(limits=limits, timeout=300.0) as client:
                return list(await asyncio.gather(
                    *(client.get(servers[i % 2].url + list(paths)[i // 2 % 2]) for i in range(50))))

        responses = asyncio.run(stampede())
        assert [r.status_code for r in responses] == [200] * 50
        assert all(r.content == paths[r.url.path] for r in responses)
        generated = [s.metric("terradream_tiles_generated_total") for s in servers]
        assert sum(generated) == tiles_per_generation, generated
        assert sorted(generated) == [0, tiles_per_generation]
        # the server that generated nothing did not just arrive late: its requests waited on the other's lock
        idle = servers[generated.index(0)]
        assert idle.metric("terradream_tile_requests_total", cache="miss") > 0
    finally:
        for server in servers:
            server.stop()
