"""Towns and districts of the structure field: denser centres, pitched roofs lit from one side, roads on district
edges where the field pattern changes."""

import math

import numpy as np
import pytest

from terradream.model.lattice import LIGHT_FROM, Grid, merc, toward_light
from terradream.model.structure import _districts, layout
from terradream.model.towns import (
    BOULEVARD_HALF_WIDTH_M,
    BUILDING_MAX_PX_M,
    BUILDING_SHARE,
    ROOF_RELIEF,
    SHADOW_SHARE,
    SHED_MAX_PX_M,
    SHED_SHADOW_SHARE,
    SHED_SHARE,
    TALL_BUILDING_SHARE,
    TALL_SHADOW_SHARE,
    TALL_SHARE,
    USE_GREEN,
    USE_HOMES,
    USE_INDUSTRY,
    StreetGrid,
    boulevard_blocks,
    boulevards,
    land_use,
    paint_buildings,
    parks,
    shadows,
    town_plan,
)

pytestmark = pytest.mark.unit

Z, ROW0, COL0 = 17, 47_448_000, 67_336_000  # a z17 window at mid latitudes (0.9 m pixels)


def plan(core: float, theta: float = 0.3, size: int = 256):
    g = Grid.of_window(Z, ROW0, COL0, size, size)
    ones = np.ones((size, size), np.float32)
    rb = np.full((size, size), 12345, np.uint64)
    style = np.zeros((size, size), np.int64)
    grid = StreetGrid(7, g, np.full((size, size), theta, np.float32), ones * np.float32(core))
    return g, town_plan(grid, rb, style, ones)


def test_a_town_centre_is_more_built_over_than_its_edge() -> None:
    _, edge = plan(0.0)
    _, centre = plan(1.0)
    assert 0.1 < edge.building.mean() < centre.building.mean() - 0.1


@pytest.mark.parametrize(("core", "use", "share", "shadow_share"),
                         [(0.0, USE_HOMES, BUILDING_SHARE[0], SHADOW_SHARE),
                          (1.0, USE_HOMES, BUILDING_SHARE[1] + TALL_SHARE * (TALL_BUILDING_SHARE - BUILDING_SHARE[1]),
                           SHADOW_SHARE + TALL_SHARE * (TALL_SHADOW_SHARE - SHADOW_SHARE)),
                          (0.0, USE_INDUSTRY, SHED_SHARE, SHED_SHADOW_SHARE)])
def test_coarse_pixels_of_towns_get_the_share_their_buildings_cover(core: float, use: int, share: float,
                                                                     shadow_share: float) -> None:
    """Where single buildings are finer than a pixel, a town's pixels take their average: it must be what the
    buildings and their shadows cover once they are drawn, or the zoom that first draws them would fight its
    parent's means."""
    covered = shaded = 0.0
    zoom, size = 15, 768  # (an industrial estate's blocks are 140 x 220 m: a few hundred of them)
    for theta in (0.3, 1.1, 2.0):
        g = Grid.of_window(zoom, ROW0 >> (Z - zoom), COL0 >> (Z - zoom), size, size)
        ones = np.ones((size, size), np.float32)
        rb, style = np.full((size, size), 12345, np.uint64), np.zeros((size, size), np.int64)
        grid = StreetGrid(7, g, ones * np.float32(theta), ones * np.float32(core), np.full((size, size), use, np.int8))
        here = town_plan(grid, rb, style, ones)
        built = 1 - parks(grid)  # parks have none: the shares are of the built-up squares
        covered += here.building.sum() / built.sum() / 3
        shaded += (shadows(grid, rb, style, ones, here) * built).sum() / built.sum() / 3
    assert abs(covered - share) < 0.03
    assert abs(shaded - shadow_share) < 0.02


def test_a_centre_has_blocks_of_flats_with_long_shadows() -> None:
    """A centre's dense blocks are partly blocks of flats: flat-roofed slabs whose shadows reach several times as far
    as a house's, so they darken more of their block; a town's edge has none."""
    g, centre = plan(1.0, size=640)  # some 40 blocks
    assert 0.2 < float(centre.tall.mean()) < 0.5
    assert not plan(0.0)[1].tall.any()
    ones = np.ones(centre.building.shape, np.float32)
    grid = StreetGrid(7, g, ones * np.float32(0.3), ones)
    shade = shadows(grid, np.full(ones.shape, 12345, np.uint64), np.zeros(ones.shape, np.int64), ones, centre)
    assert float(shade[centre.tall].mean()) > 1.5 * float(shade[~centre.tall].mean())


