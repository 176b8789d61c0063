"""OGC API - Tiles (Core, TileSet, TileSets List, TileMatrixSet): every world a collection of map tiles in
WebMercatorQuad (the tile matrix set from morecantile), the tiles themselves served by the XYZ route's code.

The landing page shares GET / with the viewer: clients asking for JSON (Accept or ?f=json) get the landing page.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate Annotated[..., Depends(...)] at runtime.
from functools import cache
from typing import Annotated, Any, ClassVar

from fastapi import Depends, HTTPException, Request

from terradream.api.dependencies import Runtime, public_base_url
from terradream.api.factory import RouterFactory
from terradream.cache.codec import TileFormat
from terradream.core.tiles import WEB_MERCATOR_MAX_LAT_DEG
from terradream.engine.engine import Engine
from terradream.model.worlds import World

TMS_ID = "WebMercatorQuad"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
JSON = "application/json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/jpeg",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]


def link(href: str, rel: str, type_: str = JSON, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """One OGC API link object."""
    return {"href": href, "rel": rel, "type": type_, **({"title": title} if title else {}), **extra}


def wants_json(request: Request) -> bool:
    """Whether a request to GET / asks for the landing page: ?f=json, or JSON accepted and HTML not."""
    if request.query_params.get("f") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def tms_1_0_members(tms: dict[str, Any]) -> dict[str, Any]:
    """The TMS 1.0 JSON members (17-083r2) of a TMS 2.0 document, which readers of 1.0 need (GDAL before 3.7):
    served alongside the 2.0 members, so readers of either encoding find theirs."""
    return {
        "type": "TileMatrixSetType",
        "identifier": tms["id"],
        "supportedCRS": tms["crs"],
        "tileMatrix": [{"type": "TileMatrixType", "identifier": m["id"], "scaleDenominator": m["scaleDenominator"],
                        "topLeftCorner": m["pointOfOrigin"], "tileWidth": m["tileWidth"],
                        "tileHeight": m["tileHeight"], "matrixWidth": m["matrixWidth"],
                        "matrixHeight": m["matrixHeight"]} for m in tms["tileMatrices"]],
    }


@cache
def web_mercator_quad() -> dict[str, Any]:
    """The WebMercatorQuad tile matrix set from morecantile: OGC TMS 2.0 JSON plus the 1.0 members."""
    import morecantile  # here, not at module level: pyproj's import costs every CLI start a fifth of a second

    tms: dict[str, Any] = morecantile.tms.get(TMS_ID).model_dump(mode="json", exclude_none=True)
    return {**tms, **tms_1_0_members(tms)}


def landing_page(base: str) -> dict[str, Any]:
    """The OGC API landing page: links to the API definition, conformance, collections and tile matrix sets."""
    return {
        "title": "terradream",
        "description": "Satellite-like imagery generated on demand by a diffusion cascade (OGC API - Tiles).",
        "links": [
            link(f"{base}/?f=json", "self", title="This document"),
            link(f"{base}/openapi.json", "service-desc", "application/vnd.oai.openapi+json;version=3.0",
                 "The API definition"),
            link(f"{base}/docs", "service-doc", "text/html", "The API documentation"),
            link(f"{base}/conformance", "conformance", title="Conformance classes"),
            link(f"{base}/conformance", OGC_REL + "conformance", title="Conformance classes"),
            link(f"{base}/collections", "data", title="Worlds as collections"),
            link(f"{base}/collections", OGC_REL + "data", title="Worlds as collections"),
            link(f"{base}/tileMatrixSets", OGC_REL + "tiling-schemes", title="Tile matrix sets"),
        ],
    }


def collection(world: World, base: str) -> dict[str, Any]:
    """A world as an OGC API collection with map tilesets."""
    url = f"{base}/collections/{world.name}"
    return {
        "id": world.name,
        "title": world.name,
        "description": world.description,
        "attribution": world.attribution,
        "dataType": "map",
        "extent": {"spatial": {"bbox": [[-180.0, -WEB_MERCATOR_MAX_LAT_DEG, 180.0, WEB_MERCATOR_MAX_LAT_DEG]],
                               "crs": CRS84}},
        "links": [
            link(url, "self", title=world.name),
            link(f"{url}/map/tiles", OGC_REL + "tilesets-map", title="Map tilesets"),
            link(f"{base}/tiles/{world.name}/tilejson.json", "describedby", title="TileJSON"),
        ],
    }


def tile_template(base: str, world: str, version: str, fmt: TileFormat) -> str:
    """The URL template of a world's tiles in WebMercatorQuad, pinned to the model version like TileJSON's."""
    return (f"{base}/collections/{world}/map/tiles/{TMS_ID}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
            f"?f={fmt.value}&v={version}")


def tileset_summary(world: str, base: str) -> dict[str, Any]:
    """The entry of the world's WebMercatorQuad tileset in its tilesets list."""
    tms = web_mercator_quad()
    return {
        "title": f"{world} in {TMS_ID}",
        "dataType": "map",
        "crs": tms["crs"],
        "tileMatrixSetURI": tms["uri"],
        "links": [
            link(f"{base}/collections/{world}/map/tiles/{TMS_ID}", "self", title=f"{world} tileset"),
            link(f"{base}/tileMatrixSets/{TMS_ID}", OGC_REL + "tiling-scheme", title=TMS_ID),
        ],
    }


