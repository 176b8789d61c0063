"""Real servers for the HTTP tests: in-process uvicorn threads and `terradream serve` subprocesses, tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from support import stop_process

from terradream.api.app import create_app
from terradream.api.dependencies import Runtime
from terradream.api.testing import free_port, wait_for_http
from terradream.engine.generation import GenerationService
from terradream.engine.settings import Settings
from terradream.model.testing import make_tiny_model

READY_TIMEOUT_S = 120.0


def metric_value(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0.0 when absent)."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


class Server:
    """What the tests need from any running server: its URL and its metrics."""

    url: str

    def metrics_text(self) -> str:
        """GET /metrics."""
        return httpx.get(f"{self.url}/metrics", timeout=10.0).text

    def metric(self, name: str, **labels: str) -> float:
        """One metric sample of this server."""
        return metric_value(self.metrics_text(), name, **labels)

    def wait_metric(self, name: str, expected: float, timeout_s: float = 30.0, **labels: str) -> None:
        """Poll /metrics until the sample equals expected."""
        deadline = time.monotonic() + timeout_s
        value = self.metric(name, **labels)
        while value != expected and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.metric(name, **labels)
        assert value == expected, f"{name}{labels} = {value}, expected {expected}"


class ThreadServer(Server):
    """create_app(settings) served by uvicorn on a free port in a thread of the test process (real HTTP)."""

    def __init__(self, settings: Settings, wait: bool = True) -> None:
        """Start serving and (unless wait=False) wait for /readyz."""
        self.app = create_app(settings)
        self.port = settings.port
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None, log_level="warning",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        if wait:
            wait_for_http(f"{self.url}/readyz", alive=self._thread.is_alive, timeout_s=READY_TIMEOUT_S)
        else:
            while not self._server.started and self._thread.is_alive():
                time.sleep(0.02)

    @property
    def runtime(self) -> Runtime:
        """The app's runtime (for pausing the worker: a test handle, not an HTTP feature)."""
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def generation(self) -> GenerationService:
        """The app's generation service."""
        assert self.runtime.engine is not None
        return self.runtime.engine.generation

    def stop(self) -> None:
        """Shut uvicorn down (lifespan closes the engine) and join the thread."""
        self._server.should_exit = True
        self._thread.join(60)


class ProcessServer(Server):
    """`python -m terradream.cli serve ...` in a subprocess, as an operator runs it."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        """Start on a free port (unless args or env choose one) and wait for /readyz."""
        self.port = int((env or {}).get("TERRADREAM_PORT", 0)) or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        port_args = [] if "TERRADREAM_PORT" in (env or {}) else ["--port", str(self.port)]
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "terradream.cli", "serve", *port_args, *args],
            env={**os.environ, **(env or {})}, stdout=self._log, stderr=self._log)
        try:
            wait_for_http(f"{self.url}/readyz", alive=lambda: self.proc.poll() is None,
                          timeout_s=READY_TIMEOUT_S)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate (SIGTERM: graceful) and wait."""
        stop_process(self.proc)
        if self._log is not subprocess.DEVNULL:
            self._log.close()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-init model saved once per session."""
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def make_settings(tiny_model: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test server: tiny model on the CPU, a fresh embedded cache, a free port; override by keyword."""
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"model": tiny_model, "device": "cpu", "port": free_port(),
                                  "cache": tmp_path / f"cache-{time.monotonic_ns()}", "log_level": "warning"}
        return Settings(**{**values, **overrides})
    return build


@pytest.fixture
def start_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., ThreadServer]]:
    """Start in-process servers (each with a fresh cache unless told otherwise); all stopped after the test."""
    servers: list[ThreadServer] = []

    def start(**overrides: Any) -> ThreadServer:
        server = ThreadServer(make_settings(**overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
