"""OGC API - Tiles documents and tiles, the landing page beside the viewer, gzip for documents (never for tiles),
HTTP request metrics, and handed-out URLs under a configured root path or public URL (one in-process server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from terradream.engine.settings import Settings

from .conftest import ThreadServer, free_port

MAXZOOM = 5
ROOT_PATH = "/maps/terradream"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """One server for the module, told it lives under ROOT_PATH (requests reach it with or without the prefix)."""
    server = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), maxzoom=MAXZOOM,
                                   cache=tmp_path_factory.mktemp("ogcapi") / "cache", root_path=ROOT_PATH))
    yield server
    server.stop()


def get_json(url: str, **kwargs: object) -> dict:  # type: ignore[type-arg]
    """GET url, expecting a 200 JSON document."""
    response = httpx.get(url, timeout=120.0, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


def href(doc: dict, rel: str, type_: str | None = None) -> str:  # type: ignore[type-arg]
    """The href of a document's link with this rel (and type)."""
    found = [link["href"] for link in doc["links"] if link["rel"] == rel and type_ in (None, link.get("type"))]
    assert found, (rel, doc["links"])
    return str(found[0])


def local(server: ThreadServer, url: str) -> str:
    """A handed-out URL (public base: server URL + ROOT_PATH) as one this test can fetch directly."""
    base = server.url + ROOT_PATH
    assert url.startswith(base), url
    return server.url + url[len(base):]


