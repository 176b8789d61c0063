"""Streams: the drainage net drawn on all land as water and riparian woods, the same in every window and zoom."""

import numpy as np
import pytest

from terradream.model import drainage
from terradream.model.drainage import MAX_RUN, level_spacing_m, stream_distances
from terradream.model.lattice import Grid
from terradream.model.streams import RIPARIAN_HALF_M, STREAM_WARP_GAIN, stream_cover, stream_levels
from terradream.model.water import latlon_to_global_px

OCTAVES = len(RIPARIAN_HALF_M)


def plain(z: int, size: int, dr: int = 0, dc: int = 0, h: int | None = None) -> Grid:
    """A window over flat farmland (the Gers), size pixels square from the place's pixel less size/2."""
    row, col = latlon_to_global_px(z, 43.65, 0.6)
    return Grid.of_window(z, int(row) - size // 2 + dr, int(col) - size // 2 + dc, h or size, h or size)


def paint(g: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The woods' and the water's share of every pixel, on land that allows both everywhere."""
    return stream_cover(1, g, np.ones((len(g.y), len(g.x)), np.float32))


@pytest.mark.parametrize("z", [10, 14])
def test_streams_are_the_same_in_every_window(z: int) -> None:
    big = paint(plain(z, 160))
    assert float(big[0].max()) > 0.5  # some woods in view
    for dr, dc, h in ((0, 0, 40), (57, 23, 90)):
        small = paint(plain(z, 160, dr, dc, h))
        for a, b in zip(small, big, strict=True):
            np.testing.assert_array_equal(a, b[dr : dr + h, dc : dc + h])


def test_a_coarse_pixel_holds_what_its_children_average_to() -> None:
    """Woods cover each pixel by their area, so the zoom above shows the 2x2 means of the zoom below (the cascade's
    projection keeps those means: a point sample's error would stay at every finer zoom)."""
    coarse = paint(plain(12, 128))[0]
    fine = paint(plain(13, 256))[0]
    means = fine.reshape(128, 2, 128, 2).mean(axis=(1, 3))
    assert float(coarse.mean()) > 0.05
    assert float(np.abs(means - coarse).mean()) < 0.03
    assert abs(float(means.mean()) / float(coarse.mean()) - 1.0) < 0.1


def test_tributaries_meet_their_trunk() -> None:
    """Every level is looked up through one warp, so a tributary's line runs into its trunk's instead of ending
    beside it: where a tributary's channel ends on the trunk's, both lines pass through the same pixel."""
    z, seed = 12, 7
    g = plain(z, 512)
    trunk, branch = drainage.channel_nets(seed, g, 2)
    ends = np.hypot(branch.bx - branch.ax, branch.by - branch.ay) < MAX_RUN * level_spacing_m(1) * 0.999
    met = 0
    for bx, by in zip(branch.bx[ends], branch.by[ends], strict=True):
        x, y = bx, by  # the ground point whose warped position is the channel's end: x + warp(x) = end
        for _ in range(40):  # (converges: the warp never folds)
            wx, wy = drainage._warp(seed, OCTAVES, np.array([x]), np.array([y]), STREAM_WARP_GAIN)
            x, y = bx - float(wx[0, 0]), by - float(wy[0, 0])
        col = int((x - g.x[0]) / g.px_m + 0.5)
        row = int((g.y[0] - y) / g.px_m + 0.5)
        if not (8 <= row < len(g.y) - 8 and 8 <= col < len(g.x) - 8):
            continue
        at = plain(z, 512, row - 1, col - 1, 3)
        lines = stream_distances(seed, at, [float("inf")] * 2, OCTAVES, STREAM_WARP_GAIN)
        assert all(f is not None and float(f[0].min()) < 1.5 * g.px_m for f in lines)
        met += 1
        if met == 5:
            break
    assert met == 5


def test_levels_start_where_they_are_a_few_pixels_apart() -> None:
    assert stream_levels(plain(5, 8).px_m) == 0
    assert stream_levels(plain(7, 8).px_m) == 2
    assert stream_levels(plain(8, 8).px_m) == len(RIPARIAN_HALF_M)
    woods, water = stream_cover(7, plain(5, 8), np.ones((8, 8), np.float32))
    assert float(woods.max()) == 0.0 and float(water.max()) == 0.0


def test_streams_stay_where_they_are_allowed() -> None:
    """Only the box of allowed pixels is looked up, and it gets the numbers the whole window gets."""
    g = plain(12, 160)
    where = np.zeros((160, 160), np.float32)
    where[30:90, 50:140] = 0.5
    woods, water = stream_cover(1, g, where)
    full_woods, full_water = paint(g)
    assert float(woods.max()) > 0.2
    np.testing.assert_array_equal(woods, full_woods * (np.float32(0.5) * (where > 0)))
