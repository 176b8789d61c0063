"""The FastAPI application factory: settings in, routers and middleware wired, the model loaded in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from terradream import __version__
from terradream.api.dependencies import Runtime
from terradream.api.errors import register_exception_handlers
from terradream.api.frontend import FrontendFactory
from terradream.api.hot import HotTiles
from terradream.api.limits import RequestLimits
from terradream.api.middleware import RequestMetrics, RootPath
from terradream.api.routes.admin import AdminFactory
from terradream.api.routes.meta import MetaFactory
from terradream.api.routes.ogc import OGCFactory
from terradream.api.routes.ogcapi import OGCAPIFactory
from terradream.api.routes.tiles import TilesFactory
from terradream.engine.engine import ClusterFactory
from terradream.engine.settings import Settings

GZIP_MIN_BYTES = 1024  # JSON and XML (TileJSON, WMTS capabilities, OGC API documents); never images (already packed)

DESCRIPTION = """Satellite-like imagery generated on demand by a diffusion cascade, served as XYZ tiles,
TileJSON, WMTS and OGC API - Tiles. Tiles are a pure function of (world, model version, z, x, y): cache them
forever under version-pinned URLs (`?v=`, as TileJSON gives them)."""


def create_app(settings: Settings | None = None, cluster: ClusterFactory | None = None) -> FastAPI:
    """A new app; the model, cache and generation service load in the background once it starts (see /readyz).

    `cluster` builds the cluster service when settings name a Dask scheduler (`terradream serve` passes it).
    """
    settings = settings or Settings()
    runtime = Runtime(settings, cluster)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load the engine without blocking start-up (/healthz answers meanwhile); close it on shutdown."""
        loading = asyncio.create_task(runtime.load(), name="terradream-load")
        try:
            yield
        finally:
            await asyncio.wait({loading})  # a half-loaded model cannot be interrupted; let it finish, then close
            await runtime.close()

    app = FastAPI(title="terradream", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # /docs comes from FrontendFactory, with Swagger UI served locally
    app.state.runtime = runtime
    # Added innermost first. Starlette's GZip skips image types, so tile bytes go out exactly as made.
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(HotTiles, runtime=runtime)  # inside CORS: cache hits skip routing, CORS stays the same
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "HEAD", "OPTIONS"],
                       allow_headers=["*"], expose_headers=["ETag", "X-Cache", "Retry-After"], max_age=86400)
    app.add_middleware(RequestMetrics, histogram=runtime.metrics.http_request_seconds)
    app.add_middleware(RootPath, root_path=settings.root_path)
    app.add_middleware(RequestLimits, max_url_bytes=settings.max_url_bytes,  # outermost: before any routing
                       max_header_bytes=settings.max_header_bytes)
    register_exception_handlers(app)
    app.include_router(TilesFactory().router)
    app.include_router(OGCFactory().router)
    app.include_router(OGCAPIFactory().router)
    app.include_router(MetaFactory().router)
    if settings.admin_token is not None:  # without a token the admin routes do not exist (404)
        app.include_router(AdminFactory().router)
    FrontendFactory().register(app)
    return app
