"""What every tile cache speaks: the key of a cached tile, purge scopes, and the TileCache protocol."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import mercantile

WORLD_PATTERN = re.compile(r"[a-z0-9-]{1,64}")
VERSION_PATTERN = re.compile(r"[A-Za-z0-9_.]{1,64}")


class CacheKey(NamedTuple):
    """One cached tile: a pure function of (world, model version, z, x, y); x, y in XYZ (y down) order."""

    world: str
    version: str
    z: int
    x: int
    y: int


class TileRange(NamedTuple):
    """The XYZ tiles of one zoom with min_x <= x <= max_x and min_y <= y <= max_y (inclusive): a purge scope."""

    z: int
    min_x: int
    min_y: int
    max_x: int
    max_y: int

    def contains(self, z: int, x: int, y: int) -> bool:
        """Whether tile (z, x, y) lies in this range."""
        return z == self.z and self.min_x <= x <= self.max_x and self.min_y <= y <= self.max_y


def check_names(world: str, version: str | None = None) -> None:
    """Raise ValueError unless world/version are safe in file names and Redis keys (no '/', ':', glob chars).

    Versions may not contain '-', so an MBTiles file name `{world}-{version}` splits back unambiguously.
    """
    if not WORLD_PATTERN.fullmatch(world):
        raise ValueError(f"invalid world name for the cache: {world!r}")
    if version is not None and not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"invalid model version for the cache: {version!r}")


def in_ranges(z: int, x: int, y: int, tile_ranges: Sequence[TileRange] | None) -> bool:
    """Whether tile (z, x, y) is inside any of tile_ranges; None means everywhere."""
    return tile_ranges is None or any(r.contains(z, x, y) for r in tile_ranges)


def bbox_tile_ranges(west_deg: float, south_deg: float, east_deg: float, north_deg: float,
                     zooms: Iterable[int]) -> list[TileRange]:
    """Tile ranges covering a WGS84 bbox at each zoom (two per zoom when it crosses the antimeridian, west > east)."""
    if west_deg > east_deg:
        return (bbox_tile_ranges(west_deg, south_deg, 180.0, north_deg, zooms)
                + bbox_tile_ranges(-180.0, south_deg, east_deg, north_deg, zooms))
    ranges = []
    for z in zooms:
        last = 2**z - 1
        top_left = mercantile.tile(west_deg, north_deg, z)
        bottom_right = mercantile.tile(east_deg, south_deg, z)
        ranges.append(TileRange(z, max(0, top_left.x), max(0, top_left.y),
                                min(last, bottom_right.x), min(last, bottom_right.y)))
    return ranges


@runtime_checkable
class TileCache(Protocol):
    """A thread-safe, synchronous store of encoded tiles (PNG bytes); a failing backend reads as a miss."""

    def get(self, key: CacheKey) -> bytes | None:
        """The cached bytes of one tile, or None on a miss (or when the backend is unreachable)."""
        ...

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, bytes]:
        """The cached tiles among keys; misses are omitted."""
        ...

    def put(self, key: CacheKey, data: bytes) -> None:
        """Store one tile atomically (readers see all of it or nothing)."""
        ...

    def put_many(self, items: Mapping[CacheKey, bytes]) -> None:
        """Store several tiles; each tile is atomic."""
        ...

    def purge(self, world: str, version: str | None = None,
              tile_ranges: Sequence[TileRange] | None = None) -> int:
        """Delete a world's tiles (one model version, or all when None), only inside tile_ranges when given.

        Returns how many tiles were removed. Use bbox_tile_ranges() to purge a lon/lat box.
        """
        ...

    def ping(self) -> bool:
        """Whether the backend is reachable right now."""
        ...

    def close(self) -> None:
        """Release connections and files; the cache is unusable afterwards."""
        ...

    def describe(self) -> str:
        """A one-line description safe for logs (never contains a password)."""
        ...
