"""Every HTTP route over real HTTP against one in-process server with the embedded cache (tiny model)."""

from __future__ import annotations

import http.client
import io
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import prometheus_client
import pytest
from PIL import Image

from terradream.engine.settings import Settings

from .conftest import ThreadServer, free_port

MAXZOOM = 7
ODD_IMAGE_NAME = 'mars&<moon>"x.png'  # its file name lands in the world's attribution: must come back escaped
WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"
SEMVER = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """One server for the module: maxzoom 7, earth plus an image world 'mars', arbitrary worlds allowed."""
    root = tmp_path_factory.mktemp("routes")
    image = root / ODD_IMAGE_NAME
    Image.fromarray(np.full((256, 512, 3), (180, 90, 40), dtype=np.uint8)).save(image, format="PNG")
    server = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), cache=root / "cache",
                                   maxzoom=MAXZOOM, worlds={"mars": image}))
    yield server
    server.stop()


def get(server: ThreadServer, path: str, **kwargs: object) -> httpx.Response:
    """GET a path of the server."""
    return httpx.get(server.url + path, timeout=120.0, **kwargs)  # type: ignore[arg-type]


def image_of(response: httpx.Response) -> Image.Image:
    """The response body as a decoded image."""
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def version(server: ThreadServer) -> str:
    """The model version the server reports."""
    return str(get(server, "/readyz").json()["version"])


def test_healthz_and_readyz(server: ThreadServer) -> None:
    assert get(server, "/healthz").json() == {"status": "ok"}
    ready = get(server, "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["model"] == "loaded" and body["cache"] == "ok"
    assert "MBTiles" in body["cache_backend"]


def test_not_ready_while_the_model_is_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    server = ThreadServer(Settings(model=broken, device="cpu", port=free_port(), cache=tmp_path / "c"), wait=False)
    try:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        deadline = time.monotonic() + 60
        while server.runtime.load_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and ready.json()["model"].startswith("failed")
        for path in ("/tiles/earth/1/0/0.png", "/tiles/earth/tilejson.json", "/worlds"):
            response = httpx.get(server.url + path)
            assert response.status_code == 503 and "Retry-After" in response.headers
            assert "model" in response.json()["detail"]
    finally:
        server.stop()


def test_cold_tile_is_generated_then_hit(server: ThreadServer) -> None:
    misses, hits = server.metric("terradream_tile_requests_total", cache="miss"), \
        server.metric("terradream_tile_requests_total", cache="hit")
    first = get(server, "/tiles/earth/5/10/12.png")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-cache"] == "miss"
    assert first.headers["cache-control"] == "public, max-age=86400"
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    image = image_of(first)
    assert image.format == "PNG" and image.size == (256, 256) and image.mode == "RGB"
    second = get(server, "/tiles/earth/5/10/12.png")
    assert second.headers["x-cache"] == "hit"
    assert second.content == first.content and second.headers["etag"] == etag
    assert server.metric("terradream_tile_requests_total", cache="miss") == misses + 1
    assert server.metric("terradream_tile_requests_total", cache="hit") == hits + 1
    assert server.metric("terradream_tiles_generated_total") >= 1
    # the embedded cache is an MBTiles file per world and version
    assert list((server.runtime.settings.cache).glob("earth-*.mbtiles"))


@pytest.mark.parametrize(("fmt", "media_type", "pil_format"),
                         [("png", "image/png", "PNG"), ("jpg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")])
def test_formats(server: ThreadServer, fmt: str, media_type: str, pil_format: str) -> None:
    response = get(server, f"/tiles/earth/3/2/3.{fmt}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    image = image_of(response)
    assert image.format == pil_format and image.size == (256, 256)
    png = np.asarray(image_of(get(server, "/tiles/earth/3/2/3.png")).convert("RGB"), dtype=np.int16)
    assert np.abs(np.asarray(image.convert("RGB"), dtype=np.int16) - png).mean() < 8  # same picture


def test_etag_depends_on_format_scale_and_tile(server: ThreadServer) -> None:
    etags = {get(server, path).headers["etag"] for path in
             ("/tiles/earth/3/2/3.png", "/tiles/earth/3/2/3.jpg", "/tiles/earth/3/2/3@2x.png",
              "/tiles/earth/3/3/3.png", "/tiles/mars/1/0/0.png")}
    assert len(etags) == 5


def test_2x_is_the_four_children_stitched(server: ThreadServer) -> None:
    big = get(server, "/tiles/earth/3/2/3@2x.png")
    assert big.status_code == 200 and big.headers["content-type"] == "image/png"
    pixels = np.asarray(image_of(big))
    assert pixels.shape == (512, 512, 3)
    for dy in (0, 1):
        for dx in (0, 1):
            child = np.asarray(image_of(get(server, f"/tiles/earth/4/{4 + dx}/{6 + dy}.png")))
            assert np.array_equal(pixels[dy * 256:(dy + 1) * 256, dx * 256:(dx + 1) * 256], child)
    assert image_of(get(server, "/tiles/earth/3/2/3@2x.webp")).size == (512, 512)


def test_2x_past_maxzoom_is_upscaled(tiny_model: Path, tmp_path: Path) -> None:
    shallow = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), cache=tmp_path, maxzoom=3))
    try:
        tile = image_of(httpx.get(f"{shallow.url}/tiles/earth/3/2/3.png", timeout=60))
        big = httpx.get(f"{shallow.url}/tiles/earth/3/2/3@2x.png", timeout=60)
        assert big.status_code == 200
        expected = np.asarray(tile.resize((512, 512), Image.Resampling.LANCZOS))
        assert np.array_equal(np.asarray(image_of(big)), expected)
        assert httpx.get(f"{shallow.url}/tiles/earth/4/4/6.png", timeout=60).status_code == 404
    finally:
        shallow.stop()


