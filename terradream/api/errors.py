"""Exception handlers: the generator's and the service's errors as JSON answers with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from terradream.core.errors import TerradreamError, TileOutOfRange, UnknownWorld
from terradream.engine.admission import RateLimited
from terradream.engine.generation import Overloaded
from terradream.engine.engine import NotReady

log = logging.getLogger("terradream.server")


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    """Outside the tile matrix, or an unknown / malformed / disallowed world: 404."""
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Queue full or model not loaded: 503 with Retry-After."""
    retry_after_s = getattr(exc, "retry_after_s", 1)
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(retry_after_s)})


async def too_many_requests(request: Request, exc: Exception) -> JSONResponse:
    """This client started too many new generations: 429 with Retry-After (cached tiles still answer)."""
    retry_after_s = getattr(exc, "retry_after_s", 1)
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(retry_after_s)})


async def bad_request(request: Request, exc: Exception) -> JSONResponse:
    """Any other error the generator blames on the request: 400."""
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """An unexpected failure (e.g. generation crashed): 500 with a JSON detail; the traceback goes to the log."""
    log.error("request failed", exc_info=exc, extra={"path": request.url.path})
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


def register_exception_handlers(app: FastAPI) -> None:
    """Install every handler above on app."""
    app.add_exception_handler(TileOutOfRange, not_found)
    app.add_exception_handler(UnknownWorld, not_found)
    app.add_exception_handler(TerradreamError, bad_request)
    app.add_exception_handler(Overloaded, unavailable)
    app.add_exception_handler(RateLimited, too_many_requests)
    app.add_exception_handler(NotReady, unavailable)
    app.add_exception_handler(Exception, internal_error)