def test_landing_page_shares_the_root_with_the_viewer(server: ThreadServer) -> None:
    html = httpx.get(f"{server.url}/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Accept" in html.headers["vary"]
    for landing in (get_json(f"{server.url}/?f=json"),
                    get_json(f"{server.url}/", headers={"Accept": "application/geo+json, application/json"})):
        assert href(landing, "self") == f"{server.url}{ROOT_PATH}/?f=json"
        assert href(landing, "data") == f"{server.url}{ROOT_PATH}/collections"
        conformance = get_json(local(server, href(landing, "conformance")))["conformsTo"]
        assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in conformance
        assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset" in conformance
        assert "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset" in conformance
        api = httpx.get(local(server, href(landing, "service-desc")), timeout=60.0).json()
        assert "/collections/{world}/map/tiles/WebMercatorQuad/{z}/{row}/{col}" in api["paths"]
        assert api["servers"] == [{"url": ROOT_PATH}]  # Swagger's "try it out" goes through the prefix too


def test_tile_matrix_set_is_web_mercator_quad(server: ThreadServer) -> None:
    listing = get_json(f"{server.url}/tileMatrixSets")["tileMatrixSets"]
    assert [t["id"] for t in listing] == ["WebMercatorQuad"]
    tms = get_json(local(server, href(listing[0], "self")))
    assert tms["id"] == "WebMercatorQuad" and tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert tms["uri"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    z0, z5 = tms["tileMatrices"][0], tms["tileMatrices"][5]
    assert z0["pointOfOrigin"] == pytest.approx([-20037508.342789244, 20037508.342789244])
    assert z0["scaleDenominator"] == pytest.approx(559082264.0287178) and z0["tileWidth"] == 256
    assert z5["matrixWidth"] == z5["matrixHeight"] == 32
    # TMS 1.0 members for readers of that encoding (GDAL before 3.7), equal to the 2.0 ones
    assert tms["type"] == "TileMatrixSetType" and tms["supportedCRS"] == tms["crs"]
    assert [m["topLeftCorner"] for m in tms["tileMatrix"]] == [m["pointOfOrigin"] for m in tms["tileMatrices"]]
    assert httpx.get(f"{server.url}/tileMatrixSets/WorldCRS84Quad").status_code == 404


def test_collections_lead_to_the_xyz_tiles(server: ThreadServer) -> None:
    collections = get_json(f"{server.url}/collections")["collections"]
    assert [c["id"] for c in collections] == ["earth"]
    collection = get_json(local(server, href(collections[0], "self")))
    assert collection["extent"]["spatial"]["bbox"] == [pytest.approx([-180, -85.0511287798, 180, 85.0511287798])]
    tilesets = get_json(local(server, href(collection, OGC_REL + "tilesets-map", "application/json")))["tilesets"]
    assert len(tilesets) == 1 and tilesets[0]["dataType"] == "map"
    tileset = get_json(local(server, href(tilesets[0], "self")))
    assert href(tileset, OGC_REL + "tiling-scheme") == f"{server.url}{ROOT_PATH}/tileMatrixSets/WebMercatorQuad"
    assert [limit["tileMatrix"] for limit in tileset["tileMatrixSetLimits"]] == [str(z) for z in range(MAXZOOM + 1)]
    assert tileset["tileMatrixSetLimits"][2] == {"tileMatrix": "2", "minTileRow": 0, "maxTileRow": 3,
                                                 "minTileCol": 0, "maxTileCol": 3}
    version = get_json(f"{server.url}/readyz")["version"]
    for media_type, suffix in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp")):
        template = href(tileset, "item", media_type)
        url = local(server, template.format(tileMatrix=2, tileRow=1, tileCol=3))
        ogc, xyz = httpx.get(url, timeout=120.0), httpx.get(f"{server.url}/tiles/earth/2/3/1.{suffix}", timeout=120.0)
        assert ogc.status_code == 200 and ogc.headers["content-type"] == media_type
        assert ogc.content == xyz.content and ogc.headers["etag"] == xyz.headers["etag"]
        assert f"v={version}" in template and "immutable" in ogc.headers["cache-control"]
        head = httpx.head(url, timeout=60.0)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == ogc.headers["etag"]


@pytest.mark.parametrize("path", [
    "/collections/Bad_Name", "/collections/earth/map/tiles/WorldCRS84Quad",
    f"/collections/earth/map/tiles/WebMercatorQuad/{MAXZOOM + 1}/0/0",
    "/collections/earth/map/tiles/WebMercatorQuad/1/2/0",
])
def test_unknown_collections_matrix_sets_and_tiles_are_404(server: ThreadServer, path: str) -> None:
    response = httpx.get(server.url + path, timeout=60.0)
    assert response.status_code == 404 and "detail" in response.json()


def test_prefixed_requests_route_too(server: ThreadServer) -> None:
    """A proxy that forwards the prefix instead of stripping it reaches the same routes."""
    stripped = httpx.get(f"{server.url}/tiles/earth/tilejson.json").json()
    assert httpx.get(f"{server.url}{ROOT_PATH}/tiles/earth/tilejson.json").json() == stripped
    assert stripped["tiles"][0].startswith(f"{server.url}{ROOT_PATH}/tiles/earth/{{z}}/")
    for prefix in ("", ROOT_PATH):  # static files too (mounts resolve paths against the root path)
        for path in ("/vendor/swagger-ui/swagger-ui.css", "/vendor/leaflet/leaflet.js", "/static/index.html"):
            assert httpx.get(f"{server.url}{prefix}{path}").status_code == 200, prefix + path


def test_documents_are_gzipped_tiles_never(server: ThreadServer) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    for path in ("/wmts/WMTSCapabilities.xml", "/tileMatrixSets/WebMercatorQuad", "/openapi.json"):
        response = httpx.get(server.url + path, headers=gzip, timeout=60.0)
        assert response.headers.get("content-encoding") == "gzip", path
        assert int(response.headers["content-length"]) < len(response.content)  # httpx inflated it
    for path in ("/tiles/earth/1/0/0.png", "/tiles/earth/1/0/0.jpg", "/tiles/earth/1/0/0@2x.webp",
                 "/collections/earth/map/tiles/WebMercatorQuad/1/0/0"):
        response = httpx.get(server.url + path, headers=gzip, timeout=120.0)
        assert response.status_code == 200 and "content-encoding" not in response.headers, path
    plain = httpx.get(f"{server.url}/wmts/WMTSCapabilities.xml", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def test_http_request_metrics(server: ThreadServer) -> None:
    name = "terradream_http_request_seconds_count"
    route = "/tiles/{world}/{z}/{x}/{y}.{fmt}"
    ok, missing = (server.metric(name, method="GET", route=route, status=status) for status in ("200", "404"))
    for _ in range(2):  # the second is answered by the cache-hit fast path, and counts under the route too
        httpx.get(f"{server.url}/tiles/earth/0/0/0.png", timeout=120.0)
    httpx.get(f"{server.url}/tiles/earth/{MAXZOOM + 1}/0/0.png", timeout=60.0)
    httpx.get(f"{server.url}/no/such/route", timeout=60.0)
    assert server.metric(name, method="GET", route=route, status="200") == ok + 2
    assert server.metric(name, method="GET", route=route, status="404") == missing + 1
    assert server.metric(name, method="GET", route="unmatched", status="404") >= 1  # never the raw path as a label
    assert server.metric("terradream_http_request_seconds_bucket", method="GET", route=route, status="200",
                         le="+Inf") >= 1


def test_public_url_starts_every_handed_out_url(tiny_model: Path, tmp_path: Path) -> None:
    public = "https://maps.example.org/terradream"
    other = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), maxzoom=MAXZOOM,
                                  cache=tmp_path / "cache", public_url=public + "/"))
    try:
        assert httpx.get(f"{other.url}/tiles/earth/tilejson.json").json()["tiles"][0].startswith(
            f"{public}/tiles/earth/")
        assert httpx.get(f"{other.url}/worlds").json()["worlds"][0]["tilejson"] == f"{public}/tiles/earth/tilejson.json"
        assert f'template="{public}/tiles/earth/' in httpx.get(f"{other.url}/wmts/WMTSCapabilities.xml").text
        assert href(get_json(f"{other.url}/?f=json"), "data") == f"{public}/collections"
        assert f"{public}/vendor/swagger-ui/swagger-ui-bundle.js" in httpx.get(f"{other.url}/docs").text
    finally:
        other.stop()


@pytest.mark.parametrize("bad", [{"root_path": "terradream"}, {"root_path": "/terradream/"},
                                 {"public_url": "maps.example.org/terradream"}, {"public_url": "ftp://host/x"}])
def test_malformed_prefixes_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings(**bad)  # type: ignore[arg-type]
