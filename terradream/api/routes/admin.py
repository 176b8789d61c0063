"""Admin routes (cache purge), present only when an admin token is configured and guarded by `Bearer <token>`."""

# No `from __future__ import annotations` here: FastAPI must evaluate Annotated[..., Depends(...)] at runtime.
import logging
import secrets
from typing import Annotated, ClassVar

from anyio import to_thread
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from terradream.api.dependencies import ResponseKey, Runtime, get_runtime
from terradream.api.factory import RouterFactory
from terradream.core.regions import TileRange, bbox_tile_ranges
from terradream.core.tiles import WEB_MERCATOR_MAX_LAT_DEG, WORLD_NAME_PATTERN
from terradream.engine.engine import Engine

log = logging.getLogger("terradream.api.routes.admin")
bearer = HTTPBearer(auto_error=False, description="The server's admin token (TERRADREAM_ADMIN_TOKEN).")


class PurgeRequest(BaseModel):
    """Which tiles to forget: a world, optionally one model version, a lon/lat box and some zooms."""

    model_config = ConfigDict(extra="forbid")

    world: str = Field(pattern=f"^{WORLD_NAME_PATTERN}$", description="World whose tiles are purged.")
    version: str | None = Field(None, pattern=r"^[A-Za-z0-9_.]{1,64}$",
                                description="Only this model version (default: every version).")
    bbox: tuple[float, float, float, float] | None = Field(
        None, description="west, south, east, north in degrees (west > east crosses the antimeridian).")
    zooms: list[Annotated[int, Field(ge=0, le=30)]] | None = Field(
        None, max_length=31, description="Only these zooms (default: all; with a bbox, 0..maxzoom).")

    @model_validator(mode="after")
    def _bbox_in_range(self) -> "PurgeRequest":
        """Longitudes in [-180, 180], latitudes in Web Mercator's range, south < north."""
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if not (-180 <= west <= 180 and -180 <= east <= 180):
                raise ValueError("bbox longitudes must lie in [-180, 180]")
            if not (-WEB_MERCATOR_MAX_LAT_DEG <= south < north <= WEB_MERCATOR_MAX_LAT_DEG):
                raise ValueError(f"bbox latitudes must satisfy -{WEB_MERCATOR_MAX_LAT_DEG:.4f} <= south < north "
                                 f"<= {WEB_MERCATOR_MAX_LAT_DEG:.4f}")
        return self


class PurgeResult(BaseModel):
    """What a purge removed."""

    world: str
    version: str | None
    tiles_removed: int = Field(description="Tiles deleted from the shared/persistent cache.")
    responses_dropped: int = Field(description="Encoded responses dropped from this process's memory.")


def purge_ranges(request: PurgeRequest, maxzoom: int) -> list[TileRange] | None:
    """The tile ranges a purge request covers; None means the whole world."""
    if request.bbox is None and request.zooms is None:
        return None
    zooms = sorted(set(request.zooms if request.zooms is not None else range(maxzoom + 1)))
    if request.bbox is None:
        return [TileRange(z, 0, 0, 2**z - 1, 2**z - 1) for z in zooms]
    return bbox_tile_ranges(*request.bbox, zooms)


def response_survives(key: ResponseKey, world: str, version: str | None) -> bool:
    """Whether a held response is outside a purge (every response of the world goes: @2x ones derive from z+1)."""
    return not (key[0] == world and (version is None or key[1] == version))


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def require_admin(runtime: Annotated[Runtime, Depends(get_runtime)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Dependency: pass only with `Authorization: Bearer <admin token>`; else 401 (404 when no token is set)."""
    expected = runtime.settings.admin_token
    if expected is None:
        raise HTTPException(404, "Not Found")
    if credentials is None:
        raise HTTPException(401, "admin routes need an `Authorization: Bearer <token>` header",
                            headers={"WWW-Authenticate": "Bearer"})
    if not token_matches(credentials.credentials, expected.get_secret_value()):
        log.warning("admin request with a wrong token refused")
        raise HTTPException(401, "wrong admin token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class AdminFactory(RouterFactory):
    """Builds the /admin router; include it only when Settings.admin_token is set."""

    tags: ClassVar[list[str]] = ["admin"]

    def register_routes(self) -> None:
        """POST /admin/purge."""
        runtime_dep, engine_dep = self.runtime_dependency, self.engine_dependency

        @self.router.post("/admin/purge", summary="Purge cached tiles of a world",
                          dependencies=[Depends(require_admin)],
                          responses={401: {"description": "Missing or wrong bearer token."},
                                     503: {"description": "The cache back end is unreachable; retry later."}})
        async def purge(body: PurgeRequest, runtime: Annotated[Runtime, Depends(runtime_dep)],
                        engine: Annotated[Engine, Depends(engine_dep)]) -> PurgeResult:
            """Delete a world's tiles (one version or all, a bbox and zooms or everything) from every cache tier.

            Tiles being generated right now may be written again when they finish.
            """
            ranges = purge_ranges(body, runtime.settings.maxzoom)
            try:
                removed = await to_thread.run_sync(engine.cache.purge, body.world, body.version, ranges)
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from exc
            except Exception as exc:  # Redis down: nothing was promised, say so
                log.warning("admin purge failed", extra={"world": body.world, "error": type(exc).__name__})
                raise HTTPException(503, f"cache back end unreachable ({type(exc).__name__}); retry later",
                                    headers={"Retry-After": str(runtime.settings.retry_after_s)}) from exc
            dropped = runtime.responses.purge(lambda key: response_survives(key, body.world, body.version))
            log.warning("admin purge", extra={"world": body.world, "version": body.version or "all",
                                              "ranges": "all" if ranges is None else len(ranges),
                                              "removed": removed})
            return PurgeResult(world=body.world, version=body.version, tiles_removed=removed,
                               responses_dropped=dropped)
