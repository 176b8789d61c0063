"""Per-app state (settings, metrics, response LRU, the loaded engine) and the FastAPI dependencies handing it out.

Dependencies are `async def` so FastAPI calls them inline instead of hopping to a worker thread per request.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate Annotated[..., Query(...)] at runtime.
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from anyio import to_thread
from cachetools import LRUCache
from fastapi import Header, Query, Request

from terradream.cache.codec import TileFormat
from terradream.core.errors import NotReady
from terradream.core.keys import TileKey
from terradream.engine.engine import ClusterFactory, Engine, load_engine
from terradream.engine.metrics import ServerMetrics
from terradream.engine.service import Priority
from terradream.engine.settings import Settings

log = logging.getLogger("terradream.server")  # the HTTP server's log name, as operators filter on it

ResponseKey = tuple[str, str, int, int, int, str, int]  # world, version, z, x, y, format, scale


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


def load_frozen(settings: Settings, metrics: ServerMetrics, cluster: ClusterFactory | None) -> Engine:
    """load_engine, then move everything alive into the GC's permanent generation (gc.freeze).

    The model, torch and the libraries make millions of long-lived objects; left tracked, every full collection walks
    them all and stalls the event loop for 100-400 ms (the hot-tile p99). Frozen, a collection sees only new objects.
    """
    engine = load_engine(settings, metrics, cluster=cluster)
    gc.collect()
    gc.freeze()
    return engine


class Runtime:
    """Everything one app instance owns; lives on app.state.runtime, reached through the dependencies below."""

    def __init__(self, settings: Settings, cluster: ClusterFactory | None = None) -> None:
        """Fresh metrics and response LRU; the engine loads in the background once the app starts."""
        self.settings = settings
        self.cluster = cluster
        self.metrics = ServerMetrics()
        self.responses = ResponseLRU(settings.response_lru_bytes)
        self.hot_hits = 0  # tiles the ASGI fast path (terradream.api.hot) answered from the response LRU
        self.engine: Engine | None = None
        self.load_error: str | None = None

    async def load(self) -> None:
        """Load the engine off the event loop and start its service; a failure is kept for /readyz and logged."""
        try:
            engine = await to_thread.run_sync(partial(load_frozen, self.settings, self.metrics, self.cluster))
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
            log.info("closed", extra={"version": engine.version})


async def get_runtime(request: Request) -> Runtime:
    """Dependency: this app's Runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def public_base_url(request: Request) -> str:
    """The server's base URL as clients see it, no trailing slash: Settings.public_url when set, else the request's
    scheme and host (as the proxy forwarded them) and root path, the proxy prefix."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)  # None: an app without terradream's state
    public_url = runtime.settings.public_url if runtime is not None else None
    return public_url or str(request.base_url).rstrip("/")


async def get_engine(request: Request) -> Engine:
    """Dependency: the loaded Engine, or NotReady (503) while the model loads or after it failed to."""
    runtime = await get_runtime(request)
    if runtime.engine is None:
        reason = f"model failed to load: {runtime.load_error}" if runtime.load_error else "model is loading"
        raise NotReady(reason, runtime.settings.retry_after_s)
    return runtime.engine


@dataclass
class TileParams:
    """What every tile route takes: the tile and its encoding from the path, the version pin, the priority header."""

    world: str
    z: int
    x: int
    y: int
    fmt: TileFormat
    v: str | None = None
    x_terradream_priority: str | None = None

    @property
    def key(self) -> TileKey:
        """The requested tile, not yet validated."""
        return TileKey(self.world, self.z, self.x, self.y)

    @property
    def priority(self) -> Priority:
        """X-Terradream-Priority: 'bulk' queues behind interactive requests; anything else is interactive."""
        value = self.x_terradream_priority
        return Priority.BULK if value is not None and value.strip().lower() == "bulk" else Priority.INTERACTIVE


async def get_tile_params(
        world: str, z: int, x: int, y: int, fmt: TileFormat,
        v: Annotated[str | None, Query(description="Model version pin (from TileJSON).")] = None,
        x_terradream_priority: Annotated[
            str | None, Header(description="`bulk` queues behind interactive requests (seeding).")] = None,
) -> TileParams:
    """Dependency: the TileParams of a request (a coroutine: a class dependency would cost a thread hop each call)."""
    return TileParams(world, z, x, y, fmt, v, x_terradream_priority)
