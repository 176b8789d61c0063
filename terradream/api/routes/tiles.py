"""XYZ tile routes: /tiles/{world}/{z}/{x}/{y}[@2x].{png|jpg|webp} with ETag, Cache-Control, X-Cache and priorities,
and the same tiles as OGC API - Tiles map tiles in WebMercatorQuad (/collections/{world}/map/tiles/...)."""

# No `from __future__ import annotations` here: FastAPI must evaluate Annotated[..., Depends(...)] at runtime.
import asyncio
import hashlib
from collections.abc import Awaitable
from typing import Annotated, ClassVar, TypeVar

from anyio import to_thread
from fastapi import Depends, Header, Query, Request, Response

from terradream.api.dependencies import Runtime, TileParams, get_tile_params
from terradream.api.factory import RouterFactory
from terradream.cache.codec import TileFormat, encode, stitch_children, transcode_png, upscale_2x
from terradream.core.keys import TileKey
from terradream.engine.engine import Engine
from terradream.engine.service import Priority, TileService
from terradream.engine.settings import Settings

T = TypeVar("T")
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"; nobody receives it
TILE_PATH = "/tiles/{world}/{z}/{x}/{y}.{fmt}"
TILE_2X_PATH = "/tiles/{world}/{z}/{x}/{y}@2x.{fmt}"
OGC_TILE_PATH = "/collections/{world}/map/tiles/WebMercatorQuad/{z}/{row}/{col}"  # row: y, col: x (same tile)

TILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {f.media_type: {} for f in TileFormat}, "description": "The tile image."},
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
    404: {"description": "Outside the tile matrix, or unknown world."},
    429: {"description": "This client started too many new generations (fair share); see Retry-After."},
    503: {"description": "Generation queue full or model loading; see Retry-After."},
}


class ClientDisconnected(Exception):
    """The client closed the connection before its tile was ready."""


def tile_etag(key: TileKey, version: str, fmt: TileFormat, scale: int) -> str:
    """Strong ETag of a tile response: tiles are a pure function of (world, version, z, x, y), format and scale."""
    identity = f"{key.world}/{version}/{key.z}/{key.x}/{key.y}/{fmt.value}/{scale}"
    return '"' + hashlib.blake2b(identity.encode(), digest_size=16).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header matches etag (RFC 9110: weak comparison, lists and '*')."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


def tile_cache_control(settings: Settings, requested_version: str | None, version: str) -> str:
    """Cache-Control of a tile: year-long immutable when the URL pins the current model version (?v=)."""
    if settings.immutable_when_versioned and requested_version == version:
        return IMMUTABLE_CACHE_CONTROL
    return settings.cache_control


