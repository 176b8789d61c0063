"""The Leaflet viewer in real headless Chromium against the real `terradream serve` process with a tiny model."""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from support import ServeSubprocess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
TILE_PATH_RE = re.compile(r"/tiles/(?P<world>[a-z0-9-]+)/(?P<z>\d+)/(?P<x>\d+)/(?P<y>\d+)\.png")
EQUATOR_M_PER_PX_Z0 = 156543.034
LOAD_TIMEOUT_S = 180.0
MARKUP_WORLD = "marked"
MARKUP_IMAGE_NAME = "x<b>y&lt;z.png"  # no "/": it is a file name


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


class ServerProcess(ServeSubprocess):
    """A real `terradream serve` subprocess with extra image worlds (see ServeSubprocess)."""

    def __init__(self, model_dir: Path, cache_dir: Path, log_path: Path, worlds: dict[str, Path]) -> None:
        args = ["--cache", str(cache_dir), "--model", str(model_dir)]
        for name, image in worlds.items():
            args += ["--world", f"{name}={image}"]
        super().__init__(args, log_path)
        self.base_url = self.url


def tile_request_count(base_url: str) -> float:
    """Tiles the server answered, per its /metrics counter terradream_tile_requests (summed over cache labels)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "terradream_tile_requests_total"]
    return sum(s.value for s in samples)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    """`terradream serve` with the tiny random-init model and an empty embedded cache, healthy before tests run."""
    workdir = tmp_path_factory.mktemp("viewer-server")
    # An image world whose file name is markup: its attribution and description must reach the page as text.
    image = workdir / MARKUP_IMAGE_NAME
    Image.linear_gradient("L").resize((128, 64)).convert("RGB").save(image, format="PNG")
    proc = ServerProcess(tiny_model_dir, workdir / "cache", workdir / "server.log", {MARKUP_WORLD: image})
    try:
        proc.wait_ok("/readyz", 120.0)  # the viewer asks for /worlds at once: the model must be loaded
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Debian's headless Chromium through chromedriver, with browser console logging on."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: install Debian's chromium and chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=800,600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_script_timeout(LOAD_TIMEOUT_S)
    try:
        yield browser
    finally:
        browser.quit()


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
        " pending: v.pendingTiles(), failed: v.failedTiles(),"
        " loadedImgs: document.querySelectorAll('img.leaflet-tile-loaded').length};")


def loaded_tile_paths(browser: WebDriver) -> set[str]:
    """URL paths of the tile images Leaflet shows as loaded."""
    srcs = browser.execute_script(
        "return Array.from(document.querySelectorAll('img.leaflet-tile-loaded'), (img) => img.src);")
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


def test_tiles_load_and_reach_the_server(server: ServerProcess, driver: WebDriver) -> None:
    """Opening / shows generated tiles, the loading hint clears, and the server counted the tile requests."""
    before = tile_request_count(server.base_url)
    open_viewer(driver, f"{server.base_url}/#earth/1/20/10")
    state = wait_tiles_settled(driver)
    assert state["failed"] == 0
    paths = loaded_tile_paths(driver)
    assert paths and all(TILE_PATH_RE.fullmatch(p) for p in paths), paths
    assert {TILE_PATH_RE.fullmatch(p)["z"] for p in paths} == {"1"}
    assert not driver.find_element(By.ID, "loading").is_displayed()
    after = tile_request_count(server.base_url)
    assert after - before >= len(paths), (before, after, paths)
    assert_no_console_errors(driver)


def test_pan_and_zoom_request_new_tiles(server: ServerProcess, driver: WebDriver) -> None:
    """Dragging the map and pressing + fetch tiles that were not on screen before."""
    open_viewer(driver, f"{server.base_url}/#earth/3/0/0")
    wait_tiles_settled(driver)
    first = loaded_tile_paths(driver)
    map_el = driver.find_element(By.ID, "map")

    ActionChains(driver).move_to_element(map_el).click_and_hold().move_by_offset(-200, 0) \
        .move_by_offset(-200, 0).release().perform()
    panned = wait_until(lambda: (loaded_tile_paths(driver) - first) and view_state(driver)["pending"] == 0
                        and loaded_tile_paths(driver), LOAD_TIMEOUT_S, "tiles after panning")
    assert view_state(driver)["lon"] > 1.0, "dragging left should move the view east"
    assert panned - first

    driver.find_element(By.CSS_SELECTOR, ".leaflet-control-zoom-in").click()
    wait_until(lambda: view_state(driver)["z"] == 4, 10, "zoom 4")
    zoomed = wait_until(
        lambda: (p := loaded_tile_paths(driver)) and view_state(driver)["pending"] == 0
        and any(TILE_PATH_RE.fullmatch(x)["z"] == "4" for x in p) and p,
        LOAD_TIMEOUT_S, "zoom-4 tiles")
    assert {x for x in zoomed if TILE_PATH_RE.fullmatch(x)["z"] == "4"}
    wait_until(lambda: re.fullmatch(r"#earth/4/-?[\d.]+/-?[\d.]+", view_state(driver)["hash"]), 10,
               "the permalink to follow the zoom")
    assert_no_console_errors(driver)


def test_permalink_restores_view_and_readouts(server: ServerProcess, driver: WebDriver) -> None:
    """#earth/6/48.85/2.35 opens at that view (on load and on hashchange), with matching readouts; screenshot."""
    open_viewer(driver, f"{server.base_url}/#earth/6/48.85/2.35")
    state = wait_tiles_settled(driver)
    assert (state["world"], state["z"]) == ("earth", 6)
    assert state["lat"] == pytest.approx(48.85, abs=1e-6) and state["lon"] == pytest.approx(2.35, abs=1e-6)
    assert state["hash"] == "#earth/6/48.85/2.35"

    expected_m_per_px = EQUATOR_M_PER_PX_Z0 * math.cos(math.radians(48.85)) / 2**6
    resolution = driver.find_element(By.ID, "resolution").text
    assert resolution == f"{expected_m_per_px:,.0f} m/px"

    ActionChains(driver).move_to_element_with_offset(driver.find_element(By.ID, "map"), 0, 0).perform()
    cursor = driver.find_element(By.ID, "cursor").text
    match = re.fullmatch(r"(\d+\.\d{5})° N, (\d+\.\d{5})° E", cursor)
    assert match, cursor
    assert float(match[1]) == pytest.approx(48.85, abs=0.05) and float(match[2]) == pytest.approx(2.35, abs=0.05)

    attribution = httpx.get(f"{server.base_url}/tiles/earth/tilejson.json", timeout=10.0).json()["attribution"]
    assert driver.find_element(By.CSS_SELECTOR, ".td-attribution").text == html.unescape(attribution).strip()

    ARTIFACTS_DIR.mkdir(exist_ok=True)
    shot = ARTIFACTS_DIR / "viewer.png"
    driver.save_screenshot(str(shot))
    print(f"viewer screenshot: {shot}")

    driver.execute_script("location.hash = '#earth/4/-33.9/18.4';")
    wait_until(lambda: (s := view_state(driver))["z"] == 4 and abs(s["lat"] + 33.9) < 1e-6 and s,
               10, "the view to follow the changed hash")
    assert_no_console_errors(driver)