def test_if_none_match_gives_304(server: ThreadServer) -> None:
    path = "/tiles/earth/3/1/2.png"
    etag = get(server, path).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = get(server, path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag and "cache-control" in response.headers
    assert get(server, path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_head_answers_like_get_without_a_body(server: ThreadServer) -> None:
    for path in ("/tiles/earth/3/1/2.png", "/tiles/earth/3/1/2@2x.jpg"):
        full = get(server, path)
        head = httpx.head(server.url + path, timeout=300.0)
        assert head.status_code == 200 and head.content == b""
        for name in ("etag", "content-type", "content-length", "cache-control"):
            assert head.headers[name] == full.headers[name], name
        assert int(head.headers["content-length"]) == len(full.content)
        cached = httpx.head(server.url + path, headers={"If-None-Match": full.headers["etag"]}, timeout=30.0)
        assert cached.status_code == 304
    assert httpx.head(server.url + "/tiles/earth/3/8/0.png", timeout=30.0).status_code == 404


def test_version_pinned_urls_are_immutable(server: ThreadServer) -> None:
    pinned = get(server, f"/tiles/earth/2/1/1.png?v={version(server)}")
    assert pinned.status_code == 200
    assert "immutable" in pinned.headers["cache-control"] and "max-age=31536000" in pinned.headers["cache-control"]
    stale = get(server, "/tiles/earth/2/1/1.png?v=someoldversion")
    assert stale.headers["cache-control"] == "public, max-age=86400"
    assert stale.headers["etag"] == pinned.headers["etag"]


@pytest.mark.parametrize("path", [
    f"/tiles/earth/{MAXZOOM + 1}/0/0.png",  # deeper than maxzoom
    "/tiles/earth/3/8/0.png",  # x >= 2^z
    "/tiles/earth/3/0/8.png",  # y >= 2^z
    "/tiles/earth/3/-1/0.png",  # negative
    "/tiles/earth/99999999999999999999/0/0.png",  # 20-digit zoom
    "/tiles/earth/3/0/99999999999999999999@2x.png",
    "/tiles/Earth/3/0/0.png",  # world names are [a-z0-9-]{1,32}
    "/tiles/" + "a" * 33 + "/3/0/0.png",
    "/tiles/Earth/tilejson.json",
])
def test_outside_the_matrix_or_bad_world_is_404(server: ThreadServer, path: str) -> None:
    response = get(server, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


@pytest.mark.parametrize("path", [
    "/tiles/earth/a/b/c.png", "/tiles/earth/1/0/0.gif", "/tiles/earth/1/0/0@3x.png", "/tiles/earth/1.5/0/0.png",
    "/tiles/earth/tilejson.json?tile_scale=3", "/tiles/earth/tilejson.json?tile_format=tiff",
])
def test_malformed_paths_are_4xx_json(server: ThreadServer, path: str) -> None:
    response = get(server, path)
    assert response.status_code in (400, 422)
    assert response.json()["detail"]


def test_arbitrary_world_names_are_planets(server: ThreadServer) -> None:
    response = get(server, "/tiles/kepler-22b/2/1/1.png")
    assert response.status_code == 200 and image_of(response).size == (256, 256)
    assert not np.array_equal(np.asarray(image_of(response)),
                              np.asarray(image_of(get(server, "/tiles/earth/2/1/1.png"))))


def test_arbitrary_worlds_can_be_disabled(tiny_model: Path, tmp_path: Path) -> None:
    image = tmp_path / "moon.png"
    Image.fromarray(np.full((256, 512, 3), 128, dtype=np.uint8)).save(image)
    closed = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), cache=tmp_path / "c",
                                   allow_arbitrary_worlds=False, worlds={"moon": image}))
    try:
        for path in ("/tiles/venus/1/0/0.png", "/tiles/venus/tilejson.json"):
            response = httpx.get(closed.url + path, timeout=60)
            assert response.status_code == 404 and "venus" in response.json()["detail"]
        assert httpx.get(f"{closed.url}/tiles/moon/1/0/0.png", timeout=60).status_code == 200
        listing = httpx.get(f"{closed.url}/worlds", timeout=60).json()
        assert listing["allow_arbitrary"] is False
        assert [w["name"] for w in listing["worlds"]] == ["earth", "moon"]
    finally:
        closed.stop()


