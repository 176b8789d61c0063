"""A Dask worker that makes tiles: the model loaded once per process in a WorkerPlugin, behind the usual batcher.

Every tile task is an async function on the worker's event loop that hands its tile to the same GenerationService
(one torch thread, batches of distinct tiles, interactive before bulk) that a single-process server uses; the
blocking torch calls stay in that thread. Parents are in Redis before a task starts (they are its dependencies), the
tile goes to Redis when made, and the task returns a bool. When the scheduler releases a task whose tile still waits
in the batcher (its requests went away), the plugin withdraws it, so nothing is rendered for nobody.

The Dask worker closes when it loses the scheduler; run_worker then starts a new one in the same process, reusing
the loaded model, so the cluster resumes as soon as the scheduler is back.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from distributed import Worker, WorkerPlugin
from prometheus_client import start_http_server

from terradream.cluster.tasks import GPU_RESOURCE, PLUGIN_NAME, is_bulk_priority
from terradream.core.keys import TileKey
from terradream.engine.engine import Engine, load_engine
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import Priority, TileService
from terradream.engine.settings import Settings

log = logging.getLogger("terradream.cluster.worker")

RECONNECT_PAUSE_S = 1.0  # between a lost scheduler and the next registration attempt
RELEASED_STATES = frozenset({"cancelled", "released", "forgotten"})


class VersionMismatch(RuntimeError):
    """The API asked for tiles of another model version than this worker loaded (mixed deployments)."""


class TileWorkerPlugin(WorkerPlugin):
    """Holds this process's engine (model, cascade, batcher, Redis cache) and the tile fetches now in flight."""

    name = PLUGIN_NAME

    def __init__(self, settings: Settings, metrics: ServerMetrics | None = None) -> None:
        """Load lazily from settings (the first setup); metrics count this worker's generated tiles."""
        self.settings = settings
        self.metrics = metrics or ServerMetrics()
        self.engine: Engine | None = None
        self._ready = asyncio.Event()
        self._worker: Worker | None = None
        self._fetches: dict[str, asyncio.Task[bool]] = {}

    async def setup(self, worker: Worker) -> None:
        """Load the model once per process (off the event loop), start the batcher; later workers reuse both."""
        self._worker = worker
        if self.engine is None:
            # The worker reads and writes Redis only: an in-process LRU could answer "cached" for a tile that Redis
            # lost or an operator purged, and then the tile would never reach Redis. No cross-process lock either:
            # Dask already runs each tile once, and a killed worker's lock would stall its rescheduled tiles.
            # The worker renders locally whatever a scheduler it serves may be configured as.
            worker_settings = self.settings.model_copy(update={"lru_bytes": 0, "scheduler": None})
            self.engine = await asyncio.to_thread(load_engine, worker_settings, self.metrics,
                                                  cross_process_lock=False)
            self.engine.generation.start()
            log.info("model loaded", extra={"version": self.engine.version, "device": str(self.engine.pipeline.device)})
        self._ready.set()

    def teardown(self, worker: Worker) -> None:
        """Forget the closing Dask worker; the engine stays loaded for the next one (see close())."""
        if self._worker is worker:
            self._worker = None

    def transition(self, key: str, start: str, finish: str,  # type: ignore[override]  # tile task keys are str
                   **kwargs: object) -> None:
        """A running tile task released by the scheduler: withdraw its tile from the batcher if not yet rendering."""
        if start == "executing" and finish in RELEASED_STATES:
            fetch = self._fetches.get(key)
            if fetch is not None:
                fetch.cancel()

    def _still_wanted(self, task_key: str) -> bool:
        """Whether the scheduler still wants task_key from this worker (it may resume a task it had released)."""
        worker = self._worker
        state = worker.state.tasks.get(task_key) if worker is not None else None
        return state is not None and state.state not in RELEASED_STATES

    def _priority(self, task_key: str) -> Priority:
        """The batcher priority of a task: bulk when its Dask priority came from a bulk request."""
        worker = self._worker
        state = worker.state.tasks.get(task_key) if worker is not None else None
        return Priority.BULK if state is not None and is_bulk_priority(state.priority) else Priority.INTERACTIVE

    async def make(self, task_key: str, tile: TileKey, version: str) -> bool:
        """Make one unit's tiles through the batcher (cache hits make nothing); True when this call generated one."""
        await self._ready.wait()
        assert self.engine is not None
        if version != self.engine.version:
            raise VersionMismatch(f"asked for model version {version}, this worker runs {self.engine.version}")
        generation = self.engine.generation
        while True:
            fetch = asyncio.ensure_future(self._fetch(generation, tile, self._priority(task_key)))
            self._fetches[task_key] = fetch
            try:
                return await fetch
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if (current is not None and current.cancelling()) or not self._still_wanted(task_key):
                    raise
                # released, then wanted again while still running here: queue the tile again
            finally:
                if self._fetches.get(task_key) is fetch:
                    del self._fetches[task_key]

    async def _fetch(self, generation: TileService, unit: TileKey, priority: Priority) -> bool:
        """Batcher fetches of every tile of a unit (any of them may have been evicted); True when one was generated."""
        assert self.engine is not None
        tiles = self.engine.cascade.unit_tiles(unit)
        results = await asyncio.gather(*(generation.fetch(tile, priority) for tile in tiles))
        return not all(result.hit for result in results)

    async def close(self) -> None:
        """Stop the batcher and close the cache (at process exit)."""
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await engine.close()


