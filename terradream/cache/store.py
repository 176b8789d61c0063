"""The model's TileStore over a TileCache: tiles as canonical PNG bytes under CacheKey(world, version, z, x, y)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence

import numpy as np

from terradream.cache.base import CacheKey, TileCache
from terradream.cache.codec import decode_png, encode_pngs
from terradream.core.keys import TileKey
from terradream.core.tiles import TILE_SIZE_PX

log = logging.getLogger("terradream.cache.store")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the (empty, fixed-CRC) last chunk of every whole PNG


def is_whole_tile_png(data: bytes) -> bool:
    """Cheap check that cached bytes are one whole 256x256 PNG: signature, IHDR size, IEND at the very end.

    Truncated or foreign entries fail it, so they are regenerated instead of served.
    """
    if len(data) < 8 + 25 + 12 or not data.startswith(PNG_SIGNATURE) or not data.endswith(PNG_IEND):
        return False
    if data[12:16] != b"IHDR":
        return False
    width, height = struct.unpack(">II", data[16:24])
    return width == TILE_SIZE_PX and height == TILE_SIZE_PX


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
        """The cached PNG of one tile, or None (also for a damaged entry: it is regenerated and overwritten)."""
        png = self.cache.get(self.cache_key(key))
        return png if png is None or self._whole(key, png) else None

    def get_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        """Decoded arrays of the cached tiles among keys (TileStore protocol); damaged entries count as missing."""
        by_cache_key = {self.cache_key(k): k for k in keys}
        found = self.cache.get_many(list(by_cache_key))
        arrays: dict[TileKey, np.ndarray] = {}
        for cache_key, png in found.items():
            key = by_cache_key[cache_key]
            if self._whole(key, png):
                try:
                    arrays[key] = decode_png(png)
                except (OSError, ValueError, SyntaxError, EOFError):  # whole-looking but undecodable: regenerate
                    log.warning("undecodable cached tile ignored", extra={"tile": "/".join(map(str, key))})
        return arrays

    @staticmethod
    def _whole(key: TileKey, png: bytes) -> bool:
        """is_whole_tile_png, logging the entries it rejects."""
        if is_whole_tile_png(png):
            return True
        log.warning("damaged cached tile ignored", extra={"tile": "/".join(map(str, key)), "bytes": len(png)})
        return False

    def put_tiles(self, tiles: Mapping[TileKey, np.ndarray]) -> None:
        """Encode and cache tiles (TileStore protocol); each tile is written atomically by the cache."""
        encoded = dict(zip(tiles, encode_pngs(list(tiles.values())), strict=True))
        self.cache.put_many({self.cache_key(k): png for k, png in encoded.items()})
        self._written.update(encoded)

    def take_written(self) -> dict[TileKey, bytes]:
        """The PNGs written since the last call (then forgets them); call only from the thread that renders."""
        written, self._written = self._written, {}
        return written
