"""Smooth coastlines: real water coverage with GSHHG's digitising steps rounded off.

GSHHG's full-resolution shorelines are traced in places as ~200 m steps (the Tagus at Lisbon is one), which from z12
on draw as staircases. Water coverage is therefore smoothed over COAST_SMOOTH_M of ground and sharpened back to an
edge about a pixel wide: a coast is a smooth curve at every zoom, where the data put it to within its own accuracy.
Beyond COAST_MAX_ZOOM a window's water is that zoom's smoothed coast, upsampled (a wider kernel would only cost) and
then sharpened to an edge of the finer zoom's pixels.
Rivers are lines drawn to their width and are not smoothed. Along sea and lake shores where slow noise allows, land
within BEACH_M of the water is sand unless the ground is rugged (cliffs). Where the water is open (not a lake or an
estuary), water within SURF_M of the land breaks into foam, and off sandy shores the surf zone is paler water crossed
by lines of breaking waves. All are drawn by their distance from the shore, read back from a box mean of the land
(exact across a straight shore, and a smooth function of global pixels, so it upsamples), and cover each pixel by
their area in it: a zoom's pixels average to the coarser zoom's, which the cascade keeps, so a beach is as bright at
z18 as it is painted. Every value is a function of global pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from terradream.core.tiles import TILE_SIZE_PX
from terradream.model.lattice import WORLD_M, Grid, coverage, fbm, merc, over, ramp, separable_lerp

COAST_SMOOTH_M = 100.0  # ground metres over which a shoreline's steps are rounded off (GSHHG full is ~100 m)
COAST_MAX_ZOOM = 14  # finer windows upsample this zoom's smoothed water
EDGE_PX = 1.5  # width of the sharpened shoreline, in pixels
BEACH_M = 70.0  # how far sand reaches inland from a sea or lake shore (ground metres)
SURF_M = 25.0  # how far surf reaches out from such a shore (ground metres)
SHORE_MIN_PX = 0.1  # beaches and surf from where BEACH_M is this much of a pixel
# Waves break where the open water around a shore is wide: the share of water within EXPOSURE_RADIUS_PX pixels of
# zoom EXPOSURE_ZOOM (~25 km) over which surf and breakers fade in. Lakes and estuaries read under it.
EXPOSURE_ZOOM, EXPOSURE_RADIUS_PX, EXPOSED_SHARE = 6, 12, (0.33, 0.4)
SURF_FOAM_M, SURF_FOAM_SHARE, SURF_ALPHA = 40.0, (0.35, 0.65), 0.75  # foam noise (cell, ground metres) and cover
BEACH_NOISE_M, BEACH_SHARE = 6000.0, (0.42, 0.5)  # slow noise (cell, ground metres) over which shores turn sandy
BEACH_MAX_RUGGEDNESS = (0.3, 0.6)  # ruggedness over which beaches give way to cliffs
BEACH_DEPTH_CELL_M, BEACH_DEPTH = 300.0, (0.4, 1.0)  # a beach's depth wanders between these shares of BEACH_M
SAND = (0.88, 0.82, 0.68)
FOAM = (0.86, 0.89, 0.89)
BREAKER_M = 180.0  # how far out from a sandy shore waves break (ground metres)
BREAKERS = ((16.0, 6.0), (45.0, 10.0), (85.0, 9.0), (130.0, 7.0))  # lines of broken water: distance out, half-width (m)
BREAKER_DRIFT_M, BREAKER_DRIFT_CELL_M = 30.0, 250.0  # a line wanders in and out this far over about this much shore
BREAKER_BREAK_M, BREAKER_SHARE = 150.0, (0.3, 0.55)  # noise (cell, ground metres) that breaks a line, and its cover
BREAKER_NOISE_APART = 7.3  # lines read that noise this many cells apart, so each breaks in its own places
BREAKER_FROTH_M = 12.0  # the white water's texture (noise cell, ground metres)
BREAKER_TRAIL, BREAKER_TRAIL_ALPHA = 4.0, 0.6  # foam trails shoreward of a line over this many half-widths, fading
SURF_ZONE, SURF_ZONE_ALPHA = (0.45, 0.55, 0.55), 0.35  # the surf zone's water: paler, with stirred-up sand

# (z, row0, col0, height, width) -> water share of every pixel, (height, width) float32
WaterWindow = Callable[[int, int, int, int, int], np.ndarray]


def smoothing_px(z: int) -> int:
    """Half-width in pixels of the box filter (applied twice) that rounds off a shoreline at zoom z; 0 where the
    steps are under a pixel.

    >>> [smoothing_px(z) for z in (9, 11, 14)]
    [0, 2, 14]"""
    return int(round(merc(COAST_SMOOTH_M) / (WORLD_M / (TILE_SIZE_PX << z))))


def smooth_water(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Water share of a window of global pixels at zoom z with its shorelines smoothed (see the module docstring).
    Finer than COAST_MAX_ZOOM, that zoom's smoothed coverage is upsampled before it is sharpened, to an edge as many
    of these pixels wide as it is there: upsampling a sharp edge would draw its pixels as a sawtooth."""
    if z > COAST_MAX_ZOOM:
        blurred = _upsampled(lambda *w: (_blurred_water(water, *w),), COAST_MAX_ZOOM, z, row0, col0, height, width)[0]
        return _sharpened(blurred, COAST_MAX_ZOOM, 1 << (z - COAST_MAX_ZOOM))
    return _sharpened(_blurred_water(water, z, row0, col0, height, width), z)


