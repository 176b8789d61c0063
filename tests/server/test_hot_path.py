"""The cache-hit fast path (terradream.api.hot) answers exactly as the FastAPI tile route does, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from terradream.engine.settings import Settings

from .conftest import ThreadServer, free_port

IGNORED_HEADERS = {"date"}  # the only header that may differ between two answers


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """One server for the module, embedded cache, maxzoom 7."""
    server = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), maxzoom=7,
                                   cache=tmp_path_factory.mktemp("hot") / "cache"))
    yield server
    server.stop()


def answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers in order (without Date) and body: what must be identical between the two paths."""
    headers = [(k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in IGNORED_HEADERS]
    return response.status_code, headers, response.content


def route_then_fast(server: ThreadServer, method: str, path: str,
                    headers: dict[str, str] | None = None) -> tuple[httpx.Response, httpx.Response]:
    """The same request answered by the route (response LRU emptied first) and then by the fast path."""
    runtime = server.runtime
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        assert client.get(path).status_code == 200  # generated (or read from the cache): now a hit everywhere
        runtime.responses.purge(lambda key: False)
        before = runtime.hot_hits
        by_route = client.request(method, path, headers=headers)
        assert runtime.hot_hits == before, "the route answered, not the fast path"
        by_fast_path = client.request(method, path, headers=headers)
        assert by_fast_path.status_code != 200 or runtime.hot_hits == before + 1, "the fast path did not answer"
    return by_route, by_fast_path


@pytest.mark.parametrize("path", ["/tiles/earth/3/4/2.png", "/tiles/earth/3/4/2.webp", "/tiles/earth/3/4/2@2x.jpg",
                                  "/tiles/earth/3/4/2.png?v=", "/tiles/earth/3/4/2.png?v=other"])
def test_hits_match_the_route(server: ThreadServer, path: str) -> None:
    by_route, by_fast_path = route_then_fast(server, "GET", path)
    assert by_route.headers["x-cache"] == "hit" and by_route.status_code == 200
    assert answer(by_fast_path) == answer(by_route)


def test_version_pinned_hit_is_immutable_like_the_route(server: ThreadServer) -> None:
    version = httpx.get(f"{server.url}/readyz", timeout=10).json()["version"]
    by_route, by_fast_path = route_then_fast(server, "GET", f"/tiles/earth/3/5/2.png?v={version}")
    assert "immutable" in by_fast_path.headers["cache-control"]
    assert answer(by_fast_path) == answer(by_route)


def test_cors_head_and_304_match_the_route(server: ThreadServer) -> None:
    path = "/tiles/earth/3/3/2.png"
    for method, headers in (("GET", {"Origin": "https://map.example"}), ("HEAD", None)):
        by_route, by_fast_path = route_then_fast(server, method, path, headers)
        assert answer(by_fast_path) == answer(by_route)
    etag = httpx.get(server.url + path, timeout=60).headers["etag"]
    by_route, by_fast_path = route_then_fast(server, "GET", path, {"If-None-Match": f'W/"x", {etag}'})
    assert by_fast_path.status_code == 304 and answer(by_fast_path) == answer(by_route)
    assert by_fast_path.headers["etag"] == etag and "content-length" not in by_fast_path.headers


def test_what_it_cannot_answer_falls_through(server: ThreadServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        assert client.get("/tiles/earth/3/2/2.png").status_code == 200
        before = server.runtime.hot_hits
        assert client.get("/tiles/earth/3/2/2.png?v=a&v=b").status_code == 200  # odd query: the route parses it
        assert client.get("/tiles/earth/9/2/2.png").status_code == 404  # beyond maxzoom: never in the LRU
        assert client.get("/tiles/earth/3/2/2.gif").status_code in (404, 422)
        assert server.runtime.hot_hits == before
        hits = server.metric("terradream_tile_requests_total", cache="hit")
        assert client.get("/tiles/earth/3/2/2.png").headers["x-cache"] == "hit"
        assert server.runtime.hot_hits == before + 1
        assert server.metric("terradream_tile_requests_total", cache="hit") == hits + 1  # counted like the route
