"""Valleys: a branching net of channels, each level draining into the one above, carved the same in every window."""

import numpy as np
import pytest

from terradream.model import drainage
from terradream.model.drainage import (
    MAX_RUN,
    channel_nets,
    drawn_levels,
    level_spacing_m,
    valley_relief,
)
from terradream.model.lattice import Grid
from terradream.model.water import latlon_to_global_px


def alps(z: int, size: int) -> Grid:
    row, col = latlon_to_global_px(z, 45.95, 7.65)
    return Grid.of_window(z, int(row) - size // 2, int(col) - size // 2, size, size)


def test_every_tributary_ends_on_the_channel_above_it() -> None:
    """A finer level's channel runs to a point on the coarser net (unless the net is more than MAX_RUN cells away,
    where it ends short), so valleys branch instead of lying side by side."""
    g = alps(13, 64)
    nets = channel_nets(5, g, drawn_levels(g.px_m))
    assert len(nets) == 6
    for level in range(1, len(nets)):
        fine, coarse = nets[level], nets[level - 1]
        cell = level_spacing_m(level)
        ends = np.stack([fine.bx.ravel(), fine.by.ravel()], axis=1)
        run = np.hypot(fine.bx - fine.ax, fine.by - fine.ay).ravel()
        short = run < MAX_RUN * cell * 0.999  # not capped: must end on a coarser channel
        dist = drainage._nearest(coarse, level_spacing_m(level - 1), ends[:, 0], ends[:, 1])[0]
        assert short.mean() > 0.9
        assert float(np.max(dist[short])) < 1e-6 * cell + 1e-3


def test_the_coarsest_channels_flow_to_a_neighbour_or_end() -> None:
    g = alps(9, 64)
    top = channel_nets(5, g, 1)[0]
    run = np.hypot(top.bx - top.ax, top.by - top.ay) / level_spacing_m(0)
    assert float(run.max()) < 2.0 * np.sqrt(2.0)  # a neighbouring cell's point at most
    assert 0.5 < float((run > 0).mean()) < 1.0  # most flow on, a few are sinks


@pytest.mark.parametrize("z", [10, 14])
def test_valleys_are_the_same_in_every_window(z: int) -> None:
    big = valley_relief(3, alps(z, 160))
    assert big is not None
    row, col = latlon_to_global_px(z, 45.95, 7.65)
    for dr, dc, h, w in ((0, 0, 33, 70), (51, 17, 90, 64)):
        small = valley_relief(3, Grid.of_window(z, int(row) - 80 + dr, int(col) - 80 + dc, h, w))
        assert small is not None
        for a, b in zip((small[0], *small[1]), (big[0], *big[1]), strict=True):
            np.testing.assert_array_equal(a, b[dr : dr + h, dc : dc + w])


def test_a_valley_is_lowest_along_its_channel_and_slopes_up_from_it() -> None:
    """Height rises away from the channels: the lowest tenth of a window lies where the slopes point away from a
    channel (uphill outwards), and the window holds both floors and crests."""
    g = alps(11, 256)
    relief = valley_relief(3, g)
    assert relief is not None
    height, (sx, sy) = relief
    assert float(height.max() - height.min()) > 0.5 * drainage.level_depth_m(0)
    steep = np.hypot(sx, sy)
    assert float(np.median(steep)) > 0.05
    low = height < np.quantile(height, 0.1)
    high = height > np.quantile(height, 0.9)
    assert float(low.mean()) > 0.05 and float(high.mean()) > 0.05


def test_coarse_zooms_draw_no_valleys() -> None:
    assert valley_relief(3, alps(5, 32)) is None
    assert drawn_levels(alps(19, 8).px_m) == drainage.VALLEY_LEVELS
