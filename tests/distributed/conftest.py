"""A real scale-out cluster on 127.0.0.1: a Dask scheduler, two `terradream worker`s, two `terradream serve` APIs.

Every process runs the tiny model on one CPU thread and shares the session's real Redis (flushed first). The cluster
lives for the module; tests use their own worlds, so nothing one test caches changes another. ensure_workers()
restarts workers a test killed, and the scheduler can be killed and started again on its port.

This folder must stay WITHOUT an __init__.py: as a package it would be named `distributed` and shadow Dask's.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from scaleout_cluster import PROCESS_ENV, WORKER_NAMES, Cluster  # this folder's helpers
from server.conftest import ProcessServer  # tests/server/conftest.py

from terradream.model.pipeline import TerraPipeline


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_server: Any,
            tiny_model_dir: Path) -> Iterator[Cluster]:
    """Scheduler, two workers and two API servers, started concurrently."""
    workdir = tmp_path_factory.mktemp("cluster")
    flush = redis.Redis.from_url(redis_server.url)
    flush.flushall()  # earlier modules may have cached tiles of the same tiny model
    flush.close()
    cluster = Cluster(workdir, redis_server.url, tiny_model_dir)
    cluster.start_scheduler()
    for name in WORKER_NAMES:
        cluster.start_worker(name)
    api_args = ["--scheduler", cluster.address, "--redis", redis_server.url, "--model", str(tiny_model_dir),
                "--device", "cpu"]
    try:
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(ProcessServer, api_args, PROCESS_ENV, workdir / f"api-{i}.log") for i in (1, 2)]
            failures = [f.exception() for f in starting if f.exception() is not None]
            cluster.apis = [f.result() for f in starting if f.exception() is None]  # stopped in any case
        if failures:
            raise failures[0]  # type: ignore[misc]
        cluster.wait_for_workers(len(WORKER_NAMES))
        cluster.wait_connected(1)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir: Path) -> TerraPipeline:
    """The tiny model in the test process, for single-process reference tiles."""
    return TerraPipeline.from_pretrained(tiny_model_dir, device="cpu")
