"""The shipped nginx front (deploy/nginx-tiles.conf, compose's `front`) in front of a real `terradream serve`.

It must pass `nginx -t`, keep tile responses keyed by URL (and Origin), answer repeats and If-None-Match itself,
keep version-pinned URLs immutable, and pass refusals and errors through uncached.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from support import stop_process

from terradream.api.testing import FRONT_CONF, free_port, front_nginx_conf, wait_for_http

from .conftest import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
TILE = "/tiles/earth/6/12/40.png"  # a block no other client test touches

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None,
                                 reason="nginx is not installed (Debian: apt-get install nginx-light)")


def test_compose_puts_the_front_before_the_api() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    front = services["front"]
    assert any(str(v).startswith("./deploy/nginx-tiles.conf:/etc/nginx/conf.d/default.conf") for v in front["volumes"])
    assert "api" in front["depends_on"]
    assert "ports" not in services["api"]  # clients reach the API through the front only


@pytest.fixture
def front(server: ServeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx running the shipped front config against the session's server; its base URL."""
    prefix = tmp_path_factory.mktemp("front")
    port = free_port()
    (prefix / "nginx.conf").write_text(front_nginx_conf(prefix, server.port, port))
    proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", alive=lambda: proc.poll() is None, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@needs_nginx
def test_front_config_passes_nginx_t(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(front_nginx_conf(tmp_path, free_port(), free_port()))
    done = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert FRONT_CONF.is_file()


def get(client: httpx.Client, path: str, **headers: str) -> httpx.Response:
    """GET through the front, retrying the API's 503s (the server has --queue-max 1) as a polite client does."""
    for _ in range(60):
        response = client.get(path, headers=headers)
        if response.status_code != 503:
            return response
        assert response.headers["x-front-cache"] == "MISS" and "retry-after" in response.headers
        time.sleep(float(response.headers["retry-after"]))
    raise AssertionError(f"{path} still 503 after 60 tries")


@needs_nginx
def test_front_caches_tiles_by_url(server: ServeProcess, front: str) -> None:
    version = httpx.get(f"{server.url}/readyz", timeout=10).json()["version"]
    with httpx.Client(base_url=front, timeout=300.0) as client:
        first = get(client, TILE)
        assert first.status_code == 200 and first.headers["x-front-cache"] == "MISS"
        again = get(client, TILE)
        assert again.headers["x-front-cache"] == "HIT"
        assert again.content == first.content == httpx.get(server.url + TILE, timeout=60).content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == "public, max-age=86400"

        not_modified = get(client, TILE, **{"If-None-Match": first.headers["etag"]})
        assert not_modified.status_code == 304 and not_modified.headers["x-front-cache"] == "HIT"

        pinned = [get(client, f"{TILE}?v={version}") for _ in range(2)]
        assert [r.headers["x-front-cache"] for r in pinned] == ["MISS", "HIT"]  # the query is part of the key
        assert "immutable" in pinned[1].headers["cache-control"] and pinned[1].content == first.content

        cors = [get(client, TILE, Origin="https://map.example") for _ in range(2)]
        assert [r.headers["x-front-cache"] for r in cors] == ["MISS", "HIT"]  # never a copy without CORS headers
        assert cors[1].headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-origin" not in again.headers

        missing = [get(client, "/tiles/earth/7/0/0.png") for _ in range(2)]  # beyond the server's maxzoom
        assert [r.status_code for r in missing] == [404, 404]
        assert [r.headers["x-front-cache"] for r in missing] == ["MISS", "MISS"]  # errors are not kept
