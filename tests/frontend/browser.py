"""Helpers for the browser tests: polling, the page's view state and console, tile paths of what the viewer loaded."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from support import ServeSubprocess

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
TILE_PATH_RE = re.compile(
    r"(?P<prefix>.*)/tiles/(?P<world>[a-z0-9-]+)/(?P<z>\d+)/(?P<x>\d+)/(?P<y>\d+)(?P<scale>@2x)?\.(?P<ext>png|jpg|webp)")
LOAD_TIMEOUT_S = 180.0
MARKUP_WORLD = "marked"
MARKUP_IMAGE_NAME = "x<b>y&lt;z.png"  # no "/": it is a file name


class ServerProcess(ServeSubprocess):
    """A real `terradream serve` subprocess with extra image worlds (see ServeSubprocess)."""

    def __init__(self, model_dir: Path, cache_dir: Path, log_path: Path, worlds: dict[str, Path]) -> None:
        # The viewer's tests are about the viewer: a first view of a cold world may queue more than the default 30 s
        # of generation on a loaded 2-core machine, and admission would answer part of it 503; and every test's cold
        # views come from one client address, which would run out of its fair share of new tiles and get 429s
        # (both tested elsewhere).
        args = ["--cache", str(cache_dir), "--model", str(model_dir), "--cold-deadline", "600"]
        for name, image in worlds.items():
            args += ["--image-world", f"{name}={image}"]
        super().__init__(args, log_path, env={"TERRADREAM_CLIENT_COLD_RATE_PER_S": "0"})
        self.base_url = self.url


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.2) -> Any:
    """Poll predicate until it returns something truthy (returned) or fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def tile_request_count(base_url: str) -> float:
    """Tiles the server answered, per its /metrics counter terradream_tile_requests (summed over cache labels)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "terradream_tile_requests_total"]
    return sum(s.value for s in samples)


def console_errors(browser: WebDriver) -> list[dict[str, Any]]:
    """Browser console entries at SEVERE level since the last call (reading drains the log)."""
    return [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]


def open_viewer(browser: WebDriver, url: str) -> None:
    """Load the page afresh (not a same-document hash change) and wait for its start-up to finish."""
    browser.get("about:blank")
    console_errors(browser)  # drain entries from earlier tests
    browser.get(url)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.terradreamViewer.ready.then(() => done(true), (e) => done(String(e)));")


def view_state(browser: WebDriver) -> dict[str, Any]:
    """Zoom, centre, world, hash and tile counters of the page's map."""
    return browser.execute_script(
        "const v = window.terradreamViewer, c = v.map.getCenter();"
        "return {z: v.map.getZoom(), lat: c.lat, lon: c.lng, world: v.world(), hash: location.hash,"
        " pending: v.pendingTiles(), generating: v.generatingTiles(), failed: v.failedTiles(),"
        " loadedImgs: document.querySelectorAll('#map .leaflet-tile-pane img.leaflet-tile-loaded').length};")


def loaded_tile_paths(browser: WebDriver) -> set[str]:
    """URL paths of the tile images the main map shows as loaded."""
    srcs = browser.execute_script(
        "return Array.from(document.querySelectorAll('#map .leaflet-tile-pane img.leaflet-tile-loaded'),"
        " (img) => img.src);")
    return {urlsplit(src).path for src in srcs}


def wait_tiles_settled(browser: WebDriver) -> dict[str, Any]:
    """Wait until the map shows loaded tiles and none is pending; return the view state."""
    return wait_until(
        lambda: (s := view_state(browser))["loadedImgs"] > 0 and s["pending"] == 0 and s,
        LOAD_TIMEOUT_S, "tiles to finish loading")


def assert_no_console_errors(browser: WebDriver) -> None:
    """Fail with the console's SEVERE entries, if any."""
    errors = console_errors(browser)
    assert errors == [], f"browser console errors: {errors}"


def screenshot(browser: WebDriver, name: str) -> Path:
    """Save a screenshot under tests/frontend/artifacts/ (for people looking at the viewer) and return its path."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    shot = ARTIFACTS_DIR / name
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    return shot


def wait_panel_urls(driver: WebDriver) -> dict[str, str]:
    """The URL panel's XYZ, TileJSON and WMTS URLs, once the viewer filled them (from the world's TileJSON)."""

    def filled() -> dict[str, str] | None:
        found = {k: driver.find_element(By.ID, f"url-{k}").get_attribute("value") or ""
                 for k in ("xyz", "tilejson", "wmts")}
        return found if all(found.values()) else None

    return wait_until(filled, LOAD_TIMEOUT_S, "the URL panel to be filled")  # type: ignore[no-any-return]
