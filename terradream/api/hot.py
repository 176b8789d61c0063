"""The cache-hit fast path: a pure ASGI layer that answers GET/HEAD /tiles/... from the response LRU.

A hot tile then costs a regex match, a dict lookup and two ASGI messages: no routing, no dependency injection, no
worker-thread hop. Its answers carry the same status, headers and bodies as the FastAPI tile route (ETag,
Cache-Control, X-Cache, 304 on If-None-Match); whatever it cannot answer from memory (a miss, an odd query, the model
still loading) falls through to that route, which validates, renders and fills the LRU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from terradream.api.dependencies import ResponseKey, Runtime
from terradream.api.routes.tiles import TILE_2X_PATH, TILE_PATH, etag_matches, tile_cache_control, tile_etag
from terradream.cache.codec import TileFormat
from terradream.core.keys import TileKey

HOT_PATH_RE = re.compile(r"/tiles/([^/]+)/(\d{1,2})/(\d{1,10})/(\d{1,10})(@2x)?\.(png|jpg|webp)")
PLAIN_QUERY_RE = re.compile(rb"(?:v=[A-Za-z0-9_.\-]*)?")  # none, or one ?v= that needs no percent-decoding
MEMO_MAX_ENTRIES = 65_536  # precomputed header sets; cleared when full (they are cheap to recompute)


@dataclass(frozen=True)
class HotRoute:
    """Stands in for the matched route on the scope, so request metrics label a fast-path answer as the route's."""

    path: str


HOT_ROUTES = {False: HotRoute(TILE_PATH), True: HotRoute(TILE_2X_PATH)}


@dataclass(frozen=True)
class HotEntry:
    """What a tile URL answers with besides its body: the response-LRU key and the precomputed header lines."""

    key: ResponseKey
    etag: str
    not_modified: list[tuple[bytes, bytes]]  # the 304's headers (ETag, Cache-Control), as the route sends them
    content_type: bytes


class HotTiles:
    """Answers cached tile requests ahead of FastAPI; sits inside CORSMiddleware, so CORS headers stay identical."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        """Wrap app (the rest of the FastAPI stack), reading runtime's engine and response LRU."""
        self.app = app
        self.runtime = runtime
        self._memo: dict[tuple[str, bytes], HotEntry | None] = {}
        self._version = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a GET/HEAD hit from memory, else hand the request on unchanged."""
        path: str = scope["path"] if scope["type"] == "http" else ""
        root_path = scope.get("root_path", "")
        if root_path and path.startswith(root_path):  # under a prefix (--root-path): route on the rest, as Starlette
            path = path[len(root_path):]
        if not path.startswith("/tiles/") or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        entry = self._entry(path, scope["query_string"])
        body = self.runtime.responses.get(entry.key) if entry is not None else None
        if entry is None or body is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = HOT_ROUTES[entry.key[6] == 2]  # the key ends with the scale
        if_none_match = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": list(entry.not_modified)})
            await send({"type": "http.response.body", "body": b""})
            return
        self.runtime.hot_hits += 1
        self.runtime.metrics.tile_requests.labels(cache="hit").inc()
        headers = [*entry.not_modified, (b"x-cache", b"hit"), (b"content-length", str(len(body)).encode()),
                   (b"content-type", entry.content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _entry(self, path: str, query: bytes) -> HotEntry | None:
        """The memoised HotEntry of a URL, or None when the fast path must not answer it (the route will)."""
        engine = self.runtime.engine
        if engine is None:
            return None
        if engine.version != self._version:  # a new engine: forget headers computed for the old model version
            self._memo.clear()
            self._version = engine.version
        memo_key = (path, query)
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        entry = self._compute(path, query, engine.version)
        if len(self._memo) >= MEMO_MAX_ENTRIES:
            self._memo.clear()
        self._memo[memo_key] = entry
        return entry

    def _compute(self, path: str, query: bytes, version: str) -> HotEntry | None:
        """Parse a tile URL the way the route's parameters do; None for anything but a plain tile path and ?v=."""
        match = HOT_PATH_RE.fullmatch(path)
        if match is None or not PLAIN_QUERY_RE.fullmatch(query):
            return None
        world, z, x, y, at2x, fmt_name = match.groups()
        fmt, scale = TileFormat(fmt_name), 2 if at2x else 1
        requested_version = query[2:].decode("ascii") if query else None
        key = TileKey(world, int(z), int(x), int(y))
        etag = tile_etag(key, version, fmt, scale)
        cache_control = tile_cache_control(self.runtime.settings, requested_version, version)
        return HotEntry((world, version, key.z, key.x, key.y, fmt.value, scale), etag,
                        [(b"etag", etag.encode("latin-1")), (b"cache-control", cache_control.encode("latin-1"))],
                        fmt.media_type.encode("latin-1"))
