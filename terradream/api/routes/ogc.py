"""Map-client descriptions: TileJSON 3.0.0 per world and WMTS 1.0.0 capabilities (GoogleMapsCompatible).

Every URL in them starts with the public base URL (proxy prefix included), and every WMTS layer has exactly one
format: clients such as OpenLayers treat several ResourceURLs of a layer as mirrors and mix their formats.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate Annotated[..., Depends(...)] at runtime.
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Query, Request, Response

from terradream.api.dependencies import Runtime, public_base_url
from terradream.api.factory import RouterFactory
from terradream.cache.codec import TileFormat
from terradream.core.tiles import TILE_SIZE_PX, WEB_MERCATOR_HALF_WORLD_M, WEB_MERCATOR_MAX_LAT_DEG
from terradream.engine.engine import Engine
from terradream.model.worlds import World

GOOGLE_SCALE_DENOMINATOR_Z0 = 559082264.0287178  # 156543.034 m/px at z0 / 0.28 mm standardized rendering pixel

WMTS_NS = "http://www.opengis.net/wmts/1.0"
OWS_NS = "http://www.opengis.net/ows/1.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", WMTS_NS)
ET.register_namespace("ows", OWS_NS)
ET.register_namespace("xlink", XLINK_NS)


TILEJSON_RELEASE = "1.0.0"  # the semver core of TileJSON's `version`; the model version is its build metadata


def tilejson_version(model_version: str) -> str:
    """A semver for TileJSON (clients drop other values): 1.0.0+<model version>, build-metadata safe."""
    return f"{TILEJSON_RELEASE}+{re.sub(r'[^0-9A-Za-z-]+', '-', model_version)}"


def wmts_layer_id(world: str, fmt: TileFormat) -> str:
    """The WMTS layer of a world in one format: the world's name for PNG, `<world>_<format>` for the others
    (world names never contain `_`)."""
    return world if fmt is TileFormat.png else f"{world}_{fmt.value}"


def tile_url_template(base: str, world: str, version: str, fmt: TileFormat = TileFormat.png, scale: int = 1,
                      z: str = "{z}", x: str = "{x}", y: str = "{y}") -> str:
    """An absolute tile URL template pinned to the model version (so caches may keep it forever)."""
    suffix = "@2x" if scale == 2 else ""
    return f"{base}/tiles/{world}/{z}/{x}/{y}{suffix}.{fmt.value}?v={version}"


def tilejson(world: World, base: str, version: str, maxzoom: int, fmt: TileFormat, scale: int) -> dict[str, Any]:
    """The TileJSON 3.0.0 document of one world."""
    return {
        "tilejson": "3.0.0",
        "name": world.name,
        "description": world.description,
        "version": tilejson_version(version),
        "attribution": html.escape(world.attribution),
        "scheme": "xyz",
        "tiles": [tile_url_template(base, world.name, version, fmt, scale)],
        "tileSize": TILE_SIZE_PX * scale,  # without it MapLibre assumes 512 and fetches one zoom too coarse
        "minzoom": 0,
        "maxzoom": maxzoom,
        "bounds": [-180.0, -WEB_MERCATOR_MAX_LAT_DEG, 180.0, WEB_MERCATOR_MAX_LAT_DEG],
        "center": [0.0, 0.0, 2],
    }


def _sub(parent: ET.Element, tag: str, text: str | None = None, ns: str = WMTS_NS, **attrs: str) -> ET.Element:
    """Append a namespaced child element with optional text and attributes (ElementTree escapes both)."""
    element = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _operation(parent: ET.Element, name: str, href: str) -> None:
    """An ows:Operation reachable by RESTful HTTP GET at href."""
    get = _sub(_sub(_sub(_sub(parent, "Operation", ns=OWS_NS, name=name), "DCP", ns=OWS_NS), "HTTP", ns=OWS_NS),
               "Get", ns=OWS_NS, **{f"{{{XLINK_NS}}}href": href})
    allowed = _sub(_sub(get, "Constraint", ns=OWS_NS, name="GetEncoding"), "AllowedValues", ns=OWS_NS)
    _sub(allowed, "Value", "RESTful", ns=OWS_NS)


def _layer(contents: ET.Element, world: World, fmt: TileFormat, base: str, version: str) -> None:
    """The WMTS layer of a world in one format: one Format, one RESTful ResourceURL."""
    layer = _sub(contents, "Layer")
    _sub(layer, "Title", world.name if fmt is TileFormat.png else f"{world.name} ({fmt.value})", ns=OWS_NS)
    _sub(layer, "Abstract", f"{world.description}. {world.attribution}", ns=OWS_NS)
    bbox = _sub(layer, "WGS84BoundingBox", ns=OWS_NS)
    _sub(bbox, "LowerCorner", f"-180 {-WEB_MERCATOR_MAX_LAT_DEG}", ns=OWS_NS)
    _sub(bbox, "UpperCorner", f"180 {WEB_MERCATOR_MAX_LAT_DEG}", ns=OWS_NS)
    _sub(layer, "Identifier", wmts_layer_id(world.name, fmt), ns=OWS_NS)
    _sub(_sub(layer, "Style", isDefault="true"), "Identifier", "default", ns=OWS_NS)
    _sub(layer, "Format", fmt.media_type)
    _sub(_sub(layer, "TileMatrixSetLink"), "TileMatrixSet", "GoogleMapsCompatible")
    template = tile_url_template(base, world.name, version, fmt, 1, "{TileMatrix}", "{TileCol}", "{TileRow}")
    _sub(layer, "ResourceURL", format=fmt.media_type, resourceType="tile", template=template)


def _google_maps_compatible(contents: ET.Element, maxzoom: int) -> None:
    """The GoogleMapsCompatible tile matrix set (EPSG:3857, 256 px tiles) for zooms 0..maxzoom."""
    tms = _sub(contents, "TileMatrixSet")
    _sub(tms, "Identifier", "GoogleMapsCompatible", ns=OWS_NS)
    _sub(tms, "SupportedCRS", "urn:ogc:def:crs:EPSG::3857", ns=OWS_NS)
    _sub(tms, "WellKnownScaleSet", "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible")
    for z in range(maxzoom + 1):
        matrix = _sub(tms, "TileMatrix")
        _sub(matrix, "Identifier", str(z), ns=OWS_NS)
        _sub(matrix, "ScaleDenominator", repr(GOOGLE_SCALE_DENOMINATOR_Z0 / 2**z))
        _sub(matrix, "TopLeftCorner", f"{-WEB_MERCATOR_HALF_WORLD_M!r} {WEB_MERCATOR_HALF_WORLD_M!r}")
        _sub(matrix, "TileWidth", str(TILE_SIZE_PX))
        _sub(matrix, "TileHeight", str(TILE_SIZE_PX))
        _sub(matrix, "MatrixWidth", str(2**z))
        _sub(matrix, "MatrixHeight", str(2**z))


def wmts_capabilities(worlds: Sequence[World], base: str, version: str, maxzoom: int) -> bytes:
    """The WMTS 1.0.0 capabilities document (RESTful), a layer per world and format, as UTF-8 XML bytes."""
    root = ET.Element(f"{{{WMTS_NS}}}Capabilities", {"version": "1.0.0"})
    ident = _sub(root, "ServiceIdentification", ns=OWS_NS)
    _sub(ident, "Title", "terradream", ns=OWS_NS)
    _sub(ident, "Abstract", f"Generated satellite-like imagery (model version {version})", ns=OWS_NS)
    _sub(ident, "ServiceType", "OGC WMTS", ns=OWS_NS)
    _sub(ident, "ServiceTypeVersion", "1.0.0", ns=OWS_NS)
    operations = _sub(root, "OperationsMetadata", ns=OWS_NS)
    _operation(operations, "GetCapabilities", f"{base}/wmts/WMTSCapabilities.xml")
    _operation(operations, "GetTile", f"{base}/tiles/")
    contents = _sub(root, "Contents")
    for world in worlds:
        for fmt in TileFormat:
            _layer(contents, world, fmt, base, version)
    _google_maps_compatible(contents, maxzoom)
    _sub(root, "ServiceMetadataURL", **{f"{{{XLINK_NS}}}href": f"{base}/wmts/WMTSCapabilities.xml"})
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


class OGCFactory(RouterFactory):
    """Builds the TileJSON and WMTS router; dependencies are fields so apps can swap them."""

    tags: ClassVar[list[str]] = ["map clients"]

    def register_routes(self) -> None:
        """GET /tiles/{world}/tilejson.json and GET /wmts/WMTSCapabilities.xml."""
        runtime_dep, engine_dep = self.runtime_dependency, self.engine_dependency

        @self.router.get("/tiles/{world}/tilejson.json", summary="TileJSON 3.0.0 of a world")
        def world_tilejson(request: Request, world: str, runtime: Annotated[Runtime, Depends(runtime_dep)],
                           engine: Annotated[Engine, Depends(engine_dep)],
                           tile_format: TileFormat = TileFormat.png,
                           tile_scale: Annotated[int, Query(ge=1, le=2)] = 1) -> dict[str, Any]:
            """TileJSON with absolute, version-pinned tile URLs (for Leaflet, MapLibre, QGIS)."""
            return tilejson(engine.worlds.get(world), public_base_url(request), engine.version,
                            runtime.settings.maxzoom, tile_format, tile_scale)

        @self.router.get("/wmts/WMTSCapabilities.xml", response_class=Response, summary="WMTS 1.0.0 capabilities",
                         responses={200: {"content": {"application/xml": {}}}})
        def wmts(request: Request, runtime: Annotated[Runtime, Depends(runtime_dep)],
                 engine: Annotated[Engine, Depends(engine_dep)]) -> Response:
            """RESTful WMTS capabilities: a layer per configured world and format (for QGIS, GDAL, ArcGIS)."""
            body = wmts_capabilities(engine.worlds.configured(), public_base_url(request), engine.version,
                                     runtime.settings.maxzoom)
            return Response(body, media_type="application/xml")
