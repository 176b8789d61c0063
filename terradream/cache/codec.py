"""Tile image codecs: canonical PNG bytes <-> uint8 RGB arrays, response formats, and 512 px (@2x) assembly."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from functools import cache

import numpy as np
from PIL import Image

JPEG_QUALITY = 90
WEBP_QUALITY = 90


class TileFormat(str, Enum):
    """Encodings a tile can be served in (the URL suffix)."""

    png = "png"
    jpg = "jpg"
    webp = "webp"

    @property
    def media_type(self) -> str:
        """The Content-Type of this encoding."""
        return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[self.value]


def encode_png(array: np.ndarray) -> bytes:
    """The canonical cached form of a tile: PNG bytes of a uint8 (H, W, 3) RGB array."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), "RGB").save(out, format="PNG", compress_level=6)
    return out.getvalue()


@cache
def _encoders(pid: int) -> ThreadPoolExecutor:
    """Two threads for PNG encoding: zlib runs without the GIL, so a new block's tiles are encoded side by side.
    One pool per process (pid), as a forked worker cannot use its parent's threads."""
    return ThreadPoolExecutor(2, thread_name_prefix="png")


def encode_pngs(arrays: Sequence[np.ndarray]) -> list[bytes]:
    """encode_png of several tiles, two at a time (the same bytes as one by one)."""
    return list(_encoders(os.getpid()).map(encode_png, arrays)) if len(arrays) > 1 else [encode_png(a) for a in arrays]


def decode_png(data: bytes) -> np.ndarray:
    """A uint8 (H, W, 3) RGB array from PNG (or any Pillow-readable) bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def encode(array: np.ndarray, fmt: TileFormat) -> bytes:
    """Encode an RGB array in a response format."""
    if fmt is TileFormat.png:
        return encode_png(array)
    out = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), "RGB")
    if fmt is TileFormat.jpg:
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(out, format="WEBP", quality=WEBP_QUALITY)
    return out.getvalue()


def transcode_png(png: bytes, fmt: TileFormat) -> bytes:
    """Canonical PNG bytes in the requested format (PNG passes through untouched)."""
    return png if fmt is TileFormat.png else encode(decode_png(png), fmt)


def stitch_children(children_png: Sequence[bytes]) -> np.ndarray:
    """One (2H, 2W, 3) array from four child tiles given row-major (NW, NE, SW, SE)."""
    nw, ne, sw, se = (decode_png(p) for p in children_png)
    return np.concatenate([np.concatenate([nw, ne], axis=1), np.concatenate([sw, se], axis=1)], axis=0)


def upscale_2x(png: bytes) -> np.ndarray:
    """A tile upscaled to twice its size (Lanczos): @2x past maxzoom, where no finer children exist."""
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        return np.asarray(rgb.resize((rgb.width * 2, rgb.height * 2), Image.Resampling.LANCZOS), dtype=np.uint8)