def _blurred_water(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Water coverage of a window at zoom z <= COAST_MAX_ZOOM under the triangle filter of half-width
    2 smoothing_px(z) (two box filters), or as it is where that is under a pixel or no shore is within reach."""
    r = smoothing_px(z)
    if r < 1:
        return water(z, row0, col0, height, width)
    reach = 2 * r  # two box filters of half-width r: a triangle of half-width 2r
    grown = water(z, row0 - reach, col0 - reach, height + 2 * reach, width + 2 * reach)
    if not grown.any() or grown.min() == 1.0:  # no shore within reach: the filter gives back exact 0s or 1s
        return np.ascontiguousarray(grown[reach:-reach, reach:-reach])
    return _box_cols(_box_cols(_box_rows(_box_rows(grown, r), r), r), r)


def _sharpened(blurred: np.ndarray, z: int, scale: int = 1) -> np.ndarray:
    """_blurred_water's coverage at zoom z sharpened back to an edge EDGE_PX / scale of its pixels wide (the
    triangle's edge rises 1 / (2r + 1) a pixel at its middle); exact 0s and 1s stay."""
    r = smoothing_px(z)
    if r < 1:
        return blurred
    gain = np.float32((2 * r + 1) * scale / EDGE_PX)
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


class Shore(NamedTuple):
    """A window's shore, (H, W) each: the share of each pixel that is beach sand (land within BEACH_M of a sea or
    lake shore) and surf (water within SURF_M of one), how far out from the shore each pixel lies (_offshore_m,
    Mercator metres, negative inland), and how open the water off it is, 0 to 1 (_exposure: where waves break)."""

    sand: np.ndarray
    surf: np.ndarray
    offshore_m: np.ndarray
    exposed: np.ndarray

    def present(self) -> Shore | None:
        """This shore, or None where nothing of it is in the window."""
        return self if _any_shore(self.sand, self.surf, self.offshore_m) else None

    def cut(self, part: tuple[slice, slice]) -> Shore | None:
        """The same over a part of the window, or None where no shore is in it."""
        return Shore(*(a[part] for a in self)).present()


def water_and_shore(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int
                    ) -> tuple[np.ndarray, Shore | None]:
    """A window's water share (smooth_water's) and its Shore (None where there is none), from one read of the water.
    Sand and surf are the parts of each pixel's land and water within BEACH_M and SURF_M of the shore (_shares), so a
    zoom's shares average to the next coarser zoom's: a beach's colour enters the cascade with its share of the
    pixel where it is a tenth of one, and no zoom adds or takes away what its parents hold. Finer than
    COAST_MAX_ZOOM, the distance offshore is that zoom's, upsampled, and the water line this zoom's own."""
    px_m = WORLD_M / (TILE_SIZE_PX << z)
    if z > COAST_MAX_ZOOM:
        def coarse(*w: int) -> tuple[np.ndarray, np.ndarray]:
            blurred, offshore = _read_shore(water, *w)
            if offshore is None:  # no shore near: far inland or far out, which gives no sand or surf either way
                reach_m = np.float32(merc(BREAKER_M))
                offshore = np.where(blurred >= 0.5, reach_m, -reach_m).astype(np.float32)
            return blurred, offshore

        blurred, offshore = _upsampled(coarse, COAST_MAX_ZOOM, z, row0, col0, height, width)
        wet = _sharpened(blurred, COAST_MAX_ZOOM, 1 << (z - COAST_MAX_ZOOM))
    else:
        blurred, offshore = _read_shore(water, z, row0, col0, height, width)
        wet = _sharpened(blurred, z)
        if offshore is None:
            return wet, None
    sand, surf = _shares(wet, offshore, px_m)
    if not _any_shore(sand, surf, offshore):
        return wet, None
    return wet, Shore(sand, surf, offshore, _exposure(water, z, row0, col0, height, width))


def _any_shore(sand: np.ndarray, surf: np.ndarray, offshore_m: np.ndarray) -> bool:
    """Whether any sand, surf or surf zone (water within BREAKER_M of a shore) is in a window."""
    return bool(sand.any() or surf.any() or (np.abs(offshore_m) < merc(BREAKER_M)).any())


def _exposure(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """How open the water around each pixel of a window at zoom z > EXPOSURE_ZOOM is, 0 to 1: the water's share of
    a box EXPOSURE_RADIUS_PX pixels of EXPOSURE_ZOOM wide each way, ramped over EXPOSED_SHARE and upsampled."""
    r = EXPOSURE_RADIUS_PX

    def coarse(z_from: int, r0: int, c0: int, h: int, w: int) -> tuple[np.ndarray]:
        share = _box_cols(_box_rows(water(z_from, r0 - r, c0 - r, h + 2 * r, w + 2 * r), r), r)
        return (ramp(share, *EXPOSED_SHARE).astype(np.float32),)

    return _upsampled(coarse, EXPOSURE_ZOOM, z, row0, col0, height, width)[0]


def _shares(wet: np.ndarray, offshore_m: np.ndarray, px_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Sand and surf shares of pixels px_m wide: the land of a pixel less its part further inland than BEACH_M, the
    water less its part further out than SURF_M (each pixel taken as px_m across the shore, centred where
    offshore_m puts it)."""
    inland = _beyond(-offshore_m - np.float32(merc(BEACH_M)), px_m)
    out = _beyond(offshore_m - np.float32(merc(SURF_M)), px_m)
    return np.clip(1 - wet - inland, 0.0, 1.0), np.clip(wet - out, 0.0, 1.0)


def _beyond(past_m: np.ndarray, px_m: float) -> np.ndarray:
    """The part of a pixel px_m across that lies beyond a line, from how far beyond it the pixel's centre lies
    (negative: short of it).

    >>> [float(v) for v in _beyond(np.array([-1.0, 0.0, 0.25, 1.0], np.float32), 1.0)]
    [0.0, 0.5, 0.75, 1.0]"""
    return np.clip(past_m / np.float32(px_m) + np.float32(0.5), 0.0, 1.0)


def _read_shore(water: WaterWindow, z: int, row0: int, col0: int, height: int, width: int
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """At zoom z <= COAST_MAX_ZOOM, from one read of the water: its coverage over the window under the smoothing
    filter (_blurred_water), and how far offshore each pixel lies (_offshore_m, out past the beach and the breakers);
    None for that where there is no shore, or a beach is under SHORE_MIN_PX wide."""
    px_m = WORLD_M / (TILE_SIZE_PX << z)
    sand_px = merc(BEACH_M) / px_m
    if sand_px < SHORE_MIN_PX:
        return _blurred_water(water, z, row0, col0, height, width), None
    m = max(math.ceil(max(sand_px, merc(SURF_M) / px_m)) + 1, math.ceil(merc(BREAKER_M) / px_m))
    blurred = _blurred_water(water, z, row0 - m, col0 - m, height + 2 * m, width + 2 * m)
    inner = np.ascontiguousarray(blurred[m:-m, m:-m])
    grown = _sharpened(blurred, z)
    if not grown.any() or grown.min() == 1.0:
        return inner, None
    return inner, _offshore_m(1 - grown, m, px_m, max(merc(BREAKER_M), merc(BEACH_M) + px_m))  # past the beach


def _offshore_m(land: np.ndarray, r: int, px_m: float, reach_m: float) -> np.ndarray:
    """How far out from the shore each pixel lies, in Mercator metres (negative inland), within +-reach_m: across a
    straight shore a box mean of the land share (land, r pixels more on every side than the window) falls linearly
    with the distance, which gives it back to (r + 0.5) pixels; further out or in it is +-reach_m."""
    near = _box_cols(_box_rows(land, r), r)
    reach = np.float32(reach_m)
    return np.clip((np.float32(r + 0.5) - near * np.float32(2 * r + 1)) * np.float32(px_m), -reach, reach)


def paint_shore(seed: int, g: Grid, land: np.ndarray, sea: np.ndarray, shore: Shore, rugged: np.ndarray,
                water: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sand on the land's colours and surf and breakers on the water's (H, W, 3 each, of whole pixels; changed in
    place), on shores the slow beach noise picks: sand where the ground is not rugged (cliffs), as deep as slower
    noise says (BEACH_DEPTH of BEACH_M, by the pixels' area as the shore's shares are), surf broken into foam
    by finer noise. water: the water's share of each pixel, which the shore's shares of sand and surf are parts of."""
    sandy = ramp(fbm(seed, "beach", g, merc(BEACH_NOISE_M), 2), *BEACH_SHARE)
    lo, hi = BEACH_DEPTH
    wander = ramp(fbm(seed, "beach_depth", g, merc(BEACH_DEPTH_CELL_M), 3), 0.3, 0.7)
    depth_m = np.float32(merc(BEACH_M)) * (lo + (hi - lo) * wander)
    inland = -shore.offshore_m  # less the part of each pixel between that depth and BEACH_M inland
    sand = shore.sand - (_beyond(inland - depth_m, g.px_m) - _beyond(inland - np.float32(merc(BEACH_M)), g.px_m))
    of_land = np.clip(sand / np.maximum(1 - water, np.float32(1e-6)), 0.0, 1.0)
    land = over(land, of_land * sandy * (1 - ramp(rugged, *BEACH_MAX_RUGGEDNESS)), SAND)
    foam = ramp(fbm(seed, "surf", g, merc(SURF_FOAM_M), 3), *SURF_FOAM_SHARE)
    of_water = np.clip(shore.surf / np.maximum(water, np.float32(1e-6)), 0.0, 1.0)
    breaking = sandy * shore.exposed
    sea = over(sea, of_water * breaking * foam * np.float32(SURF_ALPHA), FOAM)
    return land, _paint_breakers(seed, g, sea, shore.offshore_m, breaking)


def _paint_breakers(seed: int, g: Grid, c: np.ndarray, offshore_m: np.ndarray, sandy: np.ndarray) -> np.ndarray:
    """The surf zone off a sandy shore, on the water's colours c: its water paler with stirred sand, crossed by lines
    of breaking waves (BREAKERS), each a band of white water with foam trailing shoreward, wandering in and out with
    slow noise and broken along its length by finer noise; drawn on the rows and columns where the water is near
    enough. sandy: how sandy the shore is and how open the water (both 0 to 1)."""
    reach_m = merc(BREAKER_M)
    near = (offshore_m > 0) & (offshore_m < reach_m) & (sandy > 0)
    if not near.any():
        return c
    box, b = g.box(near)
    offshore, sandy = offshore_m[box], sandy[box]
    zone = ramp(-offshore, -reach_m, -0.5 * reach_m)  # paler from the shore out to half the reach, then fading
    c[box] = over(c[box], sandy * np.float32(SURF_ZONE_ALPHA) * zone, SURF_ZONE)
    drift = fbm(seed, "breaker_drift", b, merc(BREAKER_DRIFT_CELL_M), 4, 0.7)
    drift = np.float32(merc(BREAKER_DRIFT_M)) * (2 * drift - 1)
    froth = ramp(fbm(seed, "surf", b, merc(BREAKER_FROTH_M), 3), 0.25, 0.75)
    foam = np.zeros(offshore.shape, np.float32)
    for k, (d_m, half_m) in enumerate(BREAKERS):
        out_m = offshore - np.float32(merc(d_m)) - drift  # > 0: seaward of the line's middle
        along = b.shifted(k * BREAKER_NOISE_APART * merc(BREAKER_BREAK_M), 0.0)  # each line its own breaks
        whole = ramp(fbm(seed, "breaker", along, merc(BREAKER_BREAK_M), 2), *BREAKER_SHARE)
        crest = coverage(np.abs(out_m) / (0.5 + 0.5 * whole), merc(half_m), b.px_m)  # thinning out where it breaks
        trail = np.float32(BREAKER_TRAIL_ALPHA) * ramp(out_m, -merc(half_m * BREAKER_TRAIL), 0.0) * (out_m < 0)
        foam = np.maximum(foam, whole * np.maximum(crest * (0.4 + 0.6 * froth), trail * froth))
    c[box] = over(c[box], foam * sandy, FOAM)
    return c


def _upsampled(coarse: Callable[[int, int, int, int, int], tuple[np.ndarray, ...]], z_from: int, z: int, row0: int,
               col0: int, height: int, width: int) -> tuple[np.ndarray, ...]:
    """Bilinear upsample of the arrays coarse gives for one window at zoom z_from (read once) onto a window at zoom
    z > z_from (pixel centres to pixel centres; every weight is exact in binary, so any window gives a pixel the
    same value)."""
    scale = 1 << (z - z_from)
    rows = (np.arange(row0, row0 + height) + 0.5) / scale - 0.5  # positions in coarse pixel indices
    cols = (np.arange(col0, col0 + width) + 0.5) / scale - 0.5
    r_lo, c_lo = math.floor(rows[0]), math.floor(cols[0])
    values = coarse(z_from, r_lo, c_lo, math.floor(rows[-1]) - r_lo + 2, math.floor(cols[-1]) - c_lo + 2)
    ri, ci = np.floor(rows).astype(np.intp) - r_lo, np.floor(cols).astype(np.intp) - c_lo
    rt, ct = (rows - np.floor(rows)).astype(np.float32), (cols - np.floor(cols)).astype(np.float32)
    return tuple(separable_lerp(v, (ri, rt), (ci, ct)).astype(np.float32) for v in values)


# what decides the coast's numbers (part of the model version)
SETTINGS = (COAST_SMOOTH_M, COAST_MAX_ZOOM, EDGE_PX, BEACH_M, SURF_M, SHORE_MIN_PX, EXPOSURE_ZOOM, EXPOSURE_RADIUS_PX,
            EXPOSED_SHARE, BEACH_NOISE_M, BEACH_SHARE, BEACH_MAX_RUGGEDNESS, BEACH_DEPTH_CELL_M, BEACH_DEPTH,
            SURF_FOAM_M, SURF_FOAM_SHARE, SURF_ALPHA, SAND, FOAM, BREAKER_M, BREAKERS, BREAKER_DRIFT_M,
            BREAKER_DRIFT_CELL_M, BREAKER_BREAK_M, BREAKER_SHARE, BREAKER_NOISE_APART, BREAKER_FROTH_M, BREAKER_TRAIL,
            BREAKER_TRAIL_ALPHA, SURF_ZONE, SURF_ZONE_ALPHA)
