"""Coverage: the tiles of several WGS84 boxes and GeoJSON polygons, zoom by zoom, as merged column spans per row.

Boxes pick tiles exactly as core.regions does (mercantile's choice, antimeridian wrap). A polygon covers every tile
whose open square meets it: the tiles its edges pass through, plus the tiles whose middle row line lies inside
(even-odd, so holes count). Edges are straight lines between vertices in Web Mercator, and polygons must not cross the
antimeridian (RFC 7946 asks writers to split them there). Work grows with the rows edges cross, not the tiles covered.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mercantile

from terradream.core.keys import TileKey
from terradream.core.regions import BBox, TileGrid, tile_grid
from terradream.core.tiles import WEB_MERCATOR_MAX_LAT_DEG

Ring = tuple[tuple[float, float], ...]  # (lon, lat) positions in degrees, first == last
Polygon = tuple[Ring, ...]  # an exterior ring, then holes
Spans = tuple[range, ...]


def merged_spans(spans: Iterable[range]) -> Spans:
    """Column ranges sorted west to east with overlapping or touching ones joined."""
    out: list[range] = []
    for span in sorted((s for s in spans if s), key=lambda s: s.start):
        if out and span.start <= out[-1].stop:
            out[-1] = range(out[-1].start, max(out[-1].stop, span.stop))
        else:
            out.append(span)
    return tuple(out)


def mercator_unit(lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """(x, y) in [0, 1] of the Web Mercator square, y down, latitude clamped to the square."""
    lat = math.radians(max(-WEB_MERCATOR_MAX_LAT_DEG, min(WEB_MERCATOR_MAX_LAT_DEG, lat_deg)))
    return (lon_deg + 180.0) / 360.0, (1.0 - math.asinh(math.tan(lat)) / math.pi) / 2.0


def open_cells(low: float, high: float, n: int) -> range:
    """Indices i in [0, n) whose open interval (i, i+1) meets [low, high] (a point on a cell border meets none)."""
    if low == high:
        cell = math.floor(low)
        return range(0) if cell == low else range(max(cell, 0), min(cell + 1, n))
    return range(max(math.floor(low), 0), min(math.ceil(high), n))


def polygon_rows(polygons: Sequence[Polygon], z: int) -> dict[int, Spans]:
    """Tile rows -> merged column spans of every tile at zoom z that meets one of the polygons."""
    n = 1 << z
    found: dict[int, list[range]] = defaultdict(list)
    for polygon in polygons:
        crossings: dict[int, list[float]] = defaultdict(list)
        for ring in polygon:
            points = [tuple(c * n for c in mercator_unit(lon, lat)) for lon, lat in ring]
            for (x0, y0), (x1, y1) in itertools.pairwise(points):
                for row in open_cells(min(y0, y1), max(y0, y1), n):  # tiles the edge passes through
                    if y0 == y1:
                        found[row].append(open_cells(min(x0, x1), max(x0, x1), n))
                        continue
                    ya, yb = max(row, min(y0, y1)), min(row + 1, max(y0, y1))
                    xa, xb = (x0 + (y - y0) * (x1 - x0) / (y1 - y0) for y in (ya, yb))
                    found[row].append(open_cells(min(xa, xb), max(xa, xb), n))
                for row in range(max(math.floor(min(y0, y1) - 0.5), 0), min(math.ceil(max(y0, y1)), n)):
                    middle = row + 0.5
                    if (y0 <= middle) != (y1 <= middle):  # half-open rule: each crossing counted once
                        crossings[row].append(x0 + (middle - y0) * (x1 - x0) / (y1 - y0))
        for row, xs in crossings.items():  # inside between crossing pairs (even-odd)
            xs.sort()
            found[row].extend(open_cells(a, b, n) for a, b in zip(xs[::2], xs[1::2], strict=False))
    return {row: merged_spans(spans) for row, spans in found.items()}


@dataclass(frozen=True)
class TileSet:
    """The covered tiles of one zoom: the boxes' grids and the polygons' rows, each tile once."""

    z: int
    grids: tuple[TileGrid, ...]
    polygon_rows: Mapping[int, Spans] = field(default_factory=dict)

    def rows(self) -> Iterator[tuple[int, Spans]]:
        """(row, merged column spans) north to south."""
        by_row: dict[int, list[range]] = defaultdict(list)
        for grid in self.grids:
            for row in grid.rows:
                by_row[row].extend(grid.column_spans)
        for row, spans in self.polygon_rows.items():
            by_row[row].extend(spans)
        for row in sorted(by_row):
            yield row, merged_spans(by_row[row])

    @property
    def count(self) -> int:
        """Tiles in the set (instant for a single box)."""
        if len(self.grids) == 1 and not self.polygon_rows:
            return self.grids[0].count
        return sum(len(span) for _, spans in self.rows() for span in spans)

    def keys(self, world: str) -> Iterator[TileKey]:
        """The tiles of one world, row by row, west to east."""
        return (TileKey(world, self.z, x, row) for row, spans in self.rows() for span in spans for x in span)

    def bounds_deg(self) -> tuple[float, float, float, float]:
        """WGS84 (west, south, east, north) of the tiles; a single box keeps its antimeridian wrap (west > east)."""
        if len(self.grids) == 1 and not self.polygon_rows:
            return self.grids[0].bounds_deg()
        rows = list(self.rows())
        if not rows:
            raise ValueError(f"no tiles at zoom {self.z}")
        west_x = min(spans[0].start for _, spans in rows)
        east_x = max(spans[-1].stop - 1 for _, spans in rows)
        north_west, south_east = mercantile.bounds(west_x, rows[0][0], self.z), mercantile.bounds(east_x, rows[-1][0],
                                                                                                   self.z)
        return north_west.west, south_east.south, south_east.east, north_west.north


@dataclass(frozen=True)
class Coverage:
    """Where a seed or export runs: boxes and polygons in WGS84 degrees (their union)."""

    boxes: tuple[BBox, ...] = ()
    polygons: tuple[Polygon, ...] = ()

    def tile_set(self, z: int) -> TileSet:
        """The covered tiles at zoom z."""
        return TileSet(z, tuple(tile_grid(box, z) for box in self.boxes), polygon_rows(self.polygons, z))

    def tile_sets(self, zooms: range) -> list[TileSet]:
        """One tile set per zoom, lowest zoom first (parents before children)."""
        return [self.tile_set(z) for z in zooms]

    def envelope(self) -> BBox:
        """The one box holding everything (a raster's extent); ValueError when several shapes cross the antimeridian."""
        if len(self.boxes) == 1 and not self.polygons:
            return self.boxes[0]
        if any(box.west_deg > box.east_deg for box in self.boxes):
            raise ValueError("a box crossing the antimeridian cannot be joined with other shapes in one raster")
        wests = [box.west_deg for box in self.boxes] + [lon for p in self.polygons for lon, _ in p[0]]
        easts = [box.east_deg for box in self.boxes] + [lon for p in self.polygons for lon, _ in p[0]]
        souths = [box.south_deg for box in self.boxes] + [lat for p in self.polygons for _, lat in p[0]]
        norths = [box.north_deg for box in self.boxes] + [lat for p in self.polygons for _, lat in p[0]]
        return BBox(min(wests), min(souths), max(easts), max(norths))


def keys_of(world: str, tile_sets: Sequence[TileSet]) -> Iterator[TileKey]:
    """Every tile of the sets, lazily, zoom by zoom."""
    return itertools.chain.from_iterable(tile_set.keys(world) for tile_set in tile_sets)


def parse_ring(positions: Any) -> Ring:
    """A closed ring of (lon, lat) from GeoJSON positions; ValueError when malformed or out of range."""
    if not isinstance(positions, list) or len(positions) < 4:
        raise ValueError("a polygon ring needs at least four positions")
    ring = []
    for position in positions:
        if not (isinstance(position, list) and len(position) >= 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in position[:2])):
            raise ValueError(f"a position must be [lon, lat], got {position!r}")
        lon, lat = float(position[0]), float(position[1])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise ValueError(f"position {position!r} is outside [-180, 180] x [-90, 90]")
        ring.append((lon, lat))
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return tuple(ring)


def geometry_polygons(geometry: Any) -> list[Polygon]:
    """The polygons of a GeoJSON geometry, feature or feature collection; ValueError for points, lines or junk."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind == "FeatureCollection":
        return [p for feature in geometry.get("features") or [] for p in geometry_polygons(feature)]
    if kind == "Feature":
        return geometry_polygons(geometry.get("geometry"))
    if kind == "GeometryCollection":
        return [p for g in geometry.get("geometries") or [] for p in geometry_polygons(g)]
    if kind == "Polygon":
        return [tuple(parse_ring(r) for r in geometry.get("coordinates") or [])]
    if kind == "MultiPolygon":
        return [tuple(parse_ring(r) for r in rings) for rings in geometry.get("coordinates") or []]
    raise ValueError(f"GeoJSON coverage takes Polygon and MultiPolygon geometries, got {kind!r}")


def parse_geojson(text: str) -> list[Polygon]:
    """The polygons of a GeoJSON document; ValueError when it is not JSON or holds no polygon."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    polygons = [p for p in geometry_polygons(document) if p]
    if not polygons:
        raise ValueError("the GeoJSON holds no polygon")
    return polygons
