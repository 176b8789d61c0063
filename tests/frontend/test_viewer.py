"""The Leaflet viewer in real headless Chromium against the real `terradream serve` process with a tiny model."""

from __future__ import annotations

import html
import math
import re

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from frontend.browser import (
    LOAD_TIMEOUT_S,
    MARKUP_IMAGE_NAME,
    MARKUP_WORLD,
    TILE_PATH_RE,
    ServerProcess,
    assert_no_console_errors,
    loaded_tile_paths,
    open_viewer,
    screenshot,
    tile_request_count,
    view_state,
    wait_tiles_settled,
    wait_until,
)

EQUATOR_M_PER_PX_Z0 = 156543.034


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

    screenshot(driver, "viewer.png")

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
