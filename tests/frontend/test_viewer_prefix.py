"""The viewer behind a real nginx that serves the server under a path prefix and strips it before forwarding.

The server here is not told the prefix (no --root-path), so every absolute URL it hands out lacks it: the viewer must
reach everything through URLs relative to its page.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from support import NginxPrefixProxy

from frontend.browser import (
    TILE_PATH_RE,
    ServerProcess,
    assert_no_console_errors,
    loaded_tile_paths,
    open_viewer,
    screenshot,
    wait_panel_urls,
    wait_tiles_settled,
)

PREFIX = "/terradream"


@pytest.fixture(scope="module")
def proxied(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The viewer's server behind nginx under PREFIX: its public base URL, http://127.0.0.1:PORT/terradream."""
    proxy = NginxPrefixProxy(server.base_url, tmp_path_factory.mktemp("viewer-nginx"), PREFIX)
    proxy.start()
    try:
        yield proxy.url
    finally:
        proxy.stop()


def test_viewer_works_under_a_path_prefix(proxied: str, driver: WebDriver) -> None:
    """Through the proxy the viewer loads its files, the world list and tiles, all under the prefix, and its URL
    panel hands out prefixed URLs that work."""
    assert httpx.get(f"{proxied.removesuffix(PREFIX)}/worlds", timeout=10.0).status_code == 404  # only the prefix
    open_viewer(driver, f"{proxied}/#earth/2/20/10")
    state = wait_tiles_settled(driver)
    assert state["failed"] == 0 and state["world"] == "earth"
    paths = loaded_tile_paths(driver)
    assert paths and all((m := TILE_PATH_RE.fullmatch(p)) and m["prefix"] == PREFIX for p in paths), paths
    resources = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert resources and all(r.startswith(f"{proxied}/") for r in resources), resources
    options = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#world-select option")]
    assert "earth" in options and len(options) >= 2  # the world list came through the proxy

    driver.find_element(By.CSS_SELECTOR, "#urls summary").click()
    urls = wait_panel_urls(driver)
    assert all(u.startswith(f"{proxied}/") for u in urls.values()), urls
    for url in (urls["xyz"].format(z=2, x=2, y=1), urls["tilejson"], urls["wmts"]):
        assert httpx.get(url, timeout=60.0).status_code == 200, url
    screenshot(driver, "viewer-prefix.png")
    assert_no_console_errors(driver)
