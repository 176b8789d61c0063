"""Request size limits: an over-long URL gets a JSON 414 and an oversized header block a JSON 431.

The ASGI middleware answers requests that reached the app; the HTTP server's own bound (granian's HTTP/1 buffer,
parser_limit_bytes) caps what a connection may buffer before that, so memory stays bounded even for requests far
beyond the limits (the server refuses those itself and closes the connection).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

PARSER_SLACK_BYTES = 4096  # request line and framing beyond the app's limits that the parser still accepts


def url_bytes(scope: Scope) -> int:
    """Length of the request target as sent: raw path plus '?' and query string."""
    path = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
    query = scope.get("query_string", b"")
    return len(path) + (1 + len(query) if query else 0)


def header_bytes(scope: Scope) -> int:
    """Size of the header block as sent: 'name: value\\r\\n' per header."""
    return sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))


async def send_json(send: Send, status: int, detail: str) -> None:
    """Answer with a JSON {"detail": ...} body and close the connection."""
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Pure ASGI middleware: 414 for a URL longer than max_url_bytes, 431 for headers beyond max_header_bytes."""

    def __init__(self, app: ASGIApp, max_url_bytes: int, max_header_bytes: int) -> None:
        """Wrap app with the two limits."""
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse oversized HTTP requests before any routing; pass everything else through."""
        if scope["type"] == "http":
            size = url_bytes(scope)
            if size > self.max_url_bytes:
                await send_json(send, 414, f"request URL is {size} bytes; this server accepts at most "
                                           f"{self.max_url_bytes}")
                return
            size = header_bytes(scope)
            if size > self.max_header_bytes:
                await send_json(send, 431, f"request headers are {size} bytes; this server accepts at most "
                                           f"{self.max_header_bytes}")
                return
        await self.app(scope, receive, send)


def parser_limit_bytes(max_url_bytes: int, max_header_bytes: int) -> int:
    """The most a connection may buffer for one request's head: a little above the app's own limits, so requests
    just over them still reach the app for its JSON 414 or 431.

    >>> parser_limit_bytes(8192, 16384)
    28672
    """
    return max_url_bytes + max_header_bytes + PARSER_SLACK_BYTES