def test_world_picker_lists_worlds_and_accepts_typed_names(server: ServerProcess, driver: WebDriver) -> None:
    """The picker shows the server's worlds; a typed name (when allowed) switches the tiles and the permalink."""
    listing = httpx.get(f"{server.base_url}/worlds", timeout=10.0).json()
    open_viewer(driver, f"{server.base_url}/")
    state = wait_tiles_settled(driver)
    options = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#world-select option")]
    assert options == [w["name"] for w in listing["worlds"]]
    assert state["world"] == listing["worlds"][0]["name"]

    typed = driver.find_element(By.ID, "world-input")
    if not listing["allow_arbitrary"]:
        assert not typed.is_displayed()
        return
    typed.send_keys("viewer-test", Keys.ENTER)
    wait_until(lambda: view_state(driver)["world"] == "viewer-test", 30, "the typed world")
    wait_until(lambda: (p := loaded_tile_paths(driver)) and view_state(driver)["pending"] == 0
               and all(TILE_PATH_RE.fullmatch(x)["world"] == "viewer-test" for x in p),
               LOAD_TIMEOUT_S, "tiles of the typed world")
    assert view_state(driver)["hash"].startswith("#viewer-test/")
    assert driver.find_element(By.ID, "world-select").get_attribute("value") == "viewer-test"
    assert_no_console_errors(driver)


def test_server_text_is_shown_as_text(server: ServerProcess, driver: WebDriver) -> None:
    """A world picked in the list whose attribution and description hold markup shows them literally, unparsed."""
    listing = httpx.get(f"{server.base_url}/worlds", timeout=10.0).json()
    marked = next(w for w in listing["worlds"] if w["name"] == MARKUP_WORLD)
    tilejson = httpx.get(marked["tilejson"], timeout=10.0).json()
    # /worlds carries plain text; TileJSON's attribution is HTML (escaped by the server), shown as its text.
    assert MARKUP_IMAGE_NAME in marked["attribution"] and MARKUP_IMAGE_NAME in marked["description"]
    assert html.unescape(tilejson["attribution"]) == marked["attribution"]

    open_viewer(driver, f"{server.base_url}/#earth/1/0/0")
    Select(driver.find_element(By.ID, "world-select")).select_by_value(MARKUP_WORLD)
    wait_until(lambda: view_state(driver)["hash"].startswith(f"#{MARKUP_WORLD}/1/"), 30, "the picked world")
    attribution = driver.find_element(By.CSS_SELECTOR, ".td-attribution")
    assert attribution.text.strip() == marked["attribution"]
    assert attribution.find_elements(By.TAG_NAME, "b") == []
    option = driver.find_element(By.CSS_SELECTOR, f"#world-select option[value='{MARKUP_WORLD}']")
    assert option.get_attribute("title") == marked["description"]
    wait_tiles_settled(driver)
    assert_no_console_errors(driver)


def test_api_docs_render_from_local_assets(server: ServerProcess, driver: WebDriver) -> None:
    """/docs is Swagger UI served by the app itself (no CDN): it lists the tile routes in a real browser."""
    html = httpx.get(f"{server.base_url}/docs", timeout=10.0).text
    assert "/vendor/swagger-ui/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    driver.get(f"{server.base_url}/docs")
    paths = wait_until(lambda: [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")],
                       LOAD_TIMEOUT_S, "Swagger UI to list the operations")
    assert any("/tiles/{world}/{z}/{x}/{y}" in p for p in paths), paths
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(r.startswith(server.base_url) for r in resources), resources
    assert_no_console_errors(driver)
