"""Per-app state (settings, metrics, response LRU, the loaded engine) and the FastAPI dependencies that hand it out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from anyio import to_thread
from cachetools import LRUCache
from fastapi import Request

from terradream.cache import RedisLock, TileCache, open_cache
from terradream.model.cascade import Cascade
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry
from terradream.engine.admission import fair_share_from
from terradream.engine.generation import GenerationService
from terradream.engine.metrics import ServerMetrics
from terradream.engine.settings import Settings
from terradream.cache.store import CacheTileStore

log = logging.getLogger("terradream.server")

ResponseKey = tuple[str, str, int, int, int, str, int]  # world, version, z, x, y, format, scale


class NotReady(Exception):
    """The model is still loading (or failed to load): HTTP 503."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        """Say why and when to come back."""
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class ResponseLRU:
    """Encoded tile responses (any format and scale) by (world, version, z, x, y, format, scale), bounded by bytes."""

    def __init__(self, max_bytes: int) -> None:
        """Hold at most max_bytes of bodies; event-loop use only (no locking)."""
        self.max_bytes = max_bytes
        self._lru: LRUCache[ResponseKey, bytes] = LRUCache(maxsize=max(1, max_bytes), getsizeof=len)

    def get(self, key: ResponseKey) -> bytes | None:
        """A held body, marked recently used."""
        return self._lru.get(key)

    def put(self, key: ResponseKey, body: bytes) -> None:
        """Hold a body unless it alone exceeds the budget."""
        if len(body) <= self.max_bytes:
            self._lru[key] = body

    def purge(self, keep: Callable[[ResponseKey], bool]) -> int:
        """Drop every held body whose key keep() rejects; returns how many were dropped."""
        doomed = [key for key in self._lru if not keep(key)]
        for key in doomed:
            del self._lru[key]
        return len(doomed)


@dataclass
class Engine:
    """What serving tiles needs, loaded once at start-up: model, worlds, cache, cascade, generation service."""

    pipeline: TerraPipeline
    worlds: WorldRegistry
    cache: TileCache
    cascade: Cascade
    generation: GenerationService
    lock: RedisLock | None

    @property
    def version(self) -> str:
        """The model version keying every tile, ETag and cache entry."""
        return self.pipeline.version

    async def close(self) -> None:
        """Stop generation, then close the cache and the lock's connections."""
        await self.generation.close()
        self.cache.close()
        if self.lock is not None:
            self.lock.client.close()


def load_engine(settings: Settings, metrics: ServerMetrics, *, cross_process_lock: bool = True) -> Engine:
    """Load the model and worlds, open the cache stack and wire the cascade (blocking: seconds).

    cross_process_lock=False skips the Redis generation lock (Dask workers: the scheduler already runs a tile once).
    """
    pipeline = TerraPipeline.from_pretrained(settings.model, device=settings.device)
    worlds = WorldRegistry(settings.worlds, allow_arbitrary=settings.allow_arbitrary_worlds,
                           max_procedural=settings.procedural_worlds_max)
    cache = open_cache(settings.cache, settings.redis, settings.lru_bytes)
    store = CacheTileStore(cache, pipeline.version)
    cascade = Cascade(pipeline, worlds, store)
    lock = RedisLock(settings.redis) if settings.redis and cross_process_lock else None
    generation = GenerationService(
        cascade, store, metrics, batch_size=settings.batch_size, queue_max=settings.queue_max,
        retry_after_s=settings.retry_after_s, lock=lock, lock_ttl_s=settings.lock_ttl_s,
        fair_share=fair_share_from(settings.client_cold_rate_per_s, settings.client_cold_burst))
    return Engine(pipeline, worlds, cache, cascade, generation, lock)


class Runtime:
    """Everything one app instance owns; lives on app.state.runtime, reached through the dependencies below."""

    def __init__(self, settings: Settings) -> None:
        """Fresh metrics and response LRU; the engine loads in the background once the app starts."""
        self.settings = settings
        self.metrics = ServerMetrics()
        self.responses = ResponseLRU(settings.response_lru_bytes)
        self.engine: Engine | None = None
        self.load_error: str | None = None

    async def load(self) -> None:
        """Load the engine off the event loop and start its worker; a failure is kept for /readyz and logged."""
        try:
            loader = load_engine
            if self.settings.scheduler:  # cold tiles go to a Dask cluster
                from terradream.cluster.client import load_distributed_engine as loader
            engine = await to_thread.run_sync(loader, self.settings, self.metrics)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the model failed")
            return
        engine.generation.start()
        self.engine = engine
        log.info("ready", extra={"version": engine.version, "device": str(engine.pipeline.device),
                                 "cache": engine.cache.describe()})

    async def close(self) -> None:
        """Release the engine, if it was loaded."""
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await engine.close()


def runtime_of(request: Request) -> Runtime:
    """The Runtime of the app serving request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


# Dependencies are `async def` so FastAPI calls them inline instead of hopping to a worker thread per request.
async def get_runtime(request: Request) -> Runtime:
    """Dependency: this app's Runtime."""
    return runtime_of(request)


async def get_settings(request: Request) -> Settings:
    """Dependency: this app's Settings."""
    return runtime_of(request).settings


async def get_engine(request: Request) -> Engine:
    """Dependency: the loaded Engine, or NotReady (503) while the model loads or after it failed to."""
    runtime = runtime_of(request)
    if runtime.engine is None:
        reason = f"model failed to load: {runtime.load_error}" if runtime.load_error else "model is loading"
        raise NotReady(reason, runtime.settings.retry_after_s)
    return runtime.engine

