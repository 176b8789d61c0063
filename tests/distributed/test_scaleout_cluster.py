"""Scale-out with real processes: many requests over two API servers, a killed worker, a scheduler outage."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis
from scaleout_cluster import Cluster, log_tail, reference_tiles  # this folder's helpers
from server.conftest import ProcessServer  # tests/server/conftest.py

from terradream.core.keys import TileKey
from terradream.model.pipeline import TerraPipeline

REQUEST_TIMEOUT_S = 120.0


def tile_url(api: ProcessServer, key: TileKey) -> str:
    """The PNG URL of a tile on one API server."""
    return f"{api.url}/tiles/{key.world}/{key.z}/{key.x}/{key.y}.png"


async def get_all(urls: list[str], stagger_s: float = 0.0) -> list[httpx.Response]:
    """GET every URL concurrently, the i-th starting after i * stagger_s seconds."""
    limits = httpx.Limits(max_connections=len(urls), max_keepalive_connections=len(urls))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        async def get(i: int, url: str) -> httpx.Response:
            await asyncio.sleep(i * stagger_s)
            return await http.get(url)

        return list(await asyncio.gather(*(get(i, url) for i, url in enumerate(urls))))


def model_version(cluster: Cluster) -> str:
    """The model version the API servers key tiles with."""
    return str(httpx.get(f"{cluster.apis[0].url}/readyz", timeout=10.0).json()["version"])


def cached_tiles(redis_url: str, world: str, version: str) -> dict[TileKey, bytes]:
    """Every tile of a world in Redis, read back raw."""
    client = redis.Redis.from_url(redis_url)
    try:
        names = list(client.scan_iter(match=f"terradream:tile:{world}:{version}:*"))
        values = client.mget(names) if names else []
    finally:
        client.close()
    tiles = {}
    for name, value in zip(names, values, strict=True):
        z, x, y = (int(v) for v in name.rsplit(b":", 3)[1:])
        tiles[TileKey(world, z, x, y)] = value
    return tiles


def busy_worker(cluster: Cluster, generated_before: float, timeout_s: float = 60.0) -> str:
    """The name of a worker holding tile tasks once the cluster has generated at least one tile (mid-generation)."""
    deadline = time.monotonic() + timeout_s
    with cluster.dask_client() as client:
        while time.monotonic() < deadline:
            processing = {addr: keys for addr, keys in client.processing().items() if keys}
            if processing and cluster.generated() > generated_before:
                workers = client.scheduler_info()["workers"]
                busiest = max(processing, key=lambda addr: len(processing[addr]))
                return str(workers[busiest]["name"])
            time.sleep(0.05)
    raise AssertionError("no worker was ever busy generating")


def test_concurrent_cold_requests_make_each_tile_once_cluster_wide(cluster: Cluster,
                                                                   pipeline: TerraPipeline) -> None:
    cluster.ensure_workers()
    keys = [TileKey("earth", 6, x, y) for x in range(20, 24) for y in range(24, 26)]
    keys += [TileKey("earth", 5, x, 12) for x in (10, 11)]  # also parents of the zoom-6 tiles
    reference = reference_tiles(pipeline, keys)
    before = cluster.generated()
    # 64 overlapping requests, every tile asked several times through both API servers; staggered over ~6 s, so
    # later ones find parts of the pyramid cached and the rest in flight (their graphs must reuse those keys)
    requests = [(cluster.apis[(i // len(keys)) % 2], keys[i % len(keys)]) for i in range(64)]
    responses = asyncio.run(get_all([tile_url(api, key) for api, key in requests], stagger_s=0.1))
    for (_, key), response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        assert response.content == reference.pngs[key], f"{key} differs from the single-process tile"
    assert cluster.generated() - before == reference.generated  # each tile once, parents included
    stored = cached_tiles(cluster.redis_url, "earth", model_version(cluster))
    assert {k: stored.get(k) for k in reference.pngs} == reference.pngs  # parents and roots too
    scheduler_log = cluster.scheduler_log().read_text()
    assert "different `run_spec`" not in scheduler_log, log_tail(cluster.scheduler_log())


def test_scheduler_outage_serves_cached_tiles_refuses_cold_ones_and_recovers(cluster: Cluster,
                                                                           pipeline: TerraPipeline) -> None:
    cluster.ensure_workers()
    warm, cold = TileKey("outage", 4, 3, 5), TileKey("outage", 4, 12, 6)
    reference = reference_tiles(pipeline, [warm, cold])
    assert httpx.get(tile_url(cluster.apis[0], warm), timeout=REQUEST_TIMEOUT_S).status_code == 200

    cluster.kill_scheduler()
    cluster.wait_connected(0)
    for api in cluster.apis:
        hit = httpx.get(tile_url(api, warm), timeout=10.0)
        assert hit.status_code == 200 and hit.content == reference.pngs[warm]
        refused = httpx.get(tile_url(api, cold), timeout=10.0)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1

    cluster.start_scheduler()  # same port: workers and API servers find it again by themselves
    cluster.wait_for_workers(2)
    cluster.wait_connected(1)
    made = httpx.get(tile_url(cluster.apis[1], cold), timeout=REQUEST_TIMEOUT_S)
    assert made.status_code == 200, made.text
    assert made.content == reference.pngs[cold]


def test_redis_outage_refuses_cold_tiles_until_it_returns(cluster: Cluster, pipeline: TerraPipeline,
                                                          redis_server: Any) -> None:
    cluster.ensure_workers()
    warm, cold = TileKey("redis-down", 4, 2, 5), TileKey("redis-down", 4, 13, 5)
    reference = reference_tiles(pipeline, [warm, cold])
    assert httpx.get(tile_url(cluster.apis[0], warm), timeout=REQUEST_TIMEOUT_S).status_code == 200
    redis_server.stop()
    try:
        held = httpx.get(tile_url(cluster.apis[0], warm), timeout=10.0)  # still in that API server's memory
        assert held.status_code == 200 and held.content == reference.pngs[warm]
        refused = httpx.get(tile_url(cluster.apis[1], cold), timeout=10.0)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
    finally:
        redis_server.start()  # empty again: tiles are made anew
    deadline = time.monotonic() + 60.0
    made = httpx.get(tile_url(cluster.apis[1], cold), timeout=REQUEST_TIMEOUT_S)
    while made.status_code == 503 and time.monotonic() < deadline:  # until every process reconnected to Redis
        time.sleep(float(made.headers["Retry-After"]))
        made = httpx.get(tile_url(cluster.apis[1], cold), timeout=REQUEST_TIMEOUT_S)
    assert made.status_code == 200, made.text
    assert made.content == reference.pngs[cold]


def test_requests_that_go_away_release_their_tiles_even_inside_worker_batchers(cluster: Cluster) -> None:
    cluster.ensure_workers()
    keys = [TileKey("cancel", 4, x, y) for x in range(16) for y in (6, 7)]  # 32 tiles over cached roots
    urls = [tile_url(cluster.apis[i % 2], key) for i, key in enumerate(keys)]
    generated_before, dropped_before = cluster.generated(), cluster.worker_metric("terradream_tiles_dropped_total")

    async def ask_then_leave() -> None:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=httpx.Limits(max_connections=64)) as http:
            requests = [asyncio.ensure_future(http.get(url)) for url in urls]
            while await asyncio.to_thread(cluster.generated) == generated_before:  # until the batchers are busy
                await asyncio.sleep(0.05)
            for request in requests:
                request.cancel()  # closes the connections: the API servers see the clients go
            await asyncio.gather(*requests, return_exceptions=True)

    asyncio.run(ask_then_leave())
    cluster.wait_idle()
    assert cluster.worker_metric("terradream_tiles_dropped_total") > dropped_before  # withdrawn inside a worker
    made = cached_tiles(cluster.redis_url, "cancel", model_version(cluster))
    assert len([k for k in made if k.z == 4]) < len(keys)
    assert cluster.generated() - generated_before < len(keys)


def test_worker_killed_mid_generation_loses_no_request_and_caches_nothing_partial(cluster: Cluster,
                                                                                 pipeline: TerraPipeline) -> None:
    cluster.ensure_workers()
    keys = [TileKey("killed", 5, x, y) for x in range(8, 12) for y in range(8, 12)]
    reference = reference_tiles(pipeline, keys)
    urls = [tile_url(cluster.apis[i % 2], key) for i, key in enumerate(keys * 2)]
    before = cluster.generated()
    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(lambda: asyncio.run(get_all(urls)))
        victim = busy_worker(cluster, before)
        cluster.kill_worker(victim)  # SIGKILL while it holds tile tasks
        responses = answers.result(timeout=REQUEST_TIMEOUT_S)
    for key, response in zip(keys * 2, responses, strict=True):
        assert response.status_code == 200, response.text
        assert response.content == reference.pngs[key]
    stored = cached_tiles(cluster.redis_url, "killed", model_version(cluster))
    assert set(keys) <= set(stored)
    assert {k: reference.pngs.get(k) for k in stored} == stored  # every cached entry whole and right
