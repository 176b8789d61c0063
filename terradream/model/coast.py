"""Smooth coastlines: real water coverage with GSHHG's digitising steps rounded off.

GSHHG's full-resolution shorelines are traced in places as ~200 m steps (the Tagus at Lisbon is one), which from z12
on draw as staircases. Water coverage is therefore smoothed over COAST_SMOOTH_M of ground and sharpened back to an
edge about a pixel wide: a coast is a smooth curve at every zoom, where the data put it to within its own accuracy.
Beyond COAST_MAX_ZOOM a window's water is that zoom's smoothed coast, upsampled (a wider kernel would only cost).
Rivers are lines drawn to their width and are not smoothed. Along sea and lake shores where slow noise allows, land
within BEACH_M of the water is sand unless the ground is rugged (cliffs), and water within SURF_M of the land breaks
into foam. Every value is a function of global pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from terradream.core.tiles import TILE_SIZE_PX
from terradream.model.lattice import WORLD_M, Grid, fbm, merc, over, ramp, separable_lerp

COAST_SMOOTH_M = 100.0  # ground metres over which a shoreline's steps are rounded off (GSHHG full is ~100 m)
COAST_MAX_ZOOM = 14  # finer windows upsample this zoom's smoothed water
EDGE_PX = 1.5  # width of the sharpened shoreline, in pixels
BEACH_M = 70.0  # how far sand reaches inland from a sea or lake shore (ground metres)
SURF_M = 25.0  # how far surf reaches out from such a shore (ground metres)
SHORE_MIN_PX = 0.1  # beaches and surf from where BEACH_M is this much of a pixel
SURF_FOAM_M, SURF_FOAM_SHARE, SURF_ALPHA = 40.0, (0.35, 0.65), 0.75  # foam noise (cell, ground metres) and cover
BEACH_NOISE_M, BEACH_SHARE = 6000.0, (0.42, 0.5)  # slow noise (cell, ground metres) over which shores turn sandy
BEACH_MAX_RUGGEDNESS = (0.3, 0.6)  # ruggedness over which beaches give way to cliffs
SAND = (0.88, 0.82, 0.68)
FOAM = (0.86, 0.89, 0.89)

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
        return _upsampled(lambda *w: (smooth_water(water, *w),), z, row0, col0, height, width)[0]
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


def shore_shares(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """(sand, surf): the share of each pixel of a window that is land within BEACH_M of a sea or lake shore
    (smooth_water's), and water within SURF_M of one; None where there is no shore. Where a width is under a pixel,
    the pixels at the shore are about that share of it, so its colour enters the cascade's means at the zoom where it
    is a tenth of a pixel; finer than COAST_MAX_ZOOM both are that zoom's shares upsampled and sharpened back to an
    edge about a pixel wide there."""
    if z > COAST_MAX_ZOOM:
        def coarse(*w: int) -> tuple[np.ndarray, ...]:
            shares = shore_shares(water, *w)
            return (np.zeros(w[-2:], np.float32),) * 2 if shares is None else shares

        sand, surf = (ramp(share, 0.3, 0.7) for share in _upsampled(coarse, z, row0, col0, height, width))
        return (sand, surf) if sand.any() or surf.any() else None
    px_m = WORLD_M / (TILE_SIZE_PX << z)
    sand_px, surf_px = merc(BEACH_M) / px_m, merc(SURF_M) / px_m
    if sand_px < SHORE_MIN_PX:
        return None
    r, rs = max(1, int(round(sand_px))), max(1, int(round(surf_px)))
    grown = smooth_water(water, z, row0 - r, col0 - r, height + 2 * r, width + 2 * r)
    if not grown.any() or grown.min() == 1.0:
        return None
    inner = grown[r:-r, r:-r]
    land = 1 - grown[r - rs : grown.shape[0] - r + rs, r - rs : grown.shape[1] - r + rs]
    sand = _within(grown, r) * (1 - inner) * np.float32(min(1.0, sand_px))
    surf = _within(land, rs) * inner * np.float32(min(1.0, surf_px))
    return sand, surf


def _within(a: np.ndarray, r: int) -> np.ndarray:
    """Whether any of a (a share in [0, 1]) lies within r pixels (box), on a's inner part (r pixels less each side):
    1 up to r pixels from it, falling to 0 over the next half pixel."""
    return ramp(_box_cols(_box_rows(a, r), r), 0.0, 0.5 / (2 * r + 1))


def paint_shore(seed: int, g: Grid, c: np.ndarray, shares: tuple[np.ndarray, np.ndarray], rugged: np.ndarray
                ) -> np.ndarray:
    """Sand and surf (shore_shares, (H, W) each) over colours c (H, W, 3) on shores the slow beach noise picks, sand
    where the ground is not rugged (cliffs), surf broken into foam by finer noise; c is changed in place."""
    sand, surf = shares
    sandy = ramp(fbm(seed, "beach", g, merc(BEACH_NOISE_M), 2), *BEACH_SHARE)
    c = over(c, sand * sandy * (1 - ramp(rugged, *BEACH_MAX_RUGGEDNESS)), SAND)
    foam = ramp(fbm(seed, "surf", g, merc(SURF_FOAM_M), 3), *SURF_FOAM_SHARE)
    return over(c, surf * sandy * foam * np.float32(SURF_ALPHA), FOAM)


def _upsampled(coarse: Callable[[int, int, int, int, int], tuple[np.ndarray, ...]], z: int, row0: int, col0: int,
               height: int, width: int) -> tuple[np.ndarray, ...]:
    """Bilinear upsample of the arrays coarse gives for one window at COAST_MAX_ZOOM (read once) onto a window at
    zoom z > COAST_MAX_ZOOM (pixel centres to pixel centres; every weight is exact in binary, so any window gives a
    pixel the same value)."""
    scale = 1 << (z - COAST_MAX_ZOOM)
    rows = (np.arange(row0, row0 + height) + 0.5) / scale - 0.5  # positions in coarse pixel indices
    cols = (np.arange(col0, col0 + width) + 0.5) / scale - 0.5
    r_lo, c_lo = math.floor(rows[0]), math.floor(cols[0])
    values = coarse(COAST_MAX_ZOOM, r_lo, c_lo, math.floor(rows[-1]) - r_lo + 2, math.floor(cols[-1]) - c_lo + 2)
    ri, ci = np.floor(rows).astype(np.intp) - r_lo, np.floor(cols).astype(np.intp) - c_lo
    rt, ct = (rows - np.floor(rows)).astype(np.float32), (cols - np.floor(cols)).astype(np.float32)
    return tuple(separable_lerp(v, (ri, rt), (ci, ct)).astype(np.float32) for v in values)


# what decides the coast's numbers (part of the model version)
SETTINGS = (COAST_SMOOTH_M, COAST_MAX_ZOOM, EDGE_PX, BEACH_M, SURF_M, SHORE_MIN_PX, BEACH_NOISE_M, BEACH_SHARE,
            BEACH_MAX_RUGGEDNESS, SURF_FOAM_M, SURF_FOAM_SHARE, SURF_ALPHA, SAND, FOAM)
