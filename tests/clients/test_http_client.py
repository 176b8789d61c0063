"""The --url client against a scripted HTTP server: bulk priority header, Retry-After honoured, retries bounded."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from terradream.data.sources import MAX_RETRY_AFTER_S, retry_after_s

from .conftest import inner_bbox, run_cli

RETRY_AFTER_S = 1


def png_bytes() -> bytes:
    """A small valid PNG tile."""
    out = io.BytesIO()
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(out, format="PNG")
    return out.getvalue()


class BusyOnceServer(ThreadingHTTPServer):
    """Answers TileJSON, and each tile with 503 + Retry-After the first time, 200 after; records every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[float, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.png = png_bytes()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    """The scripted answers of BusyOnceServer."""

    server: BusyOnceServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        with self.server.lock:
            tries = sum(1 for _, path, _ in self.server.seen if path == self.path)
            self.server.seen.append((time.monotonic(), self.path, dict(self.headers)))
        if self.path.endswith("/tilejson.json"):
            self.answer(200, json.dumps({"version": "v1", "attribution": "test", "description": "",
                                         "maxzoom": 22}).encode(), "application/json")
        elif tries == 0:
            self.answer(503, b'{"detail": "busy"}', "application/json", {"Retry-After": str(RETRY_AFTER_S)})
        else:
            self.answer(200, self.server.png, "image/png", {"X-Cache": "miss"})

    def answer(self, status: int, body: bytes, media_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def busy_server() -> Iterator[BusyOnceServer]:
    server = BusyOnceServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_seed_sends_bulk_and_waits_retry_after(busy_server: BusyOnceServer) -> None:
    bbox = inner_bbox(6, 32, 22, 33, 22)
    result = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "6", "--url", busy_server.url,
                     "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert "2 rendered, 0 failed" in result.stdout
    tile_requests = [(t, path, h) for t, path, h in busy_server.seen if path.endswith(".png")]
    assert {path for _, path, _ in tile_requests} == {"/tiles/earth/6/32/22.png", "/tiles/earth/6/33/22.png"}
    assert all(h.get("X-Terradream-Priority") == "bulk" for _, _, h in tile_requests)
    for path in {p for _, p, _ in tile_requests}:
        times = [t for t, p, _ in tile_requests if p == path]
        assert len(times) == 2 and times[1] - times[0] >= RETRY_AFTER_S * 0.95


def test_seed_gives_up_after_the_retries(busy_server: BusyOnceServer) -> None:
    result = run_cli("seed", "--world", "earth", "--bbox", inner_bbox(6, 32, 22, 32, 22), "--zoom", "6",
                     "--url", busy_server.url, "--retries", "0")
    assert result.exit_code == 1
    assert "earth/6/32/22: HTTP 503: busy (gave up after 1 tries)" in result.stderr


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert retry_after_s("3", 9.0) == 3.0
    assert retry_after_s(None, 9.0) == 9.0
    assert retry_after_s("soon", 9.0) == 9.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=7), usegmt=True), 9.0, now=now) == 7.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=7), usegmt=True), 9.0, now=now) == 0.0
    assert retry_after_s("100000", 9.0) == MAX_RETRY_AFTER_S
