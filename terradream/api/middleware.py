"""ASGI middleware of the app: the configured proxy prefix as the request's root path, and HTTP request metrics.

Both are pure ASGI (no response buffering) and work under any ASGI server (uvicorn, granian, ...).
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"  # label of requests no route matched (404s), so paths never become label values


def under_root(path: str, root_path: str) -> bool:
    """Whether path already starts with the root path (as a whole segment)."""
    return path == root_path or path.startswith(root_path + "/")


class RootPath:
    """Sets scope["root_path"] to the prefix a reverse proxy strips (unless the server set one already) and, as ASGI
    wants and uvicorn's --root-path does, puts it in front of the path when the proxy stripped it.

    Routing and static files then ignore the prefix whether or not the proxy stripped it, and request.base_url
    includes it, so every URL the app hands out (TileJSON, WMTS, OGC API links, docs assets) leads back through the
    proxy.
    """

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        """Wrap app; root_path is '' (no prefix) or '/a/b' without a trailing slash."""
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with the prefix as its root path and in its path."""
        root = self.root_path
        if root and scope["type"] in ("http", "websocket") and not scope.get("root_path"):
            scope = {**scope, "root_path": root}
            if not under_root(scope["path"], root):
                scope["path"] = root + scope["path"]
                if scope.get("raw_path") is not None:
                    scope["raw_path"] = root.encode("utf-8") + scope["raw_path"]
        await self.app(scope, receive, send)


def route_label(scope: Scope) -> str:
    """The matched route's path template (e.g. /tiles/{world}/{z}/{x}/{y}.{fmt}): bounded label cardinality."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestMetrics:
    """Observes every HTTP request's latency (start to last body byte handed to the server) by method, route
    template and status in a Prometheus histogram; an exception escaping the app counts as status 500."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        """Wrap app; histogram has the labels method, route and status."""
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request; the router records the matched route on the scope it shares with us."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.histogram.labels(method=scope["method"], route=route_label(scope),
                                  status=str(status)).observe(time.perf_counter() - started)
