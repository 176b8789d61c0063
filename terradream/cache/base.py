"""What every tile cache speaks: the key of a cached tile, safe names, and the TileCache protocol."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from terradream.core.regions import TileRange
from terradream.core.tiles import WORLD_NAME_RE

VERSION_PATTERN = re.compile(r"[A-Za-z0-9_.]{1,64}")


class CacheKey(NamedTuple):
    """One cached tile: a pure function of (world, model version, z, x, y); x, y in XYZ (y down) order."""

    world: str
    version: str
    z: int
    x: int
    y: int


def check_names(world: str, version: str | None = None) -> None:
    """Raise ValueError unless world/version are safe in file names and Redis keys (no '/', ':', glob chars).

    Versions may not contain '-', so an MBTiles file name `{world}-{version}` splits back unambiguously.
    """
    if not WORLD_NAME_RE.fullmatch(world):
        raise ValueError(f"invalid world name for the cache: {world!r}")
    if version is not None and not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"invalid model version for the cache: {version!r}")


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
