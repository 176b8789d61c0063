"""The viewer behind a reverse proxy that serves the server under a path prefix and strips it before forwarding.

The server here is not told the prefix (no --root-path), so every absolute URL it hands out lacks it: the viewer must
reach everything through URLs relative to its page. The proxy is a few lines of Python on a private port, enough to
forward GET/HEAD with the prefix stripped, as nginx's `location /prefix/ { proxy_pass http://upstream/; }` does.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from frontend.browser import (
    TILE_PATH_RE,
    ServerProcess,
    assert_no_console_errors,
    loaded_tile_paths,
    open_viewer,
    screenshot,
    wait_tiles_settled,
)

PREFIX = "/terradream"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def prefix_proxy_handler(upstream: str) -> type[BaseHTTPRequestHandler]:
    """A request handler that forwards PREFIX/... to upstream/... (keeping the client's Host, like nginx's
    `proxy_set_header Host $http_host`) and answers 404 outside the prefix."""
    target = urlsplit(upstream)

    class PrefixProxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self) -> None:
            """Forward this request without its prefix; relay status, headers and body."""
            if not self.path.startswith(PREFIX + "/"):
                self.send_error(404, "outside the proxied prefix")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=300)
            try:
                conn.request(self.command, self.path[len(PREFIX):], headers=headers)
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = forward

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            """Log nothing."""

    return PrefixProxy


@pytest.fixture(scope="module")
def proxied(server: ServerProcess) -> Iterator[str]:
    """The viewer's server behind the prefix-stripping proxy: its public base URL, http://127.0.0.1:PORT/terradream."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), prefix_proxy_handler(server.base_url))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{PREFIX}"
    finally:
        httpd.shutdown()
        httpd.server_close()


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
    urls = {k: driver.find_element(By.ID, f"url-{k}").get_attribute("value") for k in ("xyz", "tilejson", "wmts")}
    assert all(u.startswith(f"{proxied}/") for u in urls.values()), urls
    for url in (urls["xyz"].format(z=2, x=2, y=1), urls["tilejson"], urls["wmts"]):
        assert httpx.get(url, timeout=60.0).status_code == 200, url
    screenshot(driver, "viewer-prefix.png")
    assert_no_console_errors(driver)
