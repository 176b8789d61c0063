"""Shared parts of the reliability benches: a `terradream serve` subprocess on 127.0.0.1, its RSS and metrics,
HTTP clients bound to distinct loopback addresses (distinct "clients" for the fair share), and percentiles.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from terradream.api.testing import free_port, wait_for_http

READY_TIMEOUT_S = 180.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100, nearest rank) of values; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def loopback_address(i: int) -> str:
    """The i-th distinct loopback source address (127.0.1.x ...): each is its own client for the fair share."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def client_from(address: str, connections: int, timeout_s: float) -> httpx.AsyncClient:
    """An async HTTP client whose connections leave from `address` (a loopback address) to the server."""
    transport = httpx.AsyncHTTPTransport(local_address=address, retries=0,
                                         limits=httpx.Limits(max_connections=connections,
                                                             max_keepalive_connections=connections))
    return httpx.AsyncClient(transport=transport, timeout=timeout_s)


async def get_politely(client: httpx.AsyncClient, url: str, attempts: int = 60) -> httpx.Response:
    """GET url as a polite client: on 429/503 wait Retry-After (at most 5 s) and retry; raise on other errors."""
    for _ in range(attempts):
        response = await client.get(url)
        if response.status_code not in (429, 503):
            return response.raise_for_status()
        await asyncio.sleep(min(5.0, float(response.headers.get("retry-after", 1))))
    raise TimeoutError(f"{url} still refused after {attempts} attempts")


def model_dir(given: str | None, workdir: Path) -> Path:
    """The model to serve: `given`, else a tiny random-init model made under workdir (fast on a CPU)."""
    if given:
        return Path(given)
    from terradream.model.testing import make_tiny_model

    return make_tiny_model(workdir / "tiny-model")


class ServerProcess:
    """`terradream serve` in a subprocess on 127.0.0.1 (OMP_NUM_THREADS=1), with its log in a file."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        """Start and wait until /readyz answers 200."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "terradream.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             *args], env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, stdout=self._log, stderr=self._log)
        self.ps = psutil.Process(self.proc.pid)
        self.wait_ready()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll /readyz until 200 (raises if the process dies or time runs out; the log says why)."""
        try:
            wait_for_http(f"{self.url}/readyz", alive=lambda: self.proc.poll() is None, timeout_s=timeout_s)
        except (RuntimeError, TimeoutError) as exc:
            raise type(exc)(f"{exc}; see {self.log_path}") from None

    def processes(self) -> list[psutil.Process]:
        """The server process and its worker processes (serve runs one per core by default)."""
        return [self.ps, *self.ps.children(recursive=True)]

    def _each_process(self, read: Callable[[psutil.Process], float]) -> list[float]:
        """read() of every live process of the server (one that exits meanwhile is left out)."""
        values = []
        for p in self.processes():
            try:
                values.append(read(p))
            except psutil.NoSuchProcess:
                continue
        return values

    def rss_bytes(self) -> int:
        """Resident memory of the server now: its largest process (one server's share; workers are copies)."""
        return int(max(self._each_process(lambda p: p.memory_info().rss), default=0))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server's processes have used so far."""
        return sum(self._each_process(lambda p: sum(p.cpu_times()[:2])))  # user + system

    def metric(self, name: str) -> float:
        """One unlabelled sample from /metrics (0.0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10.0).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        return 0.0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextmanager
def served(args: Sequence[str], model: str | None, env: dict[str, str] | None = None,
           keep: str | None = None) -> Iterator[tuple[ServerProcess, Path]]:
    """A server (extra environment `env`) on a fresh embedded cache in a temporary folder (or `keep`), stopped after."""
    with tempfile.TemporaryDirectory(prefix="terradream-bench-") as tmp:
        workdir = Path(keep) if keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        model_path = model_dir(model, workdir)
        server = ServerProcess(["--model", str(model_path), "--device", "cpu", "--cache", str(workdir / "cache"),
                                *args], workdir / "server.log", env)
        try:
            yield server, workdir
        finally:
            server.stop()


def emit(report: dict[str, object], json_path: str | None) -> None:
    """Print the report as aligned lines and, when asked, write it as JSON."""
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
