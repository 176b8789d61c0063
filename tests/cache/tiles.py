"""Real PNG tiles for cache tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def solid_png(rgb: tuple[int, int, int], size_px: int = 256) -> bytes:
    """A PNG of one colour (small: fast to write and compare)."""
    buffer = io.BytesIO()
    Image.new("RGB", (size_px, size_px), rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(seed: int, size_px: int = 256) -> bytes:
    """A PNG of random pixels (about 200 KB: large enough that a write takes a while)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size_px, size_px, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_rgb(data: bytes) -> np.ndarray:
    """Fully decode PNG bytes to an RGB array (raises on truncated or corrupt data)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image.convert("RGB"))
