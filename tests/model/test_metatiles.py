"""Metatile geometry: blocks partition every level, names are stable, and a cold cascade stays 2 blocks wide."""

import pytest

from terradream.core.keys import TileKey
from terradream.model.metatiles import MetatileGrid, best_offset_tiles, worst_blocks_per_axis

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("z", [1, 2, 3, 5])
def test_blocks_partition_each_level(z: int) -> None:
    grid = MetatileGrid(metatile=2, margin_px=98)
    n = 1 << z
    tiles = [TileKey("w", z, x, y) for y in range(n) for x in range(n)]
    units = {grid.unit_of(k) for k in tiles}
    members = [m for u in units for m in grid.members(u)]
    assert sorted(members) == sorted(tiles)  # every tile in exactly one block
    for k in tiles:
        unit = grid.unit_of(k)
        assert unit in grid.members(unit) and k in grid.members(unit)
        assert grid.unit_of(unit) == unit  # a name names its own block


def test_blocks_wrap_the_antimeridian_and_stop_at_the_poles() -> None:
    grid = MetatileGrid(metatile=2, margin_px=98)
    assert grid.offset == 1
    z, n = 4, 16
    east = grid.unit_of(TileKey("w", z, n - 1, 5))
    assert grid.unit_of(TileKey("w", z, 0, 5)) == east  # one block across x = 0
    assert {k.x for k in grid.members(east)} == {n - 1, 0}
    top = grid.unit_of(TileKey("w", z, 3, 0))
    assert [k.y for k in grid.members(top)] == [0, 0]  # the row above the world is not a tile
    r, c = grid.offset_in_block_px(east, TileKey("w", z, 0, 5))
    assert c == 256
    assert grid.window_origin_px(top)[0] == -256 - 98  # the core starts one (virtual) tile above row 0


def test_shifted_grid_keeps_a_cold_cascade_two_blocks_wide() -> None:
    for margin in (42, 98, 150):
        assert worst_blocks_per_axis(2, 0, margin) == 3  # unshifted: windows spill past both parent edges
        assert worst_blocks_per_axis(2, 1, margin) == 2
        assert best_offset_tiles(2, margin) == 1


def test_parent_tiles_cover_the_window() -> None:
    grid = MetatileGrid(metatile=2, margin_px=98)
    unit = grid.unit_of(TileKey("w", 8, 101, 77))
    parents = grid.parent_tiles(unit)
    assert all(p.z == 7 for p in parents)
    row0, col0 = grid.window_origin_px(unit)
    xs, ys = sorted({p.x for p in parents}), sorted({p.y for p in parents})
    assert xs[0] * 256 <= col0 // 2 - 1 and (xs[-1] + 1) * 256 >= (col0 + grid.window_px) // 2 + 1
    assert ys[0] * 256 <= row0 // 2 - 1 and (ys[-1] + 1) * 256 >= (row0 + grid.window_px) // 2 + 1
    assert len(parents) <= 9
