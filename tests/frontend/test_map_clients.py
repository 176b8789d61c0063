"""Real map clients from npm in headless Chromium against the real server: MapLibre GL JS given only the TileJSON URL
and OpenLayers built from the WMTS capabilities. Their pages come from a static server of this test, as a web map
on another site would load them."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from frontend.browser import TILE_PATH_RE, ServerProcess, assert_no_console_errors, console_errors, screenshot

NODE_MODULES = Path(__file__).parents[2] / "terradream" / "frontend" / "node_modules"
CLIENT_TIMEOUT_S = 180.0

MAPLIBRE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="maplibre-gl/maplibre-gl.css">
<style>html, body, #map { margin: 0; width: 100%; height: 100%; }</style></head>
<body><div id="map"></div>
<script type="module">
import * as maplibregl from "./maplibre-gl/maplibre-gl.mjs";
const q = new URLSearchParams(location.search);
const map = new maplibregl.Map({
  container: "map",
  style: {version: 8, sources: {td: {type: "raster", url: q.get("tilejson")}},
          layers: [{id: "td", type: "raster", source: "td"}]},
  center: [Number(q.get("lon")), Number(q.get("lat"))],
  zoom: Number(q.get("zoom")),
  fadeDuration: 0,
  canvasContextAttributes: {preserveDrawingBuffer: true},
});
window.client = map;
window.clientReady = new Promise((resolve, reject) => {
  map.on("error", (e) => reject(String(e.error && e.error.message)));
  map.once("idle", () => resolve(true));
});
</script></body></html>
"""

OPENLAYERS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="ol/ol.css">
<style>html, body, #map { margin: 0; width: 100%; height: 100%; }</style></head>
<body><div id="map"></div>
<script src="ol/dist/ol.js"></script>
<script>
const q = new URLSearchParams(location.search);
window.clientReady = fetch(q.get("wmts")).then((r) => r.text()).then((text) => {
  const capabilities = new ol.format.WMTSCapabilities().read(text);
  const options = ol.source.WMTS.optionsFromCapabilities(
    capabilities, {layer: q.get("layer"), matrixSet: "GoogleMapsCompatible"});
  const map = new ol.Map({
    target: "map",
    layers: [new ol.layer.Tile({source: new ol.source.WMTS(options)})],
    view: new ol.View({center: ol.proj.fromLonLat([Number(q.get("lon")), Number(q.get("lat"))]),
                       zoom: Number(q.get("zoom"))}),
  });
  window.client = map;
  return new Promise((resolve) => map.once("rendercomplete", () => resolve(true)));
});
</script></body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Log nothing."""


@pytest.fixture(scope="module")
def client_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static web site on its own port with the two client pages and the npm packages they load."""
    for package in ("maplibre-gl", "ol"):
        if not (NODE_MODULES / package).is_dir():
            pytest.fail(f"{NODE_MODULES / package} is missing: run `npm ci` in terradream/frontend (make setup does)")
    site = tmp_path_factory.mktemp("client-site")
    (site / "maplibre-gl").symlink_to(NODE_MODULES / "maplibre-gl" / "dist")
    (site / "ol").symlink_to(NODE_MODULES / "ol")
    (site / "maplibre.html").write_text(MAPLIBRE_PAGE)
    (site / "openlayers.html").write_text(OPENLAYERS_PAGE)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def open_client(browser: WebDriver, url: str) -> None:
    """Open a client page and wait until the client says its view is drawn (fail with its error otherwise)."""
    browser.get("about:blank")
    console_errors(browser)
    browser.get(url)
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.clientReady.then(() => done(true), (e) => done(String(e)));")
    assert result is True, result


def requested_tiles(browser: WebDriver, server_url: str) -> list[Any]:
    """Path matches of the tile requests the page made to the tile server."""
    urls = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    return [m for u in urls if u.startswith(server_url) and (m := TILE_PATH_RE.fullmatch(httpx.URL(u).path))]


def test_maplibre_with_tilejson_url_requests_the_maps_zoom(server: ServerProcess, driver: WebDriver,
                                                           client_site: str) -> None:
    """MapLibre given only the TileJSON URL fetches tiles at the map's own zoom (not one coarser) and paints them.

    MapLibre counts zoom in 512 px tiles: its zoom 3 shows the world at XYZ zoom 4 (4,096 px), so sharp 256 px tiles
    are the zoom-4 ones; a TileJSON without tileSize makes it take zoom-3 tiles and stretch them.
    """
    maplibre_zoom = 3
    zoom = maplibre_zoom + 1
    query = urlencode({"tilejson": f"{server.base_url}/tiles/earth/tilejson.json", "zoom": maplibre_zoom,
                       "lat": 20, "lon": 10})
    open_client(driver, f"{client_site}/maplibre.html?{query}")
    tiles = requested_tiles(driver, server.base_url)
    assert tiles, "MapLibre requested no tiles"
    assert {m["z"] for m in tiles} == {str(zoom)}, sorted({m.group(0) for m in tiles})
    # Painted: the WebGL canvas holds many different colours, not an empty background.
    colours = driver.execute_script(
        "const c = window.client.getCanvas(), g = document.createElement('canvas').getContext('2d');"
        "g.canvas.width = c.width; g.canvas.height = c.height; g.drawImage(c, 0, 0);"
        "const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();"
        "for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);"
        "return seen.size;")
    assert colours > 100, colours
    screenshot(driver, "maplibre.png")
    assert_no_console_errors(driver)


def test_openlayers_from_wmts_capabilities_requests_one_format(server: ServerProcess, driver: WebDriver,
                                                               client_site: str) -> None:
    """OpenLayers configured from the WMTS capabilities loads every tile of the view in the same format."""
    query = urlencode({"wmts": f"{server.base_url}/wmts/WMTSCapabilities.xml", "layer": "earth", "zoom": 3,
                       "lat": 20, "lon": 10})
    open_client(driver, f"{client_site}/openlayers.html?{query}")
    tiles = requested_tiles(driver, server.base_url)
    assert len(tiles) >= 4, tiles
    assert len({m["ext"] for m in tiles}) == 1, sorted(m.group(0) for m in tiles)
    assert {m["z"] for m in tiles} == {"3"}
    screenshot(driver, "openlayers.png")
    assert_no_console_errors(driver)
