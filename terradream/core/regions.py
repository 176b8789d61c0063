"""Regions: a WGS84 bbox and zooms as grids of XYZ tiles (seeding, export) or tile ranges (cache purges).

Tiles are chosen exactly as mercantile.tiles() chooses them (the same corner tiles and epsilon), but held as column and
row ranges, so a dry run over millions of tiles is instant and keys are produced lazily. Every bbox -> tiles question
in terradream is answered here, so a purge and a seed of the same box cover the same tiles.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import mercantile

from terradream.core.keys import TileKey
from terradream.core.tiles import TILE_SIZE_PX, WEB_MERCATOR_HALF_WORLD_M, WEB_MERCATOR_MAX_LAT_DEG


class TileRange(NamedTuple):
    """The XYZ tiles of one zoom with min_x <= x <= max_x and min_y <= y <= max_y (inclusive): a purge scope."""

    z: int
    min_x: int
    min_y: int
    max_x: int
    max_y: int

    def contains(self, z: int, x: int, y: int) -> bool:
        """Whether tile (z, x, y) lies in this range."""
        return z == self.z and self.min_x <= x <= self.max_x and self.min_y <= y <= self.max_y


def in_ranges(z: int, x: int, y: int, tile_ranges: Sequence[TileRange] | None) -> bool:
    """Whether tile (z, x, y) is inside any of tile_ranges; None means everywhere."""
    return tile_ranges is None or any(r.contains(z, x, y) for r in tile_ranges)


@dataclass(frozen=True)
class BBox:
    """A WGS84 box in degrees; west > east means it crosses the antimeridian."""

    west_deg: float
    south_deg: float
    east_deg: float
    north_deg: float

    def parts(self) -> list[tuple[float, float, float, float]]:
        """The box as one or two (w, s, e, n) boxes that do not cross the antimeridian, west to east."""
        if self.west_deg > self.east_deg:
            return [(self.west_deg, self.south_deg, 180.0, self.north_deg),
                    (-180.0, self.south_deg, self.east_deg, self.north_deg)]
        return [(self.west_deg, self.south_deg, self.east_deg, self.north_deg)]


def parse_bbox(text: str) -> BBox:
    """A BBox from 'W,S,E,N' in degrees; ValueError when malformed or out of range."""
    items = [s.strip() for s in text.split(",")]
    if len(items) != 4:
        raise ValueError(f"bbox must be W,S,E,N in degrees, got {text!r}")
    try:
        west, south, east, north = (float(s) for s in items)
    except ValueError:
        raise ValueError(f"bbox must be four numbers W,S,E,N, got {text!r}") from None
    if not all(-180.0 <= v <= 180.0 for v in (west, east)):
        raise ValueError(f"bbox longitudes must lie in [-180, 180], got {text!r}")
    if not (-90.0 <= south < north <= 90.0):
        raise ValueError(f"bbox needs -90 <= south < north <= 90, got {text!r}")
    if west == east:
        raise ValueError(f"bbox is empty (west == east), got {text!r}")
    return BBox(west, south, east, north)


def parse_zoom_range(text: str) -> range:
    """Zooms from 'Z' or 'A-B' (inclusive); ValueError when malformed or reversed."""
    first, sep, last = text.strip().partition("-")
    try:
        low, high = int(first), int(last) if sep else int(first)
    except ValueError:
        raise ValueError(f"zoom must be Z or A-B, got {text!r}") from None
    if not (0 <= low <= high <= 30):
        raise ValueError(f"zoom range must satisfy 0 <= A <= B <= 30, got {text!r}")
    return range(low, high + 1)


@dataclass(frozen=True)
class TileGrid:
    """A rectangle of tiles at one zoom: column spans west to east (two when it wraps across the antimeridian)."""

    z: int
    column_spans: tuple[range, ...]
    rows: range

    @property
    def column_count(self) -> int:
        """Tiles per row."""
        return sum(len(span) for span in self.column_spans)

    @property
    def count(self) -> int:
        """Tiles in the grid."""
        return self.column_count * len(self.rows)

    @property
    def width_px(self) -> int:
        """Mosaic width in pixels."""
        return self.column_count * TILE_SIZE_PX

    @property
    def height_px(self) -> int:
        """Mosaic height in pixels."""
        return len(self.rows) * TILE_SIZE_PX

    @property
    def pixel_size_m(self) -> float:
        """Side of one pixel in EPSG:3857 metres at this zoom."""
        return 2 * WEB_MERCATOR_HALF_WORLD_M / (TILE_SIZE_PX << self.z)

    @property
    def origin_m(self) -> tuple[float, float]:
        """EPSG:3857 (x, y) of the top-left corner; past the antimeridian x runs beyond 180 degrees, as GDAL allows."""
        bounds = mercantile.xy_bounds(self.column_spans[0][0], self.rows[0], self.z)
        return bounds.left, bounds.top

    def columns(self) -> Iterator[int]:
        """Tile columns west to east."""
        return itertools.chain.from_iterable(self.column_spans)

    def column_offset(self, x: int) -> int:
        """How many columns lie west of column x in this grid."""
        before = 0
        for span in self.column_spans:
            if x in span:
                return before + x - span.start
            before += len(span)
        raise ValueError(f"column {x} is not in the grid")

    def place_px(self, key: TileKey) -> tuple[int, int]:
        """(column, row) pixel offset of a tile inside the mosaic."""
        return self.column_offset(key.x) * TILE_SIZE_PX, (key.y - self.rows.start) * TILE_SIZE_PX

    def keys(self, world: str) -> Iterator[TileKey]:
        """The grid's tiles of one world, row by row, west to east."""
        return (TileKey(world, self.z, x, y) for y in self.rows for x in self.columns())

    def bounds_deg(self) -> tuple[float, float, float, float]:
        """WGS84 (west, south, east, north); west > east when the grid crosses the antimeridian."""
        north_west = mercantile.bounds(self.column_spans[0][0], self.rows[0], self.z)
        south_east = mercantile.bounds(self.column_spans[-1][-1], self.rows[-1], self.z)
        return north_west.west, south_east.south, south_east.east, north_west.north


