"""Generation over real HTTP: single-flight under a stampede, bounded queue (503), priorities, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from terradream.core.keys import TileKey

from .conftest import ThreadServer

COLD_TILE = "/tiles/earth/5/10/12.png"  # z5: generated from the z4 Blue Marble root in one model window
COLD_KEY = TileKey("earth", 5, 10, 12)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll condition every 20 ms until true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def get_many(url: str, count: int) -> list[httpx.Response]:
    """count concurrent GETs of one URL, each on its own connection."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=300.0) as client:
        return list(await asyncio.gather(*(client.get(url) for _ in range(count))))


def test_stampede_generates_once(start_server: Callable[..., ThreadServer]) -> None:
    reference = start_server()
    expected = httpx.get(reference.url + COLD_TILE, timeout=300.0)
    assert expected.status_code == 200
    tiles_per_generation = reference.metric("terradream_tiles_generated_total")
    assert tiles_per_generation >= 1

    server = start_server()
    server.generation.pause()  # hold the worker until all 50 requests are waiting on the tile

    async def stampede() -> list[httpx.Response]:
        storm = asyncio.ensure_future(get_many(server.url + COLD_TILE, 50))
        deadline = time.monotonic() + 60
        while server.generation.requesters(COLD_KEY) < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        server.generation.resume()
        return await storm

    responses = asyncio.run(stampede())
    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.content == expected.content for r in responses)  # tiles are pure functions of their key
    assert [r.headers["x-cache"] for r in responses] == ["miss"] * 50
    assert server.metric("terradream_tiles_generated_total") == tiles_per_generation
    assert server.metric("terradream_batch_size_count") == 1
    assert server.metric("terradream_tile_requests_total", cache="miss") == 50


def test_waiting_tiles_render_in_one_batch(start_server: Callable[..., ThreadServer]) -> None:
    server = start_server(batch_size=3)
    server.generation.pause()

    async def five_tiles() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120.0) as client:
            requests = [asyncio.ensure_future(client.get(f"{server.url}/tiles/earth/4/{x}/5.png")) for x in range(5)]
            while server.generation.queue_depth < 5:
                await asyncio.sleep(0.02)
            server.generation.resume()
            return list(await asyncio.gather(*requests))

    assert [r.status_code for r in asyncio.run(five_tiles())] == [200] * 5
    assert server.metric("terradream_batch_size_count") == 2  # 3 + 2 distinct tiles per cascade call
    assert server.metric("terradream_batch_size_sum") == 5
    assert server.metric("terradream_batch_size_bucket", le="2.0") == 1


def test_full_queue_answers_503_with_retry_after(start_server: Callable[..., ThreadServer]) -> None:
    server = start_server(queue_max=1, retry_after_s=3)
    hot = httpx.get(f"{server.url}/tiles/earth/2/1/1.png", timeout=120.0)
    assert hot.status_code == 200
    server.generation.pause()

    async def flood() -> tuple[list[httpx.Response], list[httpx.Response], httpx.Response]:
        async with httpx.AsyncClient(timeout=120.0) as client:
            first = asyncio.ensure_future(client.get(f"{server.url}/tiles/earth/4/0/0.png"))
            while server.generation.queue_depth < 1:
                await asyncio.sleep(0.02)
            refused = await asyncio.gather(*(client.get(f"{server.url}/tiles/earth/4/{x}/1.png") for x in range(6)))
            still_hot = await client.get(f"{server.url}/tiles/earth/2/1/1.png")
            joined = asyncio.ensure_future(client.get(f"{server.url}/tiles/earth/4/0/0.png"))
            while server.generation.requesters(TileKey("earth", 4, 0, 0)) < 2:
                await asyncio.sleep(0.02)
            server.generation.resume()
            return list(await asyncio.gather(first, joined)), list(refused), still_hot

    queued, refused, still_hot = asyncio.run(flood())
    # the queued tile, and a second request joining it while the queue was full, are both answered
    assert [r.status_code for r in queued] == [200, 200]
    for response in refused:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert "queue is full" in response.json()["detail"]
    assert still_hot.status_code == 200 and still_hot.headers["x-cache"] == "hit"
    assert server.metric("terradream_overloaded_total") == 6
    assert server.generation.queue_depth == 0


