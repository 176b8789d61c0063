"""Shared fixtures: real services (redis-server; terradream serve behind nginx) on free loopback ports; test kinds
marked by folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import NginxPrefixProxy, PrefixedServer, RedisServer, ServeSubprocess

# `terradream serve` subprocesses run one worker unless a test asks for more (--workers): /metrics, queue limits and
# fair shares are per worker process, and the tests read them as one server's.
os.environ.setdefault("TERRADREAM_WORKERS", "1")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session; tests isolate themselves by key prefix or flushdb."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of the session Redis, flushed before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-init model (fast on CPU) saved in the diffusers layout the server loads."""
    from terradream.model.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


KINDS = ("unit", "integration", "browser", "cluster")
FOLDER_KINDS = {"frontend": "browser", "distributed": "cluster"}  # any other folder: integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test one kind: its module's own mark, else its folder's (`pytest -m unit`: the fast ones)."""
    tests = Path(__file__).parent
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in KINDS):
            folder = item.path.relative_to(tests).parts[0]
            item.add_marker(FOLDER_KINDS.get(folder, "integration"))


PROXY_PREFIX = "/terradream"


@pytest.fixture(scope="session")
def prefixed_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefixedServer]:
    """`terradream serve --root-path /terradream` (tiny model, maxzoom 6) behind a real nginx that strips the
    prefix: clients use `.url` (http://127.0.0.1:PORT/terradream), as behind a production proxy."""
    workdir = tmp_path_factory.mktemp("prefixed-server")
    server = ServeSubprocess(["--model", str(tiny_model_dir), "--cache", str(workdir / "cache"), "--device", "cpu",
                              "--maxzoom", "6", "--root-path", PROXY_PREFIX], workdir / "serve.log")
    server.wait_ok("/readyz", 180.0)
    (workdir / "nginx").mkdir()
    proxy = NginxPrefixProxy(server.url, workdir / "nginx", PROXY_PREFIX)
    try:
        proxy.start()
    except BaseException:
        server.stop()
        raise
    prefixed = PrefixedServer(server, proxy)
    yield prefixed
    prefixed.stop()
