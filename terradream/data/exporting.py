"""Export (martin-cp / gdal_translate style): a generated region as a GeoTIFF, a georeferenced PNG or an MBTiles file.

GeoTIFF and PNG are written by rasterio (GDAL inside) in EPSG:3857, one XYZ tile per 256 px block; the GeoTIFF is
tiled, DEFLATE-compressed (lossless, so pixels equal the tiles) and carries overviews; the PNG gets a `.pgw` world file,
a `.prj` and GDAL's `.aux.xml`. MBTiles 1.3 keeps the tiles' PNG bytes as they are. Everything is written into a
staging folder next to the output and moved into place only when every tile arrived, so a failed export leaves nothing.
"""

from __future__ import annotations

import html
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetWriter
from rasterio.transform import Affine
from rasterio.windows import Window
from tqdm import tqdm

from terradream import __version__
from terradream.cache.codec import decode_png
from terradream.cache.mbtiles import SCHEMA, tms_row
from terradream.core.keys import TileKey
from terradream.core.regions import BBox, TileGrid, region_grids, region_keys
from terradream.core.tiles import TILE_SIZE_PX
from terradream.data.seeding import RunReport, run_tracked
from terradream.data.sources import TileOutcome, TilesetInfo, TileSource

FORMATS = {".tif": "tif", ".tiff": "tif", ".png": "png", ".mbtiles": "mbtiles"}
MAX_PNG_PIXELS = 10_000 * 10_000  # the PNG is assembled in memory; larger regions should go to GeoTIFF
WEB_MERCATOR = CRS.from_epsg(3857)


