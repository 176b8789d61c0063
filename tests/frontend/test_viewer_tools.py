"""The viewer's tile requests (WebP, @2x on HiDPI, centre first), its loading hint and its tools, in headless Chromium
against the real `terradream serve`."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from frontend.browser import (
    LOAD_TIMEOUT_S,
    MARKUP_WORLD,
    TILE_PATH_RE,
    ServerProcess,
    assert_no_console_errors,
    open_viewer,
    screenshot,
    tile_request_count,
    wait_panel_urls,
    wait_tiles_settled,
    wait_until,
)

TILE_SIZE_PX = 256
RIFF_WEBP_MAGIC = (b"RIFF", b"WEBP")
# Records every text the loading hint shows, from before the page's own scripts run.
HINT_RECORDER_JS = """
window.loadingHints = [];
new MutationObserver(() => {
  const el = document.getElementById("loading");
  if (el && !el.hidden && el.textContent) window.loadingHints.push(el.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""
# Records every image URL the page's scripts set, in order, from before they run.
SRC_RECORDER_JS = """
window.imageSrcs = [];
const srcProperty = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
Object.defineProperty(HTMLImageElement.prototype, "src", {
  configurable: true,
  get() { return srcProperty.get.call(this); },
  set(value) { window.imageSrcs.push(String(value)); srcProperty.set.call(this, value); },
});
"""


@contextmanager
def on_every_page(browser: WebDriver, source: str) -> Iterator[None]:
    """Run the script `source` in every page the browser opens meanwhile, before the page's own scripts."""
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def tile_requests(browser: WebDriver) -> list[dict[str, Any]]:
    """The page's image requests of tiles in the order the page started them: full URL, path match, start times."""
    entries = browser.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'img')"
        ".map((e) => ({url: e.name, start: e.startTime, requestStart: e.requestStart}));")
    out = []
    for entry in sorted(entries, key=lambda e: e["start"]):
        match = TILE_PATH_RE.fullmatch(httpx.URL(entry["url"]).path)
        if match:
            out.append({**entry, "match": match})
    return out


def pixel_xy(lat_deg: float, lon_deg: float, z: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates of a point at zoom z (256 px tiles)."""
    world_px = TILE_SIZE_PX * 2**z
    sin_lat = math.sin(math.radians(lat_deg))
    x = (lon_deg + 180.0) / 360.0 * world_px
    y = (0.5 - math.log((1 + sin_lat) / (1 - sin_lat)) / (4 * math.pi)) * world_px
    return x, y


@pytest.fixture
def hidpi(driver: WebDriver) -> Iterator[WebDriver]:
    """The shared browser emulating a devicePixelRatio-2 screen for one test."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 800, "height": 600, "deviceScaleFactor": 2, "mobile": False})
    try:
        yield driver
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_hidpi_page_requests_webp_at_2x(server: ServerProcess, hidpi: WebDriver) -> None:
    """On a devicePixelRatio-2 page the viewer asks for @2x WebP tiles (512 px drawn in 256 CSS px)."""
    open_viewer(hidpi, f"{server.base_url}/#earth/1/20/10")
    assert hidpi.execute_script("return window.devicePixelRatio") == 2
    wait_tiles_settled(hidpi)
    requests = [r for r in tile_requests(hidpi) if r["match"]["z"] == "1"]
    assert requests
    assert {(r["match"]["scale"], r["match"]["ext"]) for r in requests} == {("@2x", "webp")}, requests
    sizes = hidpi.execute_script(
        "return Array.from(document.querySelectorAll('#map .leaflet-tile-pane img.leaflet-tile-loaded'),"
        " (img) => [img.naturalWidth, img.width]);")
    assert sizes and all(s == [2 * TILE_SIZE_PX, TILE_SIZE_PX] for s in sizes), sizes
    response = httpx.get(requests[0]["url"], timeout=30.0)
    assert response.headers["content-type"] == "image/webp"
    assert (response.content[:4], response.content[8:12]) == RIFF_WEBP_MAGIC
    screenshot(hidpi, "viewer-hidpi.png")
    assert_no_console_errors(hidpi)


def test_tiles_are_requested_centre_first(server: ServerProcess, driver: WebDriver) -> None:
    """A cold view's tiles are requested by their distance to the view centre, the centre tile first."""
    lat, lon, z = 30.0, 40.3, 4
    with on_every_page(driver, SRC_RECORDER_JS):
        open_viewer(driver, f"{server.base_url}/#centre-first/{z}/{lat}/{lon}")
        wait_tiles_settled(driver)
        srcs = driver.execute_script("return window.imageSrcs")
    tiles = [m for m in (TILE_PATH_RE.fullmatch(httpx.URL(u).path) for u in srcs)
             if m and m["world"] == "centre-first" and m["z"] == str(z)]
    cx, cy = pixel_xy(lat, lon, z)
    distances = [math.hypot((int(m["x"]) + 0.5) * TILE_SIZE_PX - cx, (int(m["y"]) + 0.5) * TILE_SIZE_PX - cy)
                 for m in tiles]
    assert len(distances) >= 9, srcs
    assert distances == sorted(distances), [(m["x"], m["y"], round(d)) for m, d in zip(tiles, distances)]
    centre = (str(int(cx // TILE_SIZE_PX)), str(int(cy // TILE_SIZE_PX)))
    assert (tiles[0]["x"], tiles[0]["y"]) == centre
    # The browser sends them in that order too: the centre tile goes out first (timestamps may tie).
    requests = [r for r in tile_requests(driver) if r["match"]["world"] == "centre-first"]
    centre_sent = next(r["requestStart"] for r in requests if (r["match"]["x"], r["match"]["y"]) == centre)
    assert centre_sent <= min(r["requestStart"] for r in requests) + 1.0, requests
    assert_no_console_errors(driver)


def test_loading_hint_counts_generated_tiles_not_cached_ones(server: ServerProcess, driver: WebDriver) -> None:
    """Cold tiles show "Generating N tiles"; the same view again, answered from the server's cache, shows nothing."""
    url = f"{server.base_url}/#loading-hint/3/10/10"
    with on_every_page(driver, HINT_RECORDER_JS):
        open_viewer(driver, url)
        wait_tiles_settled(driver)
        hints = driver.execute_script("return window.loadingHints")
        assert hints and all(re.fullmatch(r"Generating \d+ tiles?…", h) for h in hints), hints

        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # ask the server again
        try:
            before = tile_request_count(server.base_url)
            open_viewer(driver, url)
            state = wait_tiles_settled(driver)
            assert tile_request_count(server.base_url) - before >= state["loadedImgs"]
            assert driver.execute_script("return window.loadingHints") == []
        finally:
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
            driver.execute_cdp_cmd("Network.disable", {})
    assert_no_console_errors(driver)


def test_url_panel_gives_working_gis_urls(server: ServerProcess, driver: WebDriver) -> None:
    """The panel's XYZ, TileJSON and WMTS URLs are the server's, answer 200, and Copy puts them on the clipboard."""
    open_viewer(driver, f"{server.base_url}/#earth/2/0/0")
    wait_tiles_settled(driver)
    driver.find_element(By.CSS_SELECTOR, "#urls summary").click()
    urls = wait_panel_urls(driver)
    tilejson = httpx.get(f"{server.base_url}/tiles/earth/tilejson.json", timeout=10.0).json()
    assert urls == {"xyz": tilejson["tiles"][0], "tilejson": f"{server.base_url}/tiles/earth/tilejson.json",
                    "wmts": f"{server.base_url}/wmts/WMTSCapabilities.xml"}
    tile_url = urls["xyz"].format(z=2, x=1, y=1)
    for url in (tile_url, urls["tilejson"], urls["wmts"]):
        assert httpx.get(url, timeout=60.0).status_code == 200, url

    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": server.base_url,
                                                        "permissions": ["clipboardReadWrite",
                                                                        "clipboardSanitizedWrite"]})
    driver.find_element(By.CSS_SELECTOR, "button[data-copy='url-wmts']").click()
    wait_until(lambda: driver.find_element(By.CSS_SELECTOR, "button[data-copy='url-wmts']").text == "Copied", 10,
               "the copy button to confirm")
    copied = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (e) => done('failed: ' + e));")
    assert copied == urls["wmts"]
    assert_no_console_errors(driver)


def test_minimap_grid_overlay_and_swipe_compare(server: ServerProcess, driver: WebDriver) -> None:
    """The mini-map frames the view; the grid toggle labels tiles z/x/y; compare shows another world, or this one a
    zoom coarser, right of the divider; screenshot."""
    open_viewer(driver, f"{server.base_url}/#earth/2/45/5")
    wait_tiles_settled(driver)
    minimap_tiles = wait_until(
        lambda: driver.execute_script(
            "return Array.from(document.querySelectorAll('#minimap img.leaflet-tile-loaded'), (i) => i.src)"),
        LOAD_TIMEOUT_S, "mini-map tiles")
    assert {TILE_PATH_RE.fullmatch(httpx.URL(u).path)["z"] for u in minimap_tiles} == {"0"}
    assert driver.find_elements(By.CSS_SELECTOR, "#minimap path.leaflet-interactive, #minimap path")

    driver.find_element(By.ID, "grid-toggle").click()
    labels = {e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, ".td-grid-tile")}
    assert labels and all(re.fullmatch(r"2/\d+/\d+", t) for t in labels), labels
    assert "2/2/1" in labels  # the tile under the centre (45° N, 5° E)

    toggle = driver.find_element(By.ID, "compare-toggle")
    Select(driver.find_element(By.ID, "compare-select")).select_by_value(MARKUP_WORLD)
    toggle.click()
    compared = wait_until(
        lambda: driver.execute_script(
            "const layer = window.terradreamViewer.tools.compareLayer();"
            "return layer && !layer.isLoading() && Array.from("
            " document.querySelectorAll('.leaflet-compare-pane img.leaflet-tile-loaded'), (i) => i.src);"),
        LOAD_TIMEOUT_S, "compare tiles")
    assert {TILE_PATH_RE.fullmatch(httpx.URL(u).path)["world"] for u in compared} == {MARKUP_WORLD}
    assert driver.find_element(By.ID, "swipe").is_displayed()
    clip = driver.execute_script("return window.terradreamViewer.map.getPane('compare').style.clip")
    assert re.fullmatch(r"rect\(-?[\d.]+px, -?[\d.]+px, -?[\d.]+px, -?[\d.]+px\)", clip), clip
    screenshot(driver, "viewer-tools.png")

    Select(driver.find_element(By.ID, "compare-select")).select_by_value("=coarser")  # two zooms of one world
    coarser = wait_until(
        lambda: driver.execute_script(
            "const layer = window.terradreamViewer.tools.compareLayer();"
            "return layer && layer.options.zoomOffset === -1 && !layer.isLoading() && Array.from("
            " document.querySelectorAll('.leaflet-compare-pane img.leaflet-tile-loaded'), (i) => [i.src, i.width]);"),
        LOAD_TIMEOUT_S, "coarser compare tiles")
    assert {(TILE_PATH_RE.fullmatch(httpx.URL(u).path)["world"], TILE_PATH_RE.fullmatch(httpx.URL(u).path)["z"], w)
            for u, w in coarser} == {("earth", "1", 2 * TILE_SIZE_PX)}

    toggle.click()
    assert driver.execute_script("return document.querySelectorAll('.leaflet-compare-pane img').length") == 0
    driver.find_element(By.ID, "grid-toggle").click()
    assert driver.find_elements(By.CSS_SELECTOR, ".td-grid-tile") == []
    assert_no_console_errors(driver)