def tileset(world: str, base: str, version: str, maxzoom: int) -> dict[str, Any]:
    """The world's WebMercatorQuad tileset: limits 0..maxzoom and an `item` template per tile format."""
    summary = tileset_summary(world, base)
    items = [link(tile_template(base, world, version, fmt), "item", fmt.media_type, f"{fmt.value} tiles",
                  templated=True) for fmt in TileFormat]
    limits = [{"tileMatrix": str(z), "minTileRow": 0, "maxTileRow": 2**z - 1, "minTileCol": 0,
               "maxTileCol": 2**z - 1} for z in range(maxzoom + 1)]
    return {**summary, "tileMatrixSetLimits": limits, "links": [*summary["links"], *items]}


class OGCAPIFactory(RouterFactory):
    """Builds the OGC API - Tiles router (the landing page is GET / of FrontendFactory, the tiles a route of
    TilesFactory)."""

    tags: ClassVar[list[str]] = ["OGC API - Tiles"]

    def register_routes(self) -> None:
        """GET /conformance, /tileMatrixSets[/{id}], /collections[/{world}[/map/tiles[/WebMercatorQuad]]]."""
        runtime_dep, engine_dep = self.runtime_dependency, self.engine_dependency

        @self.router.get("/conformance", summary="Conformance classes")
        def conformance() -> dict[str, Any]:
            """The OGC API conformance classes this server implements."""
            return {"conformsTo": CONFORMANCE}

        @self.router.get("/tileMatrixSets", summary="Tile matrix sets")
        def tile_matrix_sets(request: Request) -> dict[str, Any]:
            """The tile matrix sets tiles are served in (WebMercatorQuad)."""
            base, tms = public_base_url(request), web_mercator_quad()
            return {"tileMatrixSets": [{"id": TMS_ID, "title": tms.get("title", TMS_ID), "uri": tms["uri"],
                                        "links": [link(f"{base}/tileMatrixSets/{TMS_ID}", "self",
                                                       title=TMS_ID)]}]}

        @self.router.get("/tileMatrixSets/{tile_matrix_set}", summary="A tile matrix set")
        def tile_matrix_set(tile_matrix_set: str) -> dict[str, Any]:
            """The OGC TMS 2.0 definition of WebMercatorQuad."""
            if tile_matrix_set != TMS_ID:
                raise HTTPException(404, f"unknown tile matrix set {tile_matrix_set!r}; this server has {TMS_ID}")
            return web_mercator_quad()

        @self.router.get("/collections", summary="Worlds as collections")
        def collections(request: Request, engine: Annotated[Engine, Depends(engine_dep)]) -> dict[str, Any]:
            """Every configured world as a collection of map tiles."""
            base = public_base_url(request)
            return {"links": [link(f"{base}/collections", "self", title="Collections")],
                    "collections": [collection(w, base) for w in engine.worlds.configured()]}

        @self.router.get("/collections/{world}", summary="A world as a collection")
        def world_collection(request: Request, world: str,
                             engine: Annotated[Engine, Depends(engine_dep)]) -> dict[str, Any]:
            """One world (configured or, when allowed, any well-formed name) as a collection."""
            return collection(engine.worlds.get(world), public_base_url(request))

        @self.router.get("/collections/{world}/map/tiles", summary="A world's map tilesets")
        def world_tilesets(request: Request, world: str,
                           engine: Annotated[Engine, Depends(engine_dep)]) -> dict[str, Any]:
            """The map tilesets of a world (one: WebMercatorQuad)."""
            base = public_base_url(request)
            name = engine.worlds.get(world).name
            return {"links": [link(f"{base}/collections/{name}/map/tiles", "self", title="Tilesets")],
                    "tilesets": [tileset_summary(name, base)]}

        @self.router.get("/collections/{world}/map/tiles/{tile_matrix_set}", summary="A world's map tileset")
        def world_tileset(request: Request, world: str, tile_matrix_set: str,
                          runtime: Annotated[Runtime, Depends(runtime_dep)],
                          engine: Annotated[Engine, Depends(engine_dep)]) -> dict[str, Any]:
            """The tileset: tile URL templates (png, jpg, webp) and the zooms served."""
            if tile_matrix_set != TMS_ID:
                raise HTTPException(404, f"unknown tile matrix set {tile_matrix_set!r}; this server has {TMS_ID}")
            name = engine.worlds.get(world).name
            return tileset(name, public_base_url(request), engine.version, runtime.settings.maxzoom)