def part_spans(part: tuple[float, float, float, float], z: int) -> tuple[range, range]:
    """(columns, rows) of the tiles mercantile.tiles() yields for a box not crossing the antimeridian."""
    west, south, east, north = part
    west, south = max(-180.0, west), max(-WEB_MERCATOR_MAX_LAT_DEG, south)
    east, north = min(180.0, east), min(WEB_MERCATOR_MAX_LAT_DEG, north)
    upper_left = mercantile.tile(west, north, z)
    lower_right = mercantile.tile(east - mercantile.LL_EPSILON, south + mercantile.LL_EPSILON, z)
    return range(upper_left.x, lower_right.x + 1), range(upper_left.y, lower_right.y + 1)


def tile_grid(bbox: BBox, z: int) -> TileGrid:
    """The tiles covering bbox at zoom z (mercantile's choice); a box crossing the antimeridian wraps, no duplicates."""
    spans = [part_spans(part, z) for part in bbox.parts()]
    columns, rows = spans[0]
    if len(spans) == 1:
        return TileGrid(z, (columns,), rows)
    east_columns = spans[1][0]  # starts at column 0; keep only what the western part did not already cover
    east_columns = range(min(east_columns.stop, columns.start))
    return TileGrid(z, (columns, east_columns) if east_columns else (columns,), rows)


def bbox_tile_ranges(west_deg: float, south_deg: float, east_deg: float, north_deg: float,
                     zooms: Iterable[int]) -> list[TileRange]:
    """Tile ranges covering a WGS84 bbox at each zoom, the tiles tile_grid() picks (two ranges per zoom when the box
    crosses the antimeridian, west > east)."""
    bbox = BBox(west_deg, south_deg, east_deg, north_deg)
    return [TileRange(grid.z, span.start, grid.rows.start, span.stop - 1, grid.rows.stop - 1)
            for grid in (tile_grid(bbox, z) for z in zooms) for span in grid.column_spans]