def test_cors(server: ThreadServer) -> None:
    response = get(server, "/tiles/earth/1/0/0.png", headers={"Origin": "https://example.org"})
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "etag" in exposed and "x-cache" in exposed
    preflight = httpx.options(f"{server.url}/tiles/earth/1/0/0.png", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-Terradream-Priority"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_cors_origins_are_configurable(tiny_model: Path, tmp_path: Path) -> None:
    strict = ThreadServer(Settings(model=tiny_model, device="cpu", port=free_port(), cache=tmp_path,
                                   cors_origins=["https://maps.example.org"]))
    try:
        allowed = httpx.get(f"{strict.url}/healthz", headers={"Origin": "https://maps.example.org"})
        assert allowed.headers["access-control-allow-origin"] == "https://maps.example.org"
        other = httpx.get(f"{strict.url}/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        strict.stop()


def test_tilejson(server: ThreadServer) -> None:
    doc = get(server, "/tiles/earth/tilejson.json").json()
    v = version(server)
    assert doc["tilejson"] == "3.0.0"
    assert doc["name"] == "earth" and doc["version"] == f"1.0.0+{v}"  # semver, the model version as build metadata
    assert re.fullmatch(SEMVER, doc["version"])
    assert doc["tileSize"] == 256  # without it MapLibre assumes 512 px tiles and asks one zoom too coarse
    assert doc["minzoom"] == 0 and doc["maxzoom"] == MAXZOOM
    assert doc["bounds"] == pytest.approx([-180, -85.0511287798, 180, 85.0511287798])
    assert doc["tiles"] == [f"{server.url}/tiles/earth/{{z}}/{{x}}/{{y}}.png?v={v}"]
    assert "NASA" in doc["attribution"]
    tile = get(server, doc["tiles"][0].replace(server.url, "").format(z=2, x=2, y=1))
    assert tile.status_code == 200 and "immutable" in tile.headers["cache-control"]
    hidpi = get(server, "/tiles/earth/tilejson.json?tile_format=webp&tile_scale=2").json()
    assert hidpi["tiles"] == [f"{server.url}/tiles/earth/{{z}}/{{x}}/{{y}}@2x.webp?v={v}"]
    assert hidpi["tileSize"] == 512


def test_tilejson_escapes_attribution(server: ThreadServer) -> None:
    attribution = get(server, "/tiles/mars/tilejson.json").json()["attribution"]
    assert "mars&amp;&lt;moon&gt;&quot;x.png" in attribution
    assert "<" not in attribution


def test_worlds(server: ThreadServer) -> None:
    listing = get(server, "/worlds").json()
    assert listing["allow_arbitrary"] is True
    names = [w["name"] for w in listing["worlds"]]
    assert names == ["earth", "mars"]
    for world in listing["worlds"]:
        assert set(world) == {"name", "description", "attribution", "tilejson"}
        assert world["tilejson"] == f"{server.url}/tiles/{world['name']}/tilejson.json"
        assert get(server, world["tilejson"].replace(server.url, "")).status_code == 200


def test_wmts_capabilities(server: ThreadServer) -> None:
    response = get(server, "/wmts/WMTSCapabilities.xml")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{WMTS}Capabilities" and root.get("version") == "1.0.0"
    layers = {layer.findtext(f"{OWS}Identifier"): layer for layer in root.findall(f"{WMTS}Contents/{WMTS}Layer")}
    assert list(layers) == ["earth", "earth_jpg", "earth_webp", "mars", "mars_jpg", "mars_webp"]
    assert ODD_IMAGE_NAME in (layers["mars"].findtext(f"{OWS}Abstract") or "")  # escaped in XML, intact when parsed
    v = version(server)
    templates = {}
    for name, layer in layers.items():  # one format per layer: clients treat several ResourceURLs as mirrors
        formats = [f.text for f in layer.findall(f"{WMTS}Format")]
        resources = layer.findall(f"{WMTS}ResourceURL")
        assert len(formats) == 1 and len(resources) == 1 and resources[0].get("format") == formats[0], name
        templates[name] = resources[0].get("template") or ""
    assert layers["earth_jpg"].findtext(f"{WMTS}Format") == "image/jpeg"
    assert templates["earth"] == f"{server.url}/tiles/earth/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png?v={v}"
    assert templates["earth_webp"] == f"{server.url}/tiles/earth/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.webp?v={v}"
    tms = root.find(f"{WMTS}Contents/{WMTS}TileMatrixSet")
    assert tms is not None and tms.findtext(f"{OWS}Identifier") == "GoogleMapsCompatible"
    assert tms.findtext(f"{OWS}SupportedCRS") == "urn:ogc:def:crs:EPSG::3857"
    matrices = tms.findall(f"{WMTS}TileMatrix")
    assert [m.findtext(f"{OWS}Identifier") for m in matrices] == [str(z) for z in range(MAXZOOM + 1)]
    assert float(matrices[0].findtext(f"{WMTS}ScaleDenominator") or 0) == pytest.approx(559082264.0287178)
    assert matrices[MAXZOOM].findtext(f"{WMTS}MatrixWidth") == str(2**MAXZOOM)
    tile_url = templates["earth"].replace(server.url, "")
    assert get(server, tile_url.format(TileMatrix=1, TileCol=1, TileRow=0)).status_code == 200


def test_wmts_is_usable_by_gdal(server: ThreadServer) -> None:
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        pytest.fail("gdalinfo is not installed (apt-get install gdal-bin)")
    url = f"WMTS:{server.url}/wmts/WMTSCapabilities.xml"
    listing = subprocess.run([gdalinfo, url], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "layer=earth" in listing.stdout and "layer=mars" in listing.stdout
    layer = subprocess.run([gdalinfo, f"{url},layer=earth"], capture_output=True, text=True, timeout=120)
    assert layer.returncode == 0, layer.stderr
    assert f"Size is {256 * 2**MAXZOOM}, {256 * 2**MAXZOOM}" in layer.stdout
    assert "Pseudo-Mercator" in layer.stdout or "3857" in layer.stdout


def test_metrics(server: ThreadServer) -> None:
    get(server, "/tiles/earth/1/1/1.png")
    text = server.metrics_text()
    for name in ("terradream_tiles_generated_total", 'terradream_tile_requests_total{cache="hit"}',
                 "terradream_generation_seconds_bucket", "terradream_queue_depth", "terradream_batch_size_bucket"):
        assert name in text
    assert server.metric("terradream_queue_depth") == 0
    # a private registry per app: nothing leaks into the process-global one
    assert "terradream_tiles_generated_total" not in prometheus_client.generate_latest().decode()


def test_docs_and_openapi(server: ThreadServer) -> None:
    docs = get(server, "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):  # served here, not from a CDN
        assert f"/vendor/swagger-ui/{asset}" in docs.text
        assert get(server, f"/vendor/swagger-ui/{asset}").status_code == 200
    assert get(server, "/redoc").status_code == 404  # ReDoc would need a CDN: not offered
    paths = get(server, "/openapi.json").json()["paths"]
    for path in ("/tiles/{world}/{z}/{x}/{y}.{fmt}", "/tiles/{world}/{z}/{x}/{y}@2x.{fmt}",
                 "/tiles/{world}/tilejson.json", "/wmts/WMTSCapabilities.xml", "/worlds", "/healthz", "/readyz"):
        assert path in paths


def test_viewer_and_static_files(server: ThreadServer) -> None:
    index = get(server, "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert get(server, "/static/index.html").text == index.text
    leaflet = get(server, "/vendor/leaflet/leaflet.js")
    assert leaflet.status_code == 200 and "javascript" in leaflet.headers["content-type"]
    assert get(server, "/static/no-such-file.js").status_code == 404


@pytest.mark.parametrize("raw_path", [
    "/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2f__init__.py",
    "/static/..%2F..%2Fpyproject.toml",
    "/vendor/leaflet/../../../package.json", "/vendor/leaflet/%2e%2e/%2e%2e/%2e%2e/package.json",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd",
])
def test_no_path_traversal(server: ThreadServer, raw_path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", raw_path)  # sent verbatim: no client-side dot-segment normalisation
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status in (400, 404), (raw_path, response.status)
    assert b"root:" not in body and b"__version__" not in body and b'"dependencies"' not in body