@pytest.mark.parametrize("theta", [0.0, math.pi / 2])
@pytest.mark.parametrize("axis", [1, 0])  # scan along rows (west to east) or along columns (north to south)
def test_roof_slopes_facing_the_light_are_lighter(theta: float, axis: int) -> None:
    """Along a line across a ridge the roof takes two brightnesses, each slope lit as it faces the light, and blends
    them over the ridge's pixel."""
    _, edge = plan(0.0, theta)
    inside, lum = edge.building == 1.0, edge.roof.mean(-1)
    if axis == 0:
        inside, lum = inside.T, lum.T
    ratios, blended = [], 0
    for r in range(0, inside.shape[0], 2):
        cols = np.nonzero(inside[r])[0]
        for run in np.split(cols, np.nonzero(np.diff(cols) > 1)[0] + 1):
            values = np.round(lum[r, run], 5)
            plateaus = len(run) >= 6 and values[0] == values[1] != values[-1] == values[-2]
            if plateaus and len(np.unique(values)) <= 4:  # the scan crosses a ridge: two slopes, a pixel or two between
                ratios.append(lum[r, run[-1]] / lum[r, run[0]])
                blended += len(np.unique(values)) > 2
    towards = LIGHT_FROM[0] if axis == 1 else -LIGHT_FROM[1]  # the light's share along the scan (x east, y north)
    expected = (1 + ROOF_RELIEF * towards) / (1 - ROOF_RELIEF * towards)  # far slope over near slope
    assert expected < 1  # the light is from the north-west: the far (east or south) slope is the darker
    assert len(ratios) > 5 and float(np.median(ratios)) == pytest.approx(expected, rel=1e-3)
    assert blended > len(ratios) // 2  # anti-aliased: a sign flip would step along the ridge in a saw-tooth


def test_shadows_fall_away_from_the_light() -> None:
    g = Grid.of_window(Z, ROW0, COL0, 256, 256)
    ones = np.ones((256, 256), np.float32)
    grid = StreetGrid(7, g, np.full((256, 256), 0.3, np.float32), ones * np.float32(0.5))
    args = (np.full((256, 256), 12345, np.uint64), np.zeros((256, 256), np.int64), ones)
    building = town_plan(grid, *args).building
    shadow = town_plan(grid.shifted(*toward_light(merc(4.0))), *args, roofs=False).building
    # the shift that best lays the buildings over their shadows: south-east (rows and columns grow), 4 m each way
    shifts = [(dr, dc) for dr in range(-9, 10) for dc in range(-9, 10)]
    best = max(shifts, key=lambda s: float((shadow * np.roll(building, s, axis=(0, 1))).sum()))
    step_px = merc(4.0) / g.px_m  # 4.5 px
    expected = (np.sign(LIGHT_FROM[1]) * step_px, -np.sign(LIGHT_FROM[0]) * step_px)
    assert best[0] > 0 and best[1] > 0
    assert abs(best[0] - expected[0]) < 1 and abs(best[1] - expected[1]) < 1


def test_towns_are_a_pure_function_of_global_position() -> None:
    """A town (density rising to a centre, as places.py gives) cut by window edges: the overlap is the same bytes."""
    z, row0, col0, size = 16, 23_724_000, 33_668_000, 256
    centre = Grid.of_window(z, row0 + 200, col0 + 220, 1, 1)

    def paint(dr: int, dc: int) -> np.ndarray:
        g = Grid.of_window(z, row0 + dr, col0 + dc, size, size)
        dist = np.hypot(g.x[None, :] - centre.x[0], g.y[:, None] - centre.y[0])
        towns = np.clip(2.0 - dist / 300.0, 0.0, 2.0).astype(np.float32)
        base = np.broadcast_to(np.array([0.36, 0.40, 0.26], np.float32), (size, size, 3))
        return layout(5, g, base, towns=towns) - base

    a, b = paint(0, 0), paint(96, 160)
    assert np.abs(a[96:, 160:]).max() > 0.1  # the town is in the overlap
    np.testing.assert_array_equal(a[96:, 160:], b[:160, :96])


