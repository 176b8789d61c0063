"""The engine: what serving tiles needs, loaded once (model, worlds, cache stack, cascade, generation service).

One factory, load_engine, builds it for every process: the API server (local generation, or a cluster service when
settings name a scheduler), the Dask worker and the in-process seeder. The cluster service lives in terradream.cluster,
above this package, so its constructor is handed in (`cluster=`) by whoever wires the process (the CLI).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from terradream.cache import FileLock, RedisLock, TieredCache, open_cache
from terradream.cache.budget import default_max_bytes
from terradream.cache.locks import ReentrantLock
from terradream.cache.store import CacheTileStore
from terradream.engine.admission import Admission, fair_share_from
from terradream.engine.generation import GenerationService, LockClaims
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import TileService
from terradream.engine.settings import Settings
from terradream.model.cascade import Cascade
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry

# Builds the cluster service of an API server: (settings, cascade, store, metrics, admission) -> TileService.
ClusterFactory = Callable[[Settings, Cascade, CacheTileStore, ServerMetrics, Admission], TileService]


@dataclass
class Engine:
    """What serving tiles needs, loaded once at start-up: model, worlds, cache, cascade, generation service."""

    pipeline: TerraPipeline
    worlds: WorldRegistry
    cache: TieredCache
    cascade: Cascade
    generation: TileService
    lock: ReentrantLock | None

    @property
    def version(self) -> str:
        """The model version keying every tile, ETag and cache entry."""
        return self.pipeline.version

    async def close(self) -> None:
        """Stop generation, then close the cache and the lock's connections."""
        await self.generation.close()
        self.cache.close()
        if self.lock is not None:
            self.lock.close()


def cache_budget_bytes(settings: Settings) -> int | None:
    """The embedded cache's disk budget: as set, the default share of free disk when unset, None for no limit."""
    if settings.redis:
        return None  # Redis bounds itself (maxmemory)
    if settings.cache_max_bytes is None:
        return default_max_bytes(settings.cache)
    return settings.cache_max_bytes or None


def load_engine(settings: Settings, metrics: ServerMetrics, *, cluster: ClusterFactory | None = None,
                cross_process_lock: bool = True) -> Engine:
    """Load the model and worlds, open the cache stack and wire the cascade and its service (blocking: seconds).

    With settings.scheduler, cold tiles go to the cluster service `cluster` builds, and the model is loaded on the
    CPU only for its version and window geometry (it never runs here). cross_process_lock=False skips the generation
    lock (Dask workers: the scheduler already runs a tile once): Redis's, or a file lock when several server workers
    share the embedded cache.
    """
    if settings.scheduler and cluster is None:
        raise ValueError("settings name a Dask scheduler, but no cluster service was given to serve it")
    in_cluster = bool(settings.scheduler)
    pipeline = TerraPipeline.from_pretrained(settings.model, device="cpu" if in_cluster else settings.device)
    worlds = WorldRegistry(settings.worlds, allow_arbitrary=settings.allow_arbitrary_worlds,
                           max_procedural=settings.procedural_worlds_max)
    cache = open_cache(settings.cache, settings.redis, settings.lru_bytes, max_bytes=cache_budget_bytes(settings))
    metrics.watch_cache(cache)
    if settings.warm_atlases and not in_cluster:  # the data is read under locks: early windows wait, never repeat
        threading.Thread(target=pipeline.warm, name="warm-atlases", daemon=True).start()
    store = CacheTileStore(cache, pipeline.version)
    cascade = Cascade(pipeline, worlds, store)
    admission = Admission(metrics, settings.queue_max, settings.retry_after_s,
                          fair_share_from(settings.client_cold_rate_per_s, settings.client_cold_burst),
                          cold_deadline_s=settings.cold_deadline_s)
    lock: ReentrantLock | None = None
    if cross_process_lock and not in_cluster and settings.redis:
        lock = ReentrantLock(RedisLock(settings.redis))
    elif cross_process_lock and not in_cluster and (settings.workers or 1) > 1:  # sibling workers share the cache
        lock = ReentrantLock(FileLock(settings.cache / "locks"))
    generation: TileService
    if cluster is not None and in_cluster:
        generation = cluster(settings, cascade, store, metrics, admission)
    else:
        service = GenerationService(cascade, store, metrics, admission, batch_size=settings.batch_size, lock=lock,
                                    lock_ttl_s=settings.lock_ttl_s)
        if lock is not None:  # parents too: sibling processes never make the same block twice
            cascade.claims = LockClaims(lock, service.lock_name, settings.lock_ttl_s)
        generation = service
    return Engine(pipeline, worlds, cache, cascade, generation, lock)
