"""The model's TileStore over a TileCache: tiles as canonical PNG bytes under CacheKey(world, version, z, x, y)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from terradream.cache.base import CacheKey, TileCache
from terradream.model.keys import TileKey
from terradream.server.imaging import decode_png, encode_png


class CacheTileStore:
    """Lets the Cascade read and write tiles of one model version in a (shared) TileCache.

    Every PNG it writes is also remembered in `written` until take_written() hands it over, so the generation worker
    answers requests with the very bytes it cached instead of encoding twice.
    """

    def __init__(self, cache: TileCache, version: str) -> None:
        """Store tiles of model `version` in `cache`."""
        self.cache = cache
        self.version = version
        self._written: dict[TileKey, bytes] = {}

    def cache_key(self, key: TileKey) -> CacheKey:
        """The cache key of a tile of this store's model version."""
        return CacheKey(key.world, self.version, key.z, key.x, key.y)

    def get_png(self, key: TileKey) -> bytes | None:
        """The cached PNG of one tile, or None."""
        return self.cache.get(self.cache_key(key))

    def get_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        """Decoded arrays of the cached tiles among keys (TileStore protocol)."""
        by_cache_key = {self.cache_key(k): k for k in keys}
        found = self.cache.get_many(list(by_cache_key))
        return {by_cache_key[ck]: decode_png(png) for ck, png in found.items()}

    def put_tiles(self, tiles: Mapping[TileKey, np.ndarray]) -> None:
        """Encode and cache tiles (TileStore protocol); each tile is written atomically by the cache."""
        encoded = {key: encode_png(array) for key, array in tiles.items()}
        self.cache.put_many({self.cache_key(k): png for k, png in encoded.items()})
        self._written.update(encoded)

    def take_written(self) -> dict[TileKey, bytes]:
        """The PNGs written since the last call (then forgets them); call only from the thread that renders."""
        written, self._written = self._written, {}
        return written
