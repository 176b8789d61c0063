"""Quality measures of generated tiles, shared by the tests and the benchmarks: seams, cross-zoom PSNR, colour drift."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from terradream.core.keys import TileKey
from terradream.model.worlds import area_downsample2

TileFn = Callable[[TileKey], np.ndarray]


def seam_ratio_pair(a: np.ndarray, b: np.ndarray, horizontal: bool) -> tuple[float, float]:
    """(mean |difference| across the shared border, mean |difference| between adjacent interior columns/rows that
    straddle an 8x8 block boundary).

    Tile borders fall between the blocks of every ancestor's pixels (2x2 under the parent's, 4x4 under the
    grandparent's, ...), and each level's exact projection onto its parent leaves such boundaries a little sharper,
    which on smooth ground (calm water, a featureless planet) would read as a seam. So borders are compared with
    interior pairs across the boundaries of three ancestors' pixels (every 8 px), not with every neighbour pair.
    horizontal=True: b lies east of a (compare a's last column with b's first); else b lies south.
    """
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if not horizontal:
        a, b = a.transpose(1, 0, 2), b.transpose(1, 0, 2)
    border = np.abs(a[:, -1] - b[:, 0]).mean()
    interior = 0.5 * (np.abs(a[:, 8::8] - a[:, 7:-1:8]).mean() + np.abs(b[:, 8::8] - b[:, 7:-1:8]).mean())
    return float(border), float(interior)


def seam_ratio(tile: TileFn, world: str, z: int, x0: int, y0: int, n: int = 4) -> float:
    """The seam ratio of an n x n block of tiles: border differences over interior differences, averaged over pairs."""
    grid = {(dx, dy): tile(TileKey(world, z, x0 + dx, y0 + dy)) for dy in range(n) for dx in range(n)}
    ratios = []
    for (dx, dy), img in grid.items():
        if dx + 1 < n:
            border, interior = seam_ratio_pair(img, grid[(dx + 1, dy)], True)
            ratios.append(border / max(interior, 1e-9))
        if dy + 1 < n:
            border, interior = seam_ratio_pair(img, grid[(dx, dy + 1)], False)
            ratios.append(border / max(interior, 1e-9))
    return float(np.mean(ratios))


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def cross_zoom_psnr_db(tile: TileFn, parent: TileKey) -> float:
    """PSNR between a parent tile and the 2x2 area-downsample of its four children."""
    return psnr_db(area_downsample2([tile(c) for c in parent.children()]), tile(parent))


def mean_colour(img: np.ndarray) -> np.ndarray:
    """Mean RGB of an image."""
    return img.reshape(-1, 3).astype(np.float64).mean(axis=0)


def descendant_colour_error(tile: TileFn, ancestor: TileKey, levels: int) -> float:
    """Relative difference between the mean colour of all tiles `levels` below an ancestor and the ancestor's mean."""
    n = 1 << levels
    keys = [TileKey(ancestor.world, ancestor.z + levels, ancestor.x * n + i, ancestor.y * n + j)
            for j in range(n) for i in range(n)]
    below = np.mean([mean_colour(tile(k)) for k in keys], axis=0)
    above = mean_colour(tile(ancestor))
    return float(np.abs(below - above).sum() / max(above.sum(), 1e-9))