def test_district_edges_are_where_districts_change_and_the_same_in_every_window() -> None:
    z, row0, col0 = 13, 2_964_000, 4_208_000
    g = Grid.of_window(z, row0, col0, 300, 300)
    d = _districts(7, g, edges=True)
    edge = d.edge_m
    assert edge is not None
    changes = np.diff(d.rb, axis=1) != 0
    assert changes.any()
    # a pixel next to a change of district is within about a pixel of the edge; most pixels are far from one
    assert np.all(np.minimum(edge[:, 1:], edge[:, :-1])[changes] < 1.5 * g.px_m)
    assert np.median(edge) > 10 * g.px_m
    shifted = _districts(7, Grid.of_window(z, row0 + 37, col0 + 51, 200, 200), edges=True)
    np.testing.assert_array_equal(shifted.edge_m, edge[37:237, 51:251])
    plain = _districts(7, g, edges=False)  # the same districts whether or not their edges are asked for
    np.testing.assert_array_equal(plain.rb, d.rb)
    np.testing.assert_array_equal(plain.theta, d.theta)


@pytest.mark.parametrize(("z", "use", "single_px_m"), [(13, USE_HOMES, BUILDING_MAX_PX_M),
                                                     (11, USE_INDUSTRY, SHED_MAX_PX_M)])
def test_the_zoom_before_single_buildings_shows_what_the_next_zoom_averages_to(z: int, use: int,
                                                                               single_px_m: float) -> None:
    """A zoom up to twice too coarse for single buildings (houses, or the larger sheds) paints what its children's
    buildings average to, not a flat share: the coarser octave of the buildings is then in every finer zoom's
    parent, where the exact projection keeps it (a flat share would leave it out of every zoom, and buildings would
    first show faint)."""
    size = 64
    assert merc(single_px_m) < Grid.of_window(z, 0, 0, 1, 1).px_m <= 2 * merc(single_px_m)

    def painted(zoom: int, n: int) -> np.ndarray:
        shift = Z - zoom
        g = Grid.of_window(zoom, ROW0 >> shift, COL0 >> shift, n, n)
        ones = np.ones((n, n), np.float32)
        grid = StreetGrid(7, g, ones * np.float32(0.3), ones * np.float32(0.5), np.full((n, n), use, np.int8))
        base = np.full((n, n, 3), 0.5, np.float32)
        colours, roofs = paint_buildings(grid, base, np.full((n, n), 12345, np.uint64), np.zeros((n, n), np.int64),
                                         ones, single_px_m)
        return np.dstack([colours, roofs])  # the roofs' share too: trees keep off it at every zoom alike

    coarse, fine = painted(z, size), painted(z + 1, 2 * size)
    assert coarse.std() > 0.02  # buildings show, not one flat share
    np.testing.assert_allclose(coarse, fine.reshape(size, 2, size, 2, 4).mean(axis=(1, 3)), atol=1e-5)


def test_towns_have_some_industrial_estates_and_parks_in_irregular_patches() -> None:
    """Estates and large parks take a tenth of a town's ground or so each, and every window gives a pixel the same
    use."""
    g = Grid.of_window(11, 100_000, 120_000, 1024, 1024)
    use = land_use(7, g)
    shares = [float((use == k).mean()) for k in (USE_HOMES, USE_INDUSTRY, USE_GREEN)]
    assert shares[0] > 0.6 and 0.05 < shares[1] < 0.2 and 0.05 < shares[2] < 0.2
    np.testing.assert_array_equal(land_use(7, Grid.of_window(11, 100_100, 120_050, 64, 64)),
                                  use[100:164, 50:114])


DISTRICT = np.uint64(12345)


def test_boulevards_are_the_same_lines_at_every_zoom() -> None:
    """Boulevards run along every few blocks' edges: a z14 pixel shows about what the sixteen z16 pixels under it
    average to, and they cover about the share of the ground their width and spacing say."""
    def cover(z: int, size: int) -> np.ndarray:
        g = Grid.of_window(z, ROW0 >> (Z - z), COL0 >> (Z - z), size, size)
        ones = np.ones((size, size), np.float32)
        district = np.full((size, size), DISTRICT, np.uint64)
        return boulevards(StreetGrid(7, g, ones * np.float32(0.3), ones * 0), ones, district)

    coarse, fine = cover(14, 64), cover(16, 256)
    every = boulevard_blocks(DISTRICT)
    spacing = (float(every[0]) * 70.0, float(every[1]) * 110.0)
    share = 1 - (1 - 2 * BOULEVARD_HALF_WIDTH_M / spacing[0]) * (1 - 2 * BOULEVARD_HALF_WIDTH_M / spacing[1])
    assert abs(float(fine.mean()) - share) < 0.03
    pooled = fine.reshape(64, 4, 64, 4).mean(axis=(1, 3))
    assert float(np.corrcoef(pooled.ravel(), coarse.ravel())[0, 1]) > 0.8
