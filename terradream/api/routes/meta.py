"""Service routes: the world list, liveness, readiness and Prometheus metrics."""

# No `from __future__ import annotations` here: FastAPI must evaluate Annotated[..., Depends(...)] at runtime.
import asyncio
from typing import Annotated, Any, ClassVar

from anyio import to_thread
from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from terradream.api.dependencies import Runtime, public_base_url
from terradream.api.factory import RouterFactory
from terradream.cache.mbtiles import MBTilesCache
from terradream.engine.engine import Engine


def world_listing(engine: Engine, base: str) -> dict[str, Any]:
    """The /worlds document: configured worlds with their TileJSON URLs, and whether other names are served."""
    return {
        "worlds": [{"name": w.name, "description": w.description, "attribution": w.attribution,
                    "tilejson": f"{base}/tiles/{w.name}/tilejson.json"} for w in engine.worlds.configured()],
        "allow_arbitrary": engine.worlds.allow_arbitrary,
    }


def cache_write_report(engine: Engine) -> dict[str, Any]:
    """Whether cache writes work (tiles are served from memory while they fail), and the embedded cache's disk use."""
    cache = engine.cache
    report: dict[str, Any] = {"cache_writes": "ok" if cache.write_error is None else f"failing: {cache.write_error}"}
    if isinstance(cache.back, MBTilesCache):
        report["cache_disk"] = "full" if cache.back.disk_full else "ok"
        report["cache_max_bytes"] = cache.back.max_bytes
    return report


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """Whether tiles can be served now, and a JSON report of the model and the cache."""
    engine = runtime.engine
    if engine is None:
        model = f"failed: {runtime.load_error}" if runtime.load_error else "loading"
        return False, {"ready": False, "model": model, "cache": "unknown"}
    lock = engine.lock
    pings = [to_thread.run_sync(engine.cache.ping)] + ([to_thread.run_sync(lock.ping)] if lock is not None else [])
    cache_ok, *lock_ok = await asyncio.gather(*pings)  # at once: a hung Redis costs one timeout, not two
    report = {"ready": cache_ok, "model": "loaded", "version": engine.version,
              "device": str(engine.pipeline.device), "cache": "ok" if cache_ok else "unreachable",
              "cache_backend": engine.cache.describe(), "queue_depth": engine.generation.queue_depth}
    report.update(cache_write_report(engine))
    if lock_ok:  # cross-process single-flight; while it fails fast, each process makes its own tiles
        report["generation_lock"] = "ok" if lock_ok[0] else "failing fast"
    return cache_ok, report


class MetaFactory(RouterFactory):
    """Builds the /worlds, /healthz, /readyz and /metrics router."""

    tags: ClassVar[list[str]] = ["service"]

    def register_routes(self) -> None:
        """GET /worlds, /healthz, /readyz, /metrics."""
        runtime_dep, engine_dep = self.runtime_dependency, self.engine_dependency

        @self.router.get("/worlds", summary="Configured worlds")
        def worlds(request: Request, engine: Annotated[Engine, Depends(engine_dep)]) -> dict[str, Any]:
            """Configured worlds (earth first) with TileJSON links; arbitrary names work when allow_arbitrary."""
            return world_listing(engine, public_base_url(request))

        @self.router.get("/healthz", summary="Liveness")
        def healthz() -> dict[str, str]:
            """The process is up and answering."""
            return {"status": "ok"}

        @self.router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready; body says why."}})
        async def readyz(runtime: Annotated[Runtime, Depends(runtime_dep)]) -> JSONResponse:
            """200 when the model is loaded and the cache reachable, else 503 saying which is not."""
            ready, report = await readiness(runtime)
            return JSONResponse(report, status_code=200 if ready else 503)

        @self.router.get("/metrics", response_class=Response, summary="Prometheus metrics")
        def metrics(runtime: Annotated[Runtime, Depends(runtime_dep)]) -> Response:
            """Counters and histograms of this app (private registry) in the Prometheus text format."""
            return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
