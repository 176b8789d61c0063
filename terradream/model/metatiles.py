"""Metatile geometry: which block of tiles (one model window) makes a tile, and which parent tiles that window reads.

A block is metatile x metatile tiles on a grid shifted `offset` tiles from the tile grid. The shift matters: with the
grid at 0, two neighbouring blocks' windows reach past both edges of the parent block under them, so a cold cascade
fans out to 3x3 blocks per level; shifted by one tile, any one or two blocks need at most two parent blocks per axis
(4 windows per level). `best_offset_tiles` finds the shift by walking the cascade along one axis.

A block is named by its first tile inside the world (x wrapped, y clamped), so names are ordinary tile keys: plans,
task graphs and caches use them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from terradream.core.keys import TileKey
from terradream.core.tiles import TILE_SIZE_PX


def parent_px_span(origin_px: int, window_px: int) -> tuple[int, int]:
    """Half-open range of parent-zoom pixels under a window starting at origin_px, plus one pixel of apron each side."""
    return origin_px // 2 - 1, (origin_px + window_px) // 2 + 1


def parent_tiles_under(origin_px: int, window_px: int) -> range:
    """Along one axis: parent-zoom tile indices (unwrapped, unclamped) under a window starting at origin_px."""
    lo, hi = parent_px_span(origin_px, window_px)
    return range(lo // TILE_SIZE_PX, (hi - 1) // TILE_SIZE_PX + 1)


def block_origin_tile(index: int, metatile: int, offset: int) -> int:
    """First tile index (unwrapped, may be negative) of the block holding tile `index`, along one axis."""
    return index - (index - offset) % metatile


def parent_blocks_1d(origins: set[int], metatile: int, offset: int, margin_px: int) -> set[int]:
    """Along one axis: origins of the parent-zoom blocks that the windows of blocks at `origins` read."""
    window = metatile * TILE_SIZE_PX + 2 * margin_px
    return {block_origin_tile(tile, metatile, offset)
            for origin in origins for tile in parent_tiles_under(origin * TILE_SIZE_PX - margin_px, window)}


def worst_blocks_per_axis(metatile: int, offset: int, margin_px: int, levels: int = 10) -> int:
    """Most blocks along one axis that any level of a cold cascade needs, over every start alignment."""
    worst = 1
    for k in range(1 << 6):  # start blocks of every alignment for the first six levels' parity bits
        level = {offset + k * metatile}
        for _ in range(levels):
            level = parent_blocks_1d(level, metatile, offset, margin_px)
            worst = max(worst, len(level))
    return worst


def best_offset_tiles(metatile: int, margin_px: int) -> int:
    """The grid shift (tiles) that keeps a cold cascade narrowest; the smallest shift among equals."""
    return min(range(metatile), key=lambda off: (worst_blocks_per_axis(metatile, off, margin_px), off))


@dataclass(frozen=True)
class MetatileGrid:
    """Blocks of metatile x metatile tiles, shifted offset tiles, each made by one window with margin_px around it."""

    metatile: int
    margin_px: int

    @cached_property
    def offset(self) -> int:
        """Grid shift in tiles (see the module docstring)."""
        return best_offset_tiles(self.metatile, self.margin_px)

    @property
    def core_px(self) -> int:
        """Side of a block in pixels."""
        return self.metatile * TILE_SIZE_PX

    @property
    def window_px(self) -> int:
        """Side of a block's window in pixels."""
        return self.core_px + 2 * self.margin_px

    def unit_of(self, key: TileKey) -> TileKey:
        """The name of the block holding key: its first tile inside the world."""
        ty = block_origin_tile(key.y, self.metatile, self.offset)
        tx = block_origin_tile(key.x, self.metatile, self.offset)
        return TileKey(key.world, key.z, tx % (1 << key.z), max(ty, 0))

    def block_origin(self, unit: TileKey) -> tuple[int, int]:
        """(row, col) tile index of a block's top-left corner, possibly outside the world."""
        return (block_origin_tile(unit.y, self.metatile, self.offset),
                block_origin_tile(unit.x, self.metatile, self.offset))

    def members(self, unit: TileKey) -> list[TileKey]:
        """The tiles a block makes, row by row: those inside the world (x wrapped)."""
        n = 1 << unit.z
        ty, tx = self.block_origin(unit)
        tiles = [TileKey(unit.world, unit.z, (tx + i) % n, ty + j)
                 for j in range(self.metatile) for i in range(self.metatile) if 0 <= ty + j < n]
        return list(dict.fromkeys(tiles))

    def offset_in_block_px(self, unit: TileKey, key: TileKey) -> tuple[int, int]:
        """Where tile key (a member) starts inside its block's core, in pixels (row, col)."""
        ty, tx = self.block_origin(unit)
        return (key.y - ty) * TILE_SIZE_PX, (key.x - tx) % (1 << key.z) * TILE_SIZE_PX

    def window_origin_px(self, unit: TileKey) -> tuple[int, int]:
        """Global (row, col) of the top-left pixel of a block's window, at its zoom (col unwrapped)."""
        ty, tx = self.block_origin(unit)
        return ty * TILE_SIZE_PX - self.margin_px, tx * TILE_SIZE_PX - self.margin_px

    def parent_tiles(self, unit: TileKey) -> list[TileKey]:
        """The parent-zoom tiles a block's window reads (x wrapped, y clamped to the world)."""
        row0, col0 = self.window_origin_px(unit)
        n = 1 << (unit.z - 1)
        ys = sorted({min(max(t, 0), n - 1) for t in parent_tiles_under(row0, self.window_px)})
        xs = sorted({t % n for t in parent_tiles_under(col0, self.window_px)})
        return [TileKey(unit.world, unit.z - 1, x, y) for y in ys for x in xs]
