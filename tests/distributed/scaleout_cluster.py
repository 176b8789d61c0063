"""Helpers of the scale-out tests: a real cluster's processes on 127.0.0.1 and single-process reference tiles.

(A plain module, not a package: a tests/distributed package would shadow Dask's `distributed`.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from distributed import Client
from server.conftest import (  # tests/server/conftest.py: its helpers
    ProcessServer,
    free_port,
    metric_value,
)

from terradream.cache.codec import encode_png
from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry

# No per-client share and no cold deadline: these tests check that scale-out loses no request and makes each tile
# once, also across a killed worker, which can take longer than the default deadline on a loaded machine (admission
# is tested against the local service).
PROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TERRADREAM_CLIENT_COLD_RATE_PER_S": "0",
               "TERRADREAM_COLD_DEADLINE_S": "0"}
WORKER_NAMES = ("w1", "w2")
START_TIMEOUT_S = 120.0


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a process log, for assertion messages."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


@dataclass
class WorkerProcess:
    """One `terradream worker` subprocess and its metrics port."""

    name: str
    proc: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def metric(self, name: str) -> float:
        """One sample of this worker's Prometheus metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10.0).text
        return metric_value(text, name)


@dataclass
class Cluster:
    """The processes of one test cluster and the handles tests need."""

    workdir: Path
    redis_url: str
    model: Path
    scheduler_port: int = field(default_factory=free_port)
    scheduler: subprocess.Popen[bytes] | None = None
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    apis: list[ProcessServer] = field(default_factory=list)
    scheduler_starts: int = 0

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return f"tcp://127.0.0.1:{self.scheduler_port}"

    def scheduler_log(self, start: int | None = None) -> Path:
        """Log file of one scheduler run (the latest by default)."""
        return self.workdir / f"scheduler-{self.scheduler_starts if start is None else start}.log"

    def start_scheduler(self) -> None:
        """`dask scheduler` on the cluster's fixed port (so clients and workers find it again after a restart)."""
        self.scheduler_starts += 1
        log = open(self.scheduler_log(), "wb")  # noqa: SIM115 - the child writes it
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
             str(self.scheduler_port), "--no-dashboard"],
            env={**os.environ, **PROCESS_ENV}, stdout=log, stderr=log)
        log.close()  # clients and workers retry until it listens

    def kill_scheduler(self) -> None:
        """SIGKILL the scheduler: its state is gone, as after a crash."""
        assert self.scheduler is not None
        self.scheduler.kill()
        self.scheduler.wait()
        self.scheduler = None

    def start_worker(self, name: str) -> WorkerProcess:
        """`terradream worker` on the CPU with the tiny model (returns at once; see wait_for_workers)."""
        metrics_port = free_port()
        log_path = self.workdir / f"worker-{name}-{time.monotonic_ns()}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the child writes it
        proc = subprocess.Popen(
            [sys.executable, "-m", "terradream.cli", "worker", "--scheduler", self.address, "--redis",
             self.redis_url, "--model", str(self.model), "--device", "cpu", "--slots", "16", "--memory-limit", "2GiB",
             "--host", "127.0.0.1", "--name", name, "--metrics-port", str(metrics_port)],
            env={**os.environ, **PROCESS_ENV}, stdout=log, stderr=log)
        log.close()
        self.workers[name] = WorkerProcess(name, proc, metrics_port, log_path)
        return self.workers[name]

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker (mid-generation: no cleanup of any kind)."""
        worker = self.workers.pop(name)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()

    def ensure_workers(self) -> None:
        """Both workers alive and registered (restarting any a test killed)."""
        for name in WORKER_NAMES:
            if name not in self.workers or self.workers[name].proc.poll() is not None:
                self.start_worker(name)
        self.wait_for_workers(len(WORKER_NAMES))

    def wait_for_workers(self, count: int, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the scheduler has `count` workers (raises with the workers' logs otherwise)."""
        try:
            with self.dask_client() as client:
                client.wait_for_workers(count, timeout=timeout_s)
        except Exception as exc:
            logs = "\n".join(f"--- {w.name}\n{log_tail(w.log)}" for w in self.workers.values())
            raise AssertionError(f"workers did not register: {exc!r}\n{logs}") from exc

    def dask_client(self) -> Client:
        """A short-lived synchronous Dask client, to observe the scheduler (never the default client)."""
        return Client(self.address, timeout=30, set_as_default=False)

    def wait_connected(self, value: float, timeout_s: float = 60.0) -> None:
        """Until every API server reports terradream_scheduler_connected == value."""
        for api in self.apis:
            api.wait_metric("terradream_scheduler_connected", value, timeout_s=timeout_s)

    def worker_metric(self, name: str) -> float:
        """A metric summed over the live workers."""
        return sum(w.metric(name) for w in self.workers.values())

    def generated(self) -> float:
        """Tiles generated cluster-wide: the sum of terradream_tiles_generated_total over live workers."""
        return self.worker_metric("terradream_tiles_generated_total")

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Until the scheduler holds no tasks at all (every key released and forgotten)."""
        deadline = time.monotonic() + timeout_s
        with self.dask_client() as client:
            while time.monotonic() < deadline:
                counts = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
                if counts == 0:
                    return
                time.sleep(0.1)
        raise AssertionError("the scheduler still holds tasks")

    def stop(self) -> None:
        """Stop the APIs, then the workers and the scheduler."""
        for api in self.apis:
            api.stop()
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                worker.proc.terminate()
        for worker in self.workers.values():
            try:
                worker.proc.wait(30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        if self.scheduler is not None:
            self.kill_scheduler()


@dataclass
class Reference:
    """Tiles as the single-process cascade makes them: PNG bytes of every tile it produced, and how many it
    generated."""

    pngs: dict[TileKey, bytes]
    generated: int


def reference_tiles(pipeline: TerraPipeline, keys: list[TileKey]) -> Reference:
    """Render keys with a local Cascade from an empty store (parents and roots included in pngs)."""
    store = MemoryTileStore()
    cascade = Cascade(pipeline, WorldRegistry(), store)
    cascade.render(keys)
    return Reference({k: encode_png(np.asarray(a)) for k, a in store.tiles.items()}, cascade.stats.tiles_generated)