def format_of(path: Path) -> str:
    """'tif', 'png' or 'mbtiles' from the output's suffix; ValueError otherwise."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported output {path.name!r}: use .tif, .png or .mbtiles")
    return fmt


def grid_transform(grid: TileGrid) -> Affine:
    """The affine pixel -> EPSG:3857 transform of a tile grid (north up, square pixels)."""
    left, top = grid.origin_m
    return Affine(grid.pixel_size_m, 0.0, left, 0.0, -grid.pixel_size_m, top)


def world_file_text(transform: Affine) -> str:
    """An ESRI world file (.pgw): pixel size, rotations, and the centre of the top-left pixel."""
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    centre_x, centre_y = c + a / 2 + b / 2, f + d / 2 + e / 2
    return "\n".join(repr(float(v)) for v in (a, d, b, e, centre_x, centre_y)) + "\n"


def overview_factors(width_px: int, height_px: int) -> list[int]:
    """Overview decimation factors 2, 4, ... while the overview still spans more than one tile."""
    factors, factor = [], 2
    while max(width_px, height_px) // factor >= TILE_SIZE_PX:
        factors.append(factor)
        factor *= 2
    return factors


class TileWriter(Protocol):
    """Receives the PNG of each tile of the export, then finishes (or aborts) the file."""

    def write(self, key: TileKey, png: bytes) -> None:
        """Put one tile in place."""
        ...

    def finish(self) -> None:
        """Complete and close the file (overviews, sidecars, commit)."""
        ...

    def abort(self) -> None:
        """Close without completing (the staging folder is deleted afterwards)."""
        ...


class RasterWriter:
    """A mosaic of one zoom as a GeoTIFF or PNG in EPSG:3857, one tile per 256 px window."""

    def __init__(self, path: Path, grid: TileGrid, fmt: str, world: str, info: TilesetInfo) -> None:
        """Create the dataset; the PNG driver assembles in memory and encodes when closed."""
        self.path, self.grid, self.fmt = path, grid, fmt
        profile: dict[str, object] = {"width": grid.width_px, "height": grid.height_px, "count": 3,
                                      "dtype": "uint8", "crs": WEB_MERCATOR, "transform": grid_transform(grid)}
        if fmt == "tif":
            profile.update(driver="GTiff", tiled=True, blockxsize=TILE_SIZE_PX, blockysize=TILE_SIZE_PX,
                           compress="deflate",
                           predictor=2, photometric="RGB", bigtiff="IF_SAFER")
        else:
            profile.update(driver="PNG")
        self.dataset: DatasetWriter = rasterio.open(path, "w", **profile)
        self.dataset.update_tags(
            TIFFTAG_SOFTWARE=f"terradream {__version__}", TIFFTAG_COPYRIGHT=info.attribution,
            TIFFTAG_IMAGEDESCRIPTION=f"terradream world {world!r} z{grid.z}, model version {info.version}",
            world=world, model_version=info.version, zoom=str(grid.z))

    def write(self, key: TileKey, png: bytes) -> None:
        """Decode the tile and write it into its window."""
        col_px, row_px = self.grid.place_px(key)
        window = Window(col_px, row_px, TILE_SIZE_PX, TILE_SIZE_PX)
        self.dataset.write(decode_png(png).transpose(2, 0, 1), window=window)

    def finish(self) -> None:
        """GeoTIFF: build average overviews; PNG: also write the .pgw world file and the .prj."""
        if self.fmt == "tif":
            factors = overview_factors(self.grid.width_px, self.grid.height_px)
            if factors:
                self.dataset.build_overviews(factors, Resampling.average)
                self.dataset.update_tags(ns="rio_overview", resampling="average")
        transform = self.dataset.transform
        self.dataset.close()
        if self.fmt == "png":
            self.path.with_suffix(".pgw").write_text(world_file_text(transform))
            self.path.with_suffix(".prj").write_text(WEB_MERCATOR.to_wkt(version="WKT1_ESRI"))

    def abort(self) -> None:
        """Close the dataset as it is."""
        self.dataset.close()


def mbtiles_metadata(world: str, info: TilesetInfo, grids: Sequence[TileGrid]) -> dict[str, str]:
    """MBTiles 1.3 metadata of an export: name, format, bounds, center, zooms, attribution, type and more."""
    z_min, z_max = grids[0].z, grids[-1].z
    west, south, east, north = grids[-1].bounds_deg()
    if west > east:  # MBTiles bounds cannot cross the antimeridian
        west, east = -180.0, 180.0
    return {
        "name": f"terradream {world}",
        "format": "png",
        "bounds": f"{west!r},{south!r},{east!r},{north!r}",
        "center": f"{(west + east) / 2!r},{(south + north) / 2!r},{z_min}",
        "minzoom": str(z_min),
        "maxzoom": str(z_max),
        "attribution": html.escape(info.attribution),  # MBTiles attribution may hold HTML: escape plain text
        "description": f"Generated imagery of terradream world '{world}', model version {info.version}. "
                       f"{info.description}".strip(),
        "type": "baselayer",
        "version": "1",
        "generator": f"terradream {__version__}",
    }


class MBTilesWriter:
    """An MBTiles 1.3 file (the cache's schema, TMS rows) holding the tiles' PNG bytes unchanged."""

    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        """Create the tables and the metadata; tiles are committed in one transaction by finish()."""
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)
        self.conn.executemany("INSERT OR REPLACE INTO metadata (name, value) VALUES (?, ?)", metadata.items())

    def write(self, key: TileKey, png: bytes) -> None:
        """Insert one tile (TMS row)."""
        self.conn.execute("INSERT OR REPLACE INTO tiles (zoom_level, tile_column, tile_row, tile_data) "
                          "VALUES (?, ?, ?, ?)", (key.z, key.x, tms_row(key.z, key.y), png))

    def finish(self) -> None:
        """Commit and close."""
        self.conn.commit()
        self.conn.close()

    def abort(self) -> None:
        """Close without committing."""
        self.conn.close()


@dataclass(frozen=True)
class ExportPlan:
    """What an export will write: the format and one tile grid per zoom (a raster has exactly one)."""

    fmt: str
    grids: list[TileGrid]

    @property
    def count(self) -> int:
        """Tiles to fetch."""
        return sum(grid.count for grid in self.grids)

    def keys(self, world: str) -> Iterator[TileKey]:
        """The tiles to fetch, zoom by zoom."""
        return region_keys(world, self.grids)


def plan_export(bbox: BBox, zooms: range, out: Path) -> ExportPlan:
    """The tiles of an export; ValueError for an unknown format, several zooms in a raster, or a huge PNG."""
    fmt = format_of(out)
    grids = region_grids(bbox, zooms)
    if fmt != "mbtiles" and len(grids) != 1:
        raise ValueError(f"a .{fmt} export holds one zoom; got {zooms.start}-{zooms.stop - 1} (use .mbtiles)")
    if fmt == "png" and grids[0].width_px * grids[0].height_px > MAX_PNG_PIXELS:
        raise ValueError(f"{grids[0].width_px}x{grids[0].height_px} px is too large for a PNG; export a .tif")
    return ExportPlan(fmt, grids)


def open_writer(plan: ExportPlan, path: Path, world: str, info: TilesetInfo) -> TileWriter:
    """The writer of a planned export at path."""
    if plan.fmt == "mbtiles":
        return MBTilesWriter(path, mbtiles_metadata(world, info, plan.grids))
    return RasterWriter(path, plan.grids[0], plan.fmt, world, info)


def export(source: TileSource, world: str, plan: ExportPlan, out: Path, report: RunReport,
           progress: tqdm) -> bool:
    """Write the planned tiles from source to out (and its sidecars); False, writing nothing, if any tile failed."""
    info = source.info(world)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        writer = open_writer(plan, staging / out.name, world, info)

        def sink(outcome: TileOutcome) -> None:
            if outcome.png is not None:
                writer.write(outcome.key, outcome.png)

        try:
            run_tracked(source, plan.keys(world), report, progress, sink)
        except BaseException:
            writer.abort()
            raise
        if report.failures:
            writer.abort()
            return False
        writer.finish()
        for produced in staging.iterdir():
            os.replace(produced, out.parent / produced.name)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe_plan(plan: ExportPlan) -> str:
    """A short human description of what an export covers (for the CLI's closing line)."""
    west, south, east, north = plan.grids[-1].bounds_deg()
    where = f"lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}"
    if plan.fmt == "mbtiles":
        return f"{plan.count} tiles, z{plan.grids[0].z}-{plan.grids[-1].z}, {where}"
    grid = plan.grids[0]
    return f"{grid.width_px}x{grid.height_px} px at z{grid.z}, {where}"