async def until_disconnected(request: Request) -> None:
    """Return once the client has closed the connection (reads ASGI messages until http.disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await work, cancelling it (and raising ClientDisconnected) if the client goes away first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        raise
    watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})  # let it withdraw as a requester before we answer
    raise ClientDisconnected()


async def render_tile(generation: TileService, key: TileKey, fmt: TileFormat, scale: int, maxzoom: int,
                      priority: Priority, client: str | None = None) -> tuple[bytes, bool]:
    """A tile's response body and whether everything it took was already cached.

    @2x tiles are stitched from the four children one zoom finer, or upscaled when that zoom exceeds maxzoom.
    `client` (the peer address) is charged for every new generation it starts (fair share).
    """
    if scale == 1:
        result = await generation.fetch(key, priority, client)
        if fmt is TileFormat.png:
            return result.png, result.hit
        return await to_thread.run_sync(transcode_png, result.png, fmt), result.hit
    if key.z + 1 > maxzoom:
        result = await generation.fetch(key, priority, client)
        return await to_thread.run_sync(lambda: encode(upscale_2x(result.png), fmt)), result.hit
    tasks = [asyncio.ensure_future(generation.fetch(child, priority, client)) for child in key.children()]
    try:
        children = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    body = await to_thread.run_sync(lambda: encode(stitch_children([c.png for c in children]), fmt))
    return body, all(c.hit for c in children)


class TilesFactory(RouterFactory):
    """Builds the XYZ tile router (TiTiler style: dependencies are fields, routes registered on construction)."""

    tags: ClassVar[list[str]] = ["tiles"]

    def register_routes(self) -> None:
        """GET (and HEAD) /tiles/{world}/{z}/{x}/{y}@2x.{fmt} and /tiles/{world}/{z}/{x}/{y}.{fmt}."""
        runtime_dep, engine_dep = self.runtime_dependency, self.engine_dependency

        @self.router.get(TILE_2X_PATH, response_class=Response, responses=TILE_RESPONSES,
                         summary="A 512 px tile (HiDPI)")
        async def tile_2x(request: Request, params: Annotated[TileParams, Depends(get_tile_params)],
                          runtime: Annotated[Runtime, Depends(runtime_dep)],
                          engine: Annotated[Engine, Depends(engine_dep)]) -> Response:
            """A 512 px tile built from the four tiles one zoom finer (upscaled past maxzoom)."""
            return await self.serve(request, runtime, engine, params, 2)

        @self.router.get(TILE_PATH, response_class=Response, responses=TILE_RESPONSES, summary="A 256 px tile")
        async def tile(request: Request, params: Annotated[TileParams, Depends(get_tile_params)],
                       runtime: Annotated[Runtime, Depends(runtime_dep)],
                       engine: Annotated[Engine, Depends(engine_dep)]) -> Response:
            """A 256 px tile; cold tiles are generated (X-Terradream-Priority: bulk queues behind interactive)."""
            return await self.serve(request, runtime, engine, params, 1)

        @self.router.get(OGC_TILE_PATH, response_class=Response, responses=TILE_RESPONSES,
                         summary="A 256 px tile (OGC API - Tiles)")
        async def ogc_tile(request: Request, world: str, z: int, row: int, col: int,
                           runtime: Annotated[Runtime, Depends(runtime_dep)],
                           engine: Annotated[Engine, Depends(engine_dep)],
                           f: Annotated[TileFormat, Query(description="Tile encoding.")] = TileFormat.png,
                           v: Annotated[str | None, Query(description="Model version pin (from the tileset).")] = None,
                           x_terradream_priority: Annotated[str | None, Header()] = None) -> Response:
            """The XYZ tile z/col/row (WebMercatorQuad's tileRow is XYZ's y): same bytes, ETag and caching."""
            params = TileParams(world, z, col, row, f, v, x_terradream_priority)
            return await self.serve(request, runtime, engine, params, 1)

        # HEAD: GET's status and headers without the body (the HTTP server drops it); one documented operation per path
        for path, endpoint in ((TILE_2X_PATH, tile_2x), (TILE_PATH, tile), (OGC_TILE_PATH, ogc_tile)):
            self.router.add_api_route(path, endpoint, methods=["HEAD"], response_class=Response,
                                      include_in_schema=False)

    async def serve(self, request: Request, runtime: Runtime, engine: Engine, params: TileParams,
                    scale: int) -> Response:
        """Validate, answer 304 or from the response LRU, else render; every answer carries ETag and Cache-Control."""
        settings, fmt, v = runtime.settings, params.fmt, params.v
        key = engine.cascade.tile_key(*params.key, maxzoom=settings.maxzoom)
        etag = tile_etag(key, engine.version, fmt, scale)
        headers = {"ETag": etag, "Cache-Control": tile_cache_control(settings, v, engine.version)}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        response_key = (key.world, engine.version, key.z, key.x, key.y, fmt.value, scale)
        body = runtime.responses.get(response_key)
        hit = body is not None
        if body is None:
            try:
                client = request.client.host if request.client is not None else None
                rendered, hit = await unless_disconnected(
                    request, render_tile(engine.generation, key, fmt, scale, settings.maxzoom, params.priority, client))
            except ClientDisconnected:
                return Response(status_code=CLIENT_CLOSED_REQUEST)
            runtime.responses.put(response_key, rendered)
            body = rendered
        runtime.metrics.tile_requests.labels(cache="hit" if hit else "miss").inc()
        headers["X-Cache"] = "hit" if hit else "miss"
        return Response(body, media_type=fmt.media_type, headers=headers)
