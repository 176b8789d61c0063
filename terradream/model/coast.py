"""Smooth coastlines: real water coverage with GSHHG's digitising steps rounded off.

GSHHG's full-resolution shorelines are traced in places as ~200 m steps (the Tagus at Lisbon is one), which from z12
on draw as staircases. Water coverage is therefore smoothed over COAST_SMOOTH_M of ground and sharpened back to an
edge about a pixel wide: a coast is a smooth curve at every zoom, where the data put it to within its own accuracy.
Beyond COAST_MAX_ZOOM a window's water is that zoom's smoothed coast, upsampled (a wider kernel would only cost).
Rivers are lines drawn to their width and are not smoothed. Every value is a function of global pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from terradream.core.tiles import TILE_SIZE_PX
from terradream.model.lattice import WORLD_M, merc, separable_lerp

COAST_SMOOTH_M = 100.0  # ground metres over which a shoreline's steps are rounded off (GSHHG full is ~100 m)
COAST_MAX_ZOOM = 14  # finer windows upsample this zoom's smoothed water
EDGE_PX = 1.5  # width of the sharpened shoreline, in pixels

# (z, row0, col0, height, width) -> water share of every pixel, (height, width) float32
WaterWindow = Callable[[int, int, int, int, int], np.ndarray]


def smoothing_px(z: int) -> int:
    """Half-width in pixels of the box filter (applied twice) that rounds off a shoreline at zoom z; 0 where the
    steps are under a pixel.

    >>> [smoothing_px(z) for z in (9, 11, 14)]
    [0, 2, 14]"""
    return int(round(merc(COAST_SMOOTH_M) / (WORLD_M / (TILE_SIZE_PX << z))))


def smooth_water(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Water share of a window of global pixels at zoom z with its shorelines smoothed (see the module docstring)."""
    if z > COAST_MAX_ZOOM:
        return _upsampled(water, z, row0, col0, height, width)
    r = smoothing_px(z)
    if r < 1:
        return water(z, row0, col0, height, width)
    reach = 2 * r  # two box filters of half-width r: a triangle of half-width 2r
    grown = water(z, row0 - reach, col0 - reach, height + 2 * reach, width + 2 * reach)
    if not grown.any() or grown.min() == 1.0:  # no shore within reach: the filter gives back exact 0s or 1s
        return np.ascontiguousarray(grown[reach:-reach, reach:-reach])
    blurred = _box_cols(_box_cols(_box_rows(_box_rows(grown, r), r), r), r)
    gain = np.float32((2 * r + 1) / EDGE_PX)  # the triangle's edge rises 1 / (2r + 1) a pixel at its middle
    return np.clip((blurred - np.float32(0.5)) * gain + np.float32(0.5), 0.0, 1.0).astype(np.float32)


def _box_rows(a: np.ndarray, r: int) -> np.ndarray:
    """Means over 2r + 1 rows, losing r rows at each end; added tap by tap in one order, so a pixel's value does not
    depend on where its window starts."""
    n = a.shape[0] - 2 * r
    acc = a[0:n].copy()
    for j in range(1, 2 * r + 1):
        acc += a[j : j + n]
    return acc / np.float32(2 * r + 1)


def _box_cols(a: np.ndarray, r: int) -> np.ndarray:
    """_box_rows along columns."""
    return np.ascontiguousarray(_box_rows(np.ascontiguousarray(a.T), r).T)


def _upsampled(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Bilinear upsample of the smoothed water at COAST_MAX_ZOOM onto a window at zoom z > COAST_MAX_ZOOM (pixel
    centres to pixel centres; every weight is exact in binary, so any window gives a pixel the same value)."""
    scale = 1 << (z - COAST_MAX_ZOOM)
    rows = (np.arange(row0, row0 + height) + 0.5) / scale - 0.5  # positions in coarse pixel indices
    cols = (np.arange(col0, col0 + width) + 0.5) / scale - 0.5
    r_lo, c_lo = math.floor(rows[0]), math.floor(cols[0])
    coarse = smooth_water(water, COAST_MAX_ZOOM, r_lo, c_lo, math.floor(rows[-1]) - r_lo + 2,
                          math.floor(cols[-1]) - c_lo + 2)
    ri, ci = np.floor(rows).astype(np.intp) - r_lo, np.floor(cols).astype(np.intp) - c_lo
    rt, ct = (rows - np.floor(rows)).astype(np.float32), (cols - np.floor(cols)).astype(np.float32)
    return separable_lerp(coarse, (ri, rt), (ci, ct)).astype(np.float32)
