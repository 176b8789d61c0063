"""Waves on open water: where they are drawn, and that every window agrees on them."""

import numpy as np

from terradream.model.lattice import Grid
from terradream.model.structure import layout
from terradream.model.waves import WAVE_MIN_PX, drawn_trains, paint_waves, wave_trains, waves

SEA = np.array([0.08, 0.15, 0.22], np.float32)
FARMLAND = np.array([0.36, 0.40, 0.26], np.float32)


def test_waves_are_the_same_in_every_window() -> None:
    z, row, col = 17, 12_000_003, 16_800_011
    a = waves(5, Grid.of_window(z, row, col, 96, 96))
    b = waves(5, Grid.of_window(z, row + 40, col + 17, 96, 96))
    np.testing.assert_array_equal(a[40:, 17:], b[:56, :79])


def test_painted_waves_are_the_same_in_every_window_however_the_water_lies() -> None:
    """Waves are painted strip by strip on the columns that hold water: the strips fall differently in two windows."""
    z, row, col = 17, 12_000_003, 16_800_011
    size = 160
    diagonal = np.clip(12.0 - np.abs(np.arange(size + 40)[:, None] - np.arange(size + 40)[None, :] * 0.7), 0, 1)
    sea = np.broadcast_to(SEA, (size, size, 3)).astype(np.float32)
    a = paint_waves(5, Grid.of_window(z, row, col, size, size), sea, diagonal[:size, :size].astype(np.float32))
    b = paint_waves(5, Grid.of_window(z, row + 40, col + 40, size, size), sea,
                    diagonal[40 : 40 + size, 40 : 40 + size].astype(np.float32))
    assert np.abs(a - sea).max() > 0.01
    np.testing.assert_array_equal(a[40:, 40:], b[: size - 40, : size - 40])


def test_waves_swing_both_ways_and_only_trains_a_few_pixels_long_are_drawn() -> None:
    fine = waves(5, Grid.of_window(18, 24_000_000, 33_600_000, 128, 128))
    assert abs(float(fine.mean())) < 0.1 and fine.std() > 0.2 and np.abs(fine).max() < 1.0
    coarse = Grid.of_window(9, 46_000, 65_600, 64, 64)
    assert not drawn_trains(5, coarse.px_m) and not waves(5, coarse).any()  # every train is shorter than a pixel
    px_m = Grid.of_window(14, 0, 0, 1, 1).px_m
    assert any(length < WAVE_MIN_PX * px_m for length, _, _ in wave_trains(5))  # z14 leaves the short chop out


def test_waves_are_drawn_on_water_and_nowhere_else() -> None:
    g = Grid.of_window(17, 12_000_003, 16_800_011, 64, 64)
    wet = np.zeros((64, 64), np.float32)
    wet[:, :32] = 1.0
    c = np.broadcast_to(SEA, (64, 64, 3)).copy()
    painted = paint_waves(5, g, c, wet)
    np.testing.assert_array_equal(painted[:, 32:], c[:, 32:])
    assert np.abs(painted[:, :32] - c[:, :32]).mean() > 0.005
    np.testing.assert_array_equal(c, np.broadcast_to(SEA, (64, 64, 3)))  # the caller's colours are not changed


def test_the_layout_puts_waves_on_real_water_at_every_fine_zoom() -> None:
    g = Grid.of_window(16, 6_000_000, 8_400_000, 64, 64)
    base = np.broadcast_to(FARMLAND, (64, 64, 3)).astype(np.float32)
    water = np.ones((64, 64), np.float32)
    for paint in (True, False):  # real water painted (up to z14) or carried on from the parent (finer)
        sea = layout(3, g, base, water, paint)
        assert sea.mean(-1).std() > 0.005