@dataclass(frozen=True)
class WorkerOptions:
    """How to run the Dask worker: where the scheduler is, slots, memory, listening address, metrics port."""

    scheduler: str
    slots: int = 64
    memory_limit: str = "auto"
    host: str | None = None
    port: int | None = None
    name: str | None = None
    metrics_port: int | None = None


def new_worker(options: WorkerOptions, plugin: TileWorkerPlugin) -> Worker:
    """A Dask worker advertising GPU=<slots> with as many task slots, so up to `slots` tiles meet in the batcher."""
    return Worker(options.scheduler, nthreads=options.slots, resources={GPU_RESOURCE: options.slots},
                  memory_limit=options.memory_limit, host=options.host, port=options.port, name=options.name,
                  plugins=(plugin,), dashboard=False)


async def run_worker(settings: Settings, options: WorkerOptions, stop: asyncio.Event | None = None) -> None:
    """Serve tiles to the cluster until stop is set (SIGTERM/SIGINT set it), re-registering after scheduler loss."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    plugin = TileWorkerPlugin(settings)
    if options.metrics_port is not None:
        start_http_server(options.metrics_port, addr=options.host or "0.0.0.0", registry=plugin.metrics.registry)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            worker = new_worker(options, plugin)
            starting = asyncio.ensure_future(worker.start())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                starting.cancel()
                await worker.close(reason="terradream-worker-stopping")
                break
            if starting.exception() is not None:
                if plugin.engine is None:  # the model did not load: nothing to retry
                    raise starting.exception()  # type: ignore[misc]
                # e.g. its name is still taken by the worker the scheduler has not yet noticed is gone
                log.warning("could not register with the scheduler; retrying",
                            extra={"scheduler": options.scheduler, "error": repr(starting.exception())})
                await worker.close(reason="terradream-worker-retrying")
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            log.info("registered with the scheduler", extra={"scheduler": options.scheduler, "worker": worker.address})
            finished = asyncio.ensure_future(worker.finished())
            await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                await worker.close(reason="terradream-worker-stopping")
                break
            log.warning("lost the scheduler; registering again", extra={"scheduler": options.scheduler})
            await asyncio.sleep(RECONNECT_PAUSE_S)
    finally:
        stopping.cancel()
        await plugin.close()