def test_interactive_goes_before_bulk(start_server: Callable[..., ThreadServer]) -> None:
    server = start_server(batch_size=1)
    assert httpx.get(f"{server.url}/tiles/earth/4/0/0.png", timeout=120.0).status_code == 200  # root image loaded
    server.generation.pause()
    finished: list[str] = []

    async def fetch(client: httpx.AsyncClient, name: str, path: str, bulk: bool) -> None:
        headers = {"X-Terradream-Priority": "bulk"} if bulk else {}
        response = await client.get(server.url + path, headers=headers)
        assert response.status_code == 200
        finished.append(name)

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=120.0) as client:
            tasks = []
            for i, (name, path, bulk) in enumerate([
                ("bulk-a", "/tiles/earth/4/0/2.png", True),
                ("bulk-b", "/tiles/earth/4/1/2.png", True),
                ("bulk-c", "/tiles/earth/4/2/2.png", True),
                ("interactive", "/tiles/earth/4/3/2.png", False),
                ("bulk-c", "/tiles/earth/4/2/2.png", False),  # an interactive requester joins bulk-c: it moves up
            ]):
                tasks.append(asyncio.ensure_future(fetch(client, name, path, bulk)))
                expected_depth = min(i + 1, 4)
                while server.generation.queue_depth < expected_depth:
                    await asyncio.sleep(0.02)
            while server.generation.requesters(TileKey("earth", 4, 2, 2)) < 2:
                await asyncio.sleep(0.02)
            server.generation.resume()
            await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert finished[:3] == ["interactive", "bulk-c", "bulk-c"]
    assert finished[3:] == ["bulk-a", "bulk-b"]


def test_abandoned_tiles_are_dropped(start_server: Callable[..., ThreadServer]) -> None:
    server = start_server()
    server.generation.pause()

    async def abandon() -> None:
        async with httpx.AsyncClient(timeout=120.0) as client:
            request = asyncio.ensure_future(client.get(server.url + COLD_TILE))
            while server.generation.requesters(COLD_KEY) < 1:
                await asyncio.sleep(0.02)
            request.cancel()  # like Leaflet dropping a tile panned out of view: the connection closes

    asyncio.run(abandon())
    server.wait_metric("terradream_tiles_dropped_total", 1)
    assert server.generation.queue_depth == 0 and server.generation.requesters(COLD_KEY) == 0
    server.generation.resume()
    time.sleep(0.5)
    assert server.metric("terradream_batch_size_count") == 0
    assert server.metric("terradream_tiles_generated_total") == 0
    again = httpx.get(server.url + COLD_TILE, timeout=300.0)
    assert again.status_code == 200 and again.headers["x-cache"] == "miss"


def test_a_tile_someone_still_wants_is_kept(start_server: Callable[..., ThreadServer]) -> None:
    server = start_server()
    server.generation.pause()

    async def one_leaves() -> httpx.Response:
        async with httpx.AsyncClient(timeout=300.0) as leaving, httpx.AsyncClient(timeout=300.0) as staying:
            gone = asyncio.ensure_future(leaving.get(server.url + COLD_TILE))
            kept = asyncio.ensure_future(staying.get(server.url + COLD_TILE))
            while server.generation.requesters(COLD_KEY) < 2:
                await asyncio.sleep(0.02)
            gone.cancel()
            while server.generation.requesters(COLD_KEY) > 1:
                await asyncio.sleep(0.02)
            server.generation.resume()
            return await kept

    response = asyncio.run(one_leaves())
    assert response.status_code == 200 and response.headers["x-cache"] == "miss"
    assert server.metric("terradream_tiles_dropped_total") == 0
    assert server.metric("terradream_tiles_generated_total") >= 1
