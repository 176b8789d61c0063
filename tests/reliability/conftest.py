"""Reliability fixtures: real `terradream serve` processes (tests/server's ProcessServer) on the tiny model."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from server.conftest import READY_TIMEOUT_S, ProcessServer  # tests/server/conftest.py
from support import free_port, wait_for_port  # tests/support.py

SERVER_ENV = {"OMP_NUM_THREADS": "1"}  # torch spin-waits badly on a small shared machine


class Served(ProcessServer):
    """tests/server's ProcessServer that keeps its log file and may start degraded (cache unreachable)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, degraded_ok: bool = False) -> None:
        """Start `terradream serve` with args and env (plus SERVER_ENV), logging to log_path; wait until /readyz
        answers 200, or (degraded_ok) until it says the model is loaded even though the cache is unreachable."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "terradream.cli", "serve", "--port", str(self.port), *args],
            env={**os.environ, **SERVER_ENV, **env}, stdout=self._log, stderr=self._log)
        try:
            wait_until(lambda: self._ready(degraded_ok), READY_TIMEOUT_S, f"{self.url} becoming ready")
        except Exception:
            self.stop()
            raise

    def _ready(self, degraded_ok: bool) -> bool:
        """One /readyz poll (raises when the process died)."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
        try:
            response = httpx.get(f"{self.url}/readyz", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 or (degraded_ok and response.json().get("model") == "loaded")

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, no clean-up at all (a crash)."""
        self.proc.kill()
        self.proc.wait()
        self.stop()


@pytest.fixture
def serve(tiny_model_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `terradream serve` processes on the tiny model (CPU, a fresh cache unless --cache is given)."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None, cache: Path | None = None,
              degraded_ok: bool = False) -> Served:
        base = ["--model", str(tiny_model_dir), "--device", "cpu", "--cache", str(cache or tmp_path / "cache")]
        server = Served([*base, *args], env or {}, tmp_path / f"server{len(started)}.log", degraded_ok)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def decode_tile(png: bytes) -> np.ndarray:
    """A served/cached PNG decoded completely (raises on any damage)."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG" and image.size == (256, 256), (image.format, image.size)
        return np.asarray(image.convert("RGB"))


def mbtiles_rows(path: Path) -> list[tuple[int, int, int, bytes]]:
    """Every (z, column, row, data) of an MBTiles file, after an integrity check, opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [(z, x, y, bytes(d)) for z, x, y, d in conn.execute(
            "SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")]
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll check() until true or fail saying what did not happen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout_s}s")


def readyz(server: ProcessServer) -> httpx.Response:
    """GET /readyz."""
    return httpx.get(f"{server.url}/readyz", timeout=10.0)


class TLSRedis:
    """A real redis-server speaking only TLS (self-signed certificate for 127.0.0.1) with a password."""

    def __init__(self, workdir: Path, password: str) -> None:
        """Make the certificate and start the server on a free port."""
        self.cert, key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(self.cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
        self.port = free_port()
        self.password = password
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(self.port),
             "--bind", "127.0.0.1", "--tls-cert-file", str(self.cert), "--tls-key-file", str(key),
             "--tls-ca-cert-file", str(self.cert), "--tls-auth-clients", "no", "--requirepass", password,
             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        """rediss:// URL with the password and the CA to verify the server against."""
        return f"rediss://:{self.password}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.cert}"

    def stop(self) -> None:
        """Kill the server."""
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TLSRedis]:
    """A TLS-only, password-protected redis-server for one test."""
    server = TLSRedis(tmp_path, password="tls-pa55word-0123456789")
    yield server
    server.stop()
