"""The --url client against a scripted HTTP server: bulk priority header, Retry-After honoured, retries bounded,
seeding by HEAD, and seed --duration."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
        self.methods: list[tuple[str, str]] = []  # (method, path) of every request
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

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.methods.append((self.command, self.path))
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
        if self.command == "GET":
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


def test_seed_asks_with_head_and_export_with_get(busy_server: BusyOnceServer, tmp_path: Path) -> None:
    bbox = inner_bbox(6, 32, 22, 33, 22)
    seeded = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "6", "--url", busy_server.url)
    assert seeded.exit_code == 0, seeded.output
    tiles = [(method, path) for method, path in busy_server.methods if path.endswith(".png")]
    assert {method for method, _ in tiles} == {"HEAD"} and len({path for _, path in tiles}) == 2

    busy_server.methods.clear()
    exported = run_cli("export", "--world", "earth", "--bbox", bbox, "--zoom", "6",
                       "--out", str(tmp_path / "a.mbtiles"), "--url", busy_server.url)
    assert exported.exit_code == 0, exported.output
    assert {method for method, path in busy_server.methods if path.endswith(".png")} == {"GET"}


def test_seed_stops_when_its_duration_is_spent(busy_server: BusyOnceServer) -> None:
    # every tile first answers 503 with a 1 s Retry-After, so the first tile alone outlasts a 0.5 s budget
    bbox = inner_bbox(6, 32, 22, 35, 22)
    result = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "6", "--url", busy_server.url,
                     "--concurrency", "1", "--duration", "0.5s")
    assert result.exit_code == 0, result.output
    assert "1 of 4 tiles" in result.stdout and "0 failed" in result.stdout
    assert "stopped after --duration 0.5 s; run the same command again" in result.stderr
    assert len({path for _, path in busy_server.methods if path.endswith(".png")}) == 1


@pytest.mark.parametrize("duration", ["0", "-5m", "soon", "10d"])
def test_bad_durations_are_usage_errors(duration: str) -> None:
    result = run_cli("seed", "--world", "earth", "--bbox", "1,42,10,47", "--zoom", "5", "--duration", duration)
    assert result.exit_code == 2 and "--duration" in result.output


def test_seed_gives_up_after_the_retries(busy_server: BusyOnceServer) -> None:
    result = run_cli("seed", "--world", "earth", "--bbox", inner_bbox(6, 32, 22, 32, 22), "--zoom", "6",
                     "--url", busy_server.url, "--retries", "0")
    assert result.exit_code == 1
    assert "earth/6/32/22: HTTP 503 (gave up after 1 tries)" in result.stderr  # seeding asks with HEAD: no body


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert retry_after_s("3", 9.0) == 3.0
    assert retry_after_s(None, 9.0) == 9.0
    assert retry_after_s("soon", 9.0) == 9.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=7), usegmt=True), 9.0, now=now) == 7.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=7), usegmt=True), 9.0, now=now) == 0.0
    assert retry_after_s("100000", 9.0) == MAX_RETRY_AFTER_S
