"""Helpers for tests, benchmarks and scripts that run real servers: a free local port, waiting for a URL to answer,
and the shipped nginx front (deploy/nginx-tiles.conf) as a stand-alone config for a local nginx.

Kept in the package (like terradream.model.testing) so that tests/ and bench/ share one copy: bench code never imports
tests/.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, alive: Callable[[], bool] = lambda: True, timeout_s: float = 180.0,
                  accept: Callable[[int], bool] = lambda status: status == 200, poll_s: float = 0.1) -> httpx.Response:
    """Poll GET url until its status passes `accept` (200 by default); returns that answer.

    Raises RuntimeError as soon as alive() is false (the server died while starting) and TimeoutError, with the last
    answer, once timeout_s has passed."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server behind {url} died while starting")
        try:
            response = httpx.get(url, timeout=2.0)
            if accept(response.status_code):
                return response
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(poll_s)
    raise TimeoutError(f"{url} not answering after {timeout_s:.0f} s: {last}")


FRONT_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx-tiles.conf"  # in a checkout, not in the wheel
FRONT_UPSTREAM, FRONT_LISTEN, FRONT_CACHE = "server api:8000;", "listen 8080;", "/var/cache/nginx/terradream"


def front_nginx_conf(prefix: Path, upstream_port: int, port: int) -> str:
    """The shipped nginx front proxying 127.0.0.1:upstream_port on 127.0.0.1:port, its files under prefix.

    The compose file's config with only its upstream, listen address and cache folder replaced, inside a minimal main
    config (one worker per core, as the static-file nginx of the benchmark).
    """
    front = FRONT_CONF.read_text()
    for literal in (FRONT_UPSTREAM, FRONT_LISTEN, FRONT_CACHE):
        if literal not in front:
            raise ValueError(f"{FRONT_CONF} no longer contains {literal!r}")
    front = (front.replace(FRONT_UPSTREAM, f"server 127.0.0.1:{upstream_port};")
             .replace(FRONT_LISTEN, f"listen 127.0.0.1:{port};").replace(FRONT_CACHE, str(prefix / "cache")))
    for sub in ("cache", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "front.conf").write_text(front)
    user = "user root;" if os.geteuid() == 0 else ""  # workers must write the cache folder under a private prefix
    return f"""
{user}
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  sendfile on;
  include {prefix}/front.conf;
}}
"""
