"""Scale-out serving: an API server whose cold tiles run as Dask task graphs on GPU workers; Redis stays the cache.

For a tile missing from Redis, the API walks down the pyramid to the first cached (or root) ancestors with the
cascade's own planning function and submits the units to make (2x2 blocks named by their first tile in the world;
root tiles) as one graph: key `tile-{world}-{version}-{z}-{x}-{y}`, each unit depending on the planned units of its
parents. Keys the scheduler already knows (submitted by any API server) are not specified again, only depended on, so
every key keeps the one shape it was first submitted with (no "different run_spec" collisions, dask/dask#9888) and
concurrent requests share in-flight ancestors: each block is computed once cluster-wide. Workers write tiles to Redis
and return a bool; the API reads the PNG from Redis.

Requests for the same cold tile in one API server share one pending entry; when all of them go away, its futures are
released, and the scheduler forgets (and workers withdraw from their batchers) whatever nobody else wants. Without a
scheduler connection cached tiles are still served and cold ones get SchedulerUnavailable (HTTP 503, Retry-After);
a supervisor task reconnects, so service resumes when the scheduler returns. Without Redis, cold tiles get
CacheUnavailable (503): the workers could make them but not hand them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Coroutine
from typing import Any

from anyio import to_thread
from dask.task_spec import Task, TaskRef
from distributed import Client, Future
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from prometheus_client import Gauge

from terradream.cache.store import CacheTileStore
from terradream.cluster.tasks import GPU_RESOURCE, align_dask_logging, dask_priority, make_tile, task_name
from terradream.core.errors import CacheUnavailable, SchedulerUnavailable
from terradream.core.keys import TileKey
from terradream.engine.admission import Admission
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import Priority, TileService
from terradream.engine.settings import Settings
from terradream.model.cascade import Cascade

log = logging.getLogger("terradream.cluster.client")

PLAN_ATTEMPTS = 3  # plan, submit, wait; again when a depended-on key vanished meanwhile (it is cached by then)
POLL_S = 2.0  # while waiting for a tile, look into Redis this often (covers keys that finished unseen)
RECONNECT_PAUSE_S = 1.0
SCHEDULER_GONE = (OSError, CommClosedError)  # what talking to a vanished scheduler raises


def plan_tile(cascade: Cascade, store: CacheTileStore, key: TileKey) -> dict[TileKey, list[TileKey]]:
    """The units to make for key with their parent tiles: {} when cached, else key's unit and its uncached ancestors
    (blocking)."""
    if store.get_png(key) is not None:
        return {}

    def find_stored(keys: list[TileKey]) -> list[TileKey]:
        return [k for k in keys if store.get_png(k) is not None]

    return cascade.plan([key], find_stored)


def tile_graph(plan: dict[TileKey, list[TileKey]], cascade: Cascade, version: str,
               known: Collection[str]) -> dict[str, Task]:
    """Task specs of the planned units whose keys the scheduler does not know; planned parent units are dependencies."""
    names = {unit: task_name(unit, version) for unit in plan}
    graph = {}
    for unit, parents in plan.items():
        if names[unit] in known:
            continue
        deps = dict.fromkeys(u for u in map(cascade.unit_of, parents) if u in plan)
        graph[names[unit]] = Task(names[unit], make_tile, unit.world, version, unit.z, unit.x, unit.y,
                                  *(TaskRef(names[u]) for u in deps))
    return graph


class ClusterGeneration(TileService):
    """The generation service of an API server in a cluster: same fetch() contract, tiles made by Dask workers."""

    def __init__(self, scheduler: str, cascade: Cascade, store: CacheTileStore, metrics: ServerMetrics,
                 admission: Admission, *, connect_timeout_s: float = 5.0, poll_s: float = POLL_S) -> None:
        """Talk to the scheduler at `scheduler` (tcp://HOST:8786); read and plan tiles of `store` (Redis)."""
        super().__init__(store, metrics, admission)
        self.scheduler = scheduler
        self.cascade = cascade
        self.connect_timeout_s = connect_timeout_s
        self.poll_s = poll_s
        self._client: Client | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = Gauge("terradream_scheduler_connected", "1 while connected to the Dask scheduler.",
                                registry=metrics.registry)
        metrics.watch_queue_depth(lambda: self.queue_depth)

    # ---- lifecycle ----
    def start(self) -> None:
        """Start the task that connects (and reconnects) to the scheduler; call from the serving event loop."""
        self._supervisor = asyncio.create_task(self._keep_connected(), name="terradream-dask-client")

    async def close(self) -> None:
        """Withdraw every pending tile and disconnect."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor})
        await asyncio.gather(*self._cancel_pending(), return_exceptions=True)  # they release their futures
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()

    @property
    def connected(self) -> bool:
        """Whether the scheduler connection is up now."""
        return self._client is not None and self._client.status == "running"

    @property
    def queue_depth(self) -> int:
        """Cold tiles this API server is waiting for."""
        return len(self._flights)

    async def _keep_connected(self) -> None:
        """Keep one running Client: a new one whenever the last gave up reconnecting (or never connected)."""
        while True:
            if self._client is None or self._client.status in ("closing", "closed"):
                old, self._client = self._client, await self._connect()
                if old is not None:
                    with contextlib.suppress(Exception):
                        await old.close()
            self._connected.set(1 if self.connected else 0)
            await asyncio.sleep(RECONNECT_PAUSE_S)

    async def _connect(self) -> Client | None:
        """A connected asynchronous Client (never the process-wide default), or None while the scheduler is away."""
        client = Client(self.scheduler, asynchronous=True, timeout=self.connect_timeout_s, set_as_default=False)
        try:
            await client
        except Exception as exc:  # noqa: BLE001 - refused, timed out, or another Dask version: retried
            log.debug("scheduler unreachable", extra={"scheduler": self.scheduler, "error": repr(exc)})
            with contextlib.suppress(Exception):
                await client.close()
            return None
        log.info("connected to the scheduler", extra={"scheduler": self.scheduler})
        return client

    def _running_client(self) -> Client:
        """The connected client, or SchedulerUnavailable."""
        client = self._client
        if client is None or client.status != "running":
            raise SchedulerUnavailable(f"the tile cluster's scheduler ({self.scheduler}) is unreachable",
                                       self.retry_after_s)
        return client

    # ---- requests (fetch() comes from TileService) ----
    def _start(self, key: TileKey, priority: Priority, client: str | None) -> Coroutine[Any, Any, bytes]:
        """Make a new cold tile on the cluster, unless the scheduler is away (SchedulerUnavailable) or admission
        refuses it (RateLimited, Overloaded)."""
        self._running_client()
        self.admission.admit(len(self._flights), client)
        return self._generate(key, priority)

    async def _generate(self, key: TileKey, priority: Priority) -> bytes:
        """Plan, submit and await the tile's graph until its PNG is in Redis (again when a dependency vanished)."""
        for _ in range(PLAN_ATTEMPTS):
            client = self._running_client()
            if not await to_thread.run_sync(self.store.cache.ping):  # workers could make it but not hand it over
                raise CacheUnavailable("the tile cache (Redis) is unreachable", self.retry_after_s)
            plan = await to_thread.run_sync(plan_tile, self.cascade, self.store, key)
            settled = True
            if plan:
                try:
                    settled = await self._run_plan(client, plan, key, priority)
                except SCHEDULER_GONE as exc:
                    raise SchedulerUnavailable(f"lost the tile cluster's scheduler ({exc!r})",
                                               self.retry_after_s) from exc
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is None or task.cancelling():
                        raise  # this tile's own cancellation: every requester went away
                    settled = False  # the Dask client cancelled the wait under us (a reconnect): plan again
            png = await to_thread.run_sync(self.store.get_png, key)
            if png is not None:
                return png
            if settled:
                break
        raise CacheUnavailable(f"tile {key} was made but cannot be read from the tile cache (Redis)",
                               self.retry_after_s)

    async def _run_plan(self, client: Client, plan: dict[TileKey, list[TileKey]], key: TileKey,
                        priority: Priority) -> bool:
        """Submit the units the scheduler does not know yet and wait for key's; False when a dependency vanished."""
        version = self.store.version
        assert client.scheduler is not None  # a running client has its scheduler RPC
        states = await client.scheduler.get_task_status(keys=[task_name(u, version) for u in plan])
        known = {name for name, state in states.items() if state is not None}
        graph = tile_graph(plan, self.cascade, version, known)
        future: Future = client.get(graph, task_name(self.cascade.unit_of(key), version), sync=False,
                                    priority=dask_priority(priority is Priority.BULK),
                                    resources={GPU_RESOURCE: 1})
        try:
            await self._until_done(client, future, key)
        except FutureCancelledError:  # a depended-on key finished and was forgotten meanwhile, or the link broke
            if client.status != "running":
                raise SchedulerUnavailable(f"lost the tile cluster's scheduler ({self.scheduler})",
                                           self.retry_after_s) from None
            return False
        else:
            return True
        finally:
            future.release()

    async def _until_done(self, client: Client, future: Future, key: TileKey) -> None:
        """Wait for the tile's task (its errors propagate), returning early once the tile shows up in Redis."""
        waiter = asyncio.ensure_future(self._result(future))
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.poll_s)
                if done:
                    waiter.result()
                    return
                if client.status != "running":
                    raise SchedulerUnavailable(f"lost the tile cluster's scheduler ({self.scheduler})",
                                               self.retry_after_s)
                if await to_thread.run_sync(self.store.get_png, key) is not None:
                    return
        finally:
            waiter.cancel()

    @staticmethod
    async def _result(future: Future) -> object:
        """The task's small result (a bool), raising its error."""
        return await future


def cluster_service(settings: Settings, cascade: Cascade, store: CacheTileStore, metrics: ServerMetrics,
                    admission: Admission) -> ClusterGeneration:
    """The engine's ClusterFactory: the cluster service of an API server for settings.scheduler."""
    if not settings.scheduler or not settings.redis:
        raise ValueError("a cluster API server needs both a scheduler address and a Redis URL")
    align_dask_logging(settings.log_level)
    return ClusterGeneration(settings.scheduler, cascade, store, metrics, admission)
