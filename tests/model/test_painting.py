"""Painting the structure field into windows (terradream.model.painting): the same numbers in any number of bands."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from terradream.model.painting import StructurePainter, WindowSpec, box_blur_region, row_bands
from terradream.model.water import latlon_to_global_px

WINDOW_PX, MARGIN_PX = 176, 32  # a small window: a 112 px core
FARMLAND, SNOW, DRY = (96, 104, 70), (236, 238, 240), (150, 130, 100)  # DRY: barely rugged


def spec_at(z: int, lat: float, lon: float, real: bool = True, top: tuple[int, int, int] = FARMLAND,
            bottom: tuple[int, int, int] = FARMLAND) -> WindowSpec:
    """A window of earth (real water, towns and relief when real) centred on lat/lon under a mottled parent, its
    upper half coloured top and its lower half bottom."""
    row, col = (int(v) for v in latlon_to_global_px(z, lat, lon))
    rng = np.random.default_rng(z)
    side = WINDOW_PX // 2 + 2
    colour = np.where(np.arange(side)[:, None, None] < side // 2, np.asarray(top), np.asarray(bottom))
    parent = np.clip(colour + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
    return WindowSpec(11, z, row - WINDOW_PX // 2, col - WINDOW_PX // 2, parent, np.zeros(1, np.float32), real)


@pytest.mark.parametrize(("z", "lat", "lon", "real", "top", "bottom"), [
    (7, 45.9, 7.6, True, FARMLAND, FARMLAND),  # the Alps at 1.2 km/px: woods, towns, relief, real water
    (12, 38.72, -9.14, True, FARMLAND, FARMLAND),  # Lisbon at 38 m/px: coast, city, fields
    (16, 46.2, 6.1, True, FARMLAND, FARMLAND),  # Geneva at 2.4 m/px: buildings, roads, trees
    (14, 0.0, 20.0, False, SNOW, DRY),  # procedural, snow above dry land: very rugged above, barely below
])
def test_bands_give_the_same_numbers_as_one_piece(z: int, lat: float, lon: float, real: bool,
                                                  top: tuple[int, int, int], bottom: tuple[int, int, int]) -> None:
    spec = spec_at(z, lat, lon, real, top, bottom)
    one = StructurePainter(reach_px=16, bands=1).detail(spec, WINDOW_PX, MARGIN_PX)
    three = StructurePainter(reach_px=16, bands=3).detail(spec, WINDOW_PX, MARGIN_PX)
    assert np.abs(one).max() > 0.02  # something is painted
    np.testing.assert_array_equal(one, three)
    reach = MARGIN_PX - 16
    assert not one[:, :reach].any() and not one[:, :, -reach:].any()  # nothing beyond the projection's reach


@pytest.mark.parametrize("z", [13, 16])
def test_a_shore_cut_from_the_window_paints_as_one_read_for_the_region(z: int) -> None:
    """The pipeline reads a window's real water and shore once, for its calm share, and hands them to the painter,
    which cuts its region from them: the same numbers as reading the region itself (Caparica's beach and surf)."""
    spec = spec_at(z, 38.6405, -9.2417)
    painter = StructurePainter(reach_px=16, bands=1)
    window = painter.window_water(spec, WINDOW_PX)
    assert window.share is not None and window.shore is not None and window.shore[0].max() > 0.5
    assert painter.calm_share(spec, window).max() > 0.5
    np.testing.assert_array_equal(painter.detail(spec, WINDOW_PX, MARGIN_PX, window),
                                  painter.detail(spec, WINDOW_PX, MARGIN_PX))


def test_box_blur_matches_the_direct_mean() -> None:
    img = torch.rand(1, 3, 40, 40)
    got = box_blur_region(img, 6, 20, 3)
    direct = F.avg_pool2d(img[:, :, 3:29, 3:29].double(), 7, stride=1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, direct, atol=1e-12)


def test_row_bands_cover_every_row_once() -> None:
    for rows, bands in ((5, 2), (544, 2), (7, 3), (3, 4)):
        covered = np.concatenate([np.arange(rows)[s] for s in row_bands(rows, bands)])
        np.testing.assert_array_equal(covered, np.arange(rows))
