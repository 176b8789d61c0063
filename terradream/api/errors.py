"""The one exception -> HTTP status table and the handlers that answer with it (TiTiler's DEFAULT_STATUS_CODES).

Every error carries its own message; RetryLater errors add Retry-After. Anything else is a 500 whose traceback goes
to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from terradream.core.errors import RateLimited, RetryLater, TerradreamError, TileOutOfRange, UnknownWorld

log = logging.getLogger("terradream.server")  # the HTTP server's log name, as operators filter on it

DEFAULT_STATUS_CODES: dict[type[Exception], int] = {
    TerradreamError: 400,  # anything else the generator blames on the request
    TileOutOfRange: 404,
    UnknownWorld: 404,
    RetryLater: 503,  # queue full, model loading, cluster scheduler or cache unreachable
    RateLimited: 429,  # this client started too many new generations; cached tiles still answer
}

Handler = Callable[[Request, Exception], Coroutine[Any, Any, JSONResponse]]


def status_of(exc: Exception, status_codes: Mapping[type[Exception], int] = DEFAULT_STATUS_CODES) -> int:
    """The status of an exception: its most specific class in the table, else 500."""
    return next((status_codes[cls] for cls in type(exc).__mro__ if cls in status_codes), 500)


def exception_handler(status: int) -> Handler:
    """A handler answering `{"detail": str(exc)}` with status, and Retry-After for RetryLater errors."""
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RetryLater) else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)
    return handle


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """An unexpected failure (e.g. generation crashed): 500 with a JSON detail; the traceback goes to the log."""
    log.error("request failed", exc_info=exc, extra={"path": request.url.path})
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


def register_exception_handlers(app: FastAPI,
                                status_codes: Mapping[type[Exception], int] = DEFAULT_STATUS_CODES) -> None:
    """Answer every class of the table with its status (Starlette picks the most specific), anything else with 500."""
    for exc_class, status in status_codes.items():
        app.add_exception_handler(exc_class, exception_handler(status))
    app.add_exception_handler(Exception, internal_error)
