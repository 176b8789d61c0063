"""Export (martin-cp / gdal_translate style): a generated coverage as a COG, a georeferenced PNG, MBTiles or PMTiles.

A raster (.tif, .png) holds one zoom over the coverage's envelope (rasters.py); a tile archive (.mbtiles, .pmtiles)
holds any zooms, only the covered tiles, as PNG, JPEG or WebP (archives.py). Everything is written into a staging folder
next to the output and moved into place only when every tile arrived, so a failed export leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from terradream.cache.codec import TileFormat
from terradream.core.coverage import Coverage, TileSet, keys_of
from terradream.core.keys import TileKey
from terradream.core.regions import TileGrid, tile_grid
from terradream.data.archives import MBTilesWriter, PMTilesWriter, archive_metadata
from terradream.data.rasters import RasterWriter
from terradream.data.seeding import RunReport, run_tracked
from terradream.data.sources import TileOutcome, TilesetInfo, TileSource

FORMATS = {".tif": "tif", ".tiff": "tif", ".png": "png", ".mbtiles": "mbtiles", ".pmtiles": "pmtiles"}
ARCHIVES = ("mbtiles", "pmtiles")
MAX_PNG_PIXELS = 10_000 * 10_000  # the PNG is assembled in memory; larger regions should go to GeoTIFF
# Rough bytes per 256 px tile of generated imagery (a measured z1 tile: 112 KB PNG, 18 KB WebP), for --dry-run.
TYPICAL_TILE_BYTES = {"png": 112_000, "jpg": 28_000, "webp": 18_000, "jpeg": 28_000, "deflate": 110_000,
                      "lzw": 130_000}
OVERVIEW_SHARE = 4 / 3  # a COG's overviews add a third to its full-resolution data


def format_of(path: Path) -> str:
    """'tif', 'png', 'mbtiles' or 'pmtiles' from the output's suffix; ValueError otherwise."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported output {path.name!r}: use .tif, .png, .mbtiles or .pmtiles")
    return fmt


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


@dataclass(frozen=True)
class ExportPlan:
    """What an export will write: the format, the tiles per zoom (a raster has one zoom) and their encoding."""

    fmt: str
    tile_sets: list[TileSet]
    tile_format: TileFormat = TileFormat.png
    compression: str = "jpeg"

    @property
    def count(self) -> int:
        """Tiles to fetch."""
        return sum(tile_set.count for tile_set in self.tile_sets)

    @property
    def grid(self) -> TileGrid:
        """A raster's mosaic grid (its one zoom's only grid)."""
        return self.tile_sets[0].grids[0]

    def keys(self, world: str) -> Iterator[TileKey]:
        """The tiles to fetch, zoom by zoom."""
        return keys_of(world, self.tile_sets)

    def estimated_bytes(self) -> int:
        """A rough size of the output, from typical tile sizes (generated imagery compresses alike)."""
        if self.fmt in ARCHIVES:
            return self.count * TYPICAL_TILE_BYTES[self.tile_format.value]
        if self.fmt == "png":
            return self.count * TYPICAL_TILE_BYTES["png"]
        return round(self.count * TYPICAL_TILE_BYTES[self.compression] * OVERVIEW_SHARE)


def plan_export(coverage: Coverage, zooms: range, out: Path, tile_format: TileFormat = TileFormat.png,
                compression: str = "jpeg") -> ExportPlan:
    """The tiles of an export; ValueError for an unknown format, several zooms in a raster, or a huge PNG.

    A raster covers the envelope of the coverage (a mosaic is a rectangle); an archive only the covered tiles.
    """
    fmt = format_of(out)
    if fmt in ARCHIVES:
        return ExportPlan(fmt, coverage.tile_sets(zooms), tile_format=tile_format)
    if tile_format is not TileFormat.png:
        raise ValueError(f"--tile-format applies to .mbtiles and .pmtiles; a .{fmt} takes --compress")
    if len(zooms) != 1:
        raise ValueError(f"a .{fmt} export holds one zoom; got {zooms.start}-{zooms.stop - 1} (use .mbtiles)")
    grid = tile_grid(coverage.envelope(), zooms.start)
    if fmt == "png" and grid.width_px * grid.height_px > MAX_PNG_PIXELS:
        raise ValueError(f"{grid.width_px}x{grid.height_px} px is too large for a PNG; export a .tif")
    return ExportPlan(fmt, [TileSet(grid.z, (grid,))], compression=compression)


def open_writer(plan: ExportPlan, path: Path, world: str, info: TilesetInfo) -> TileWriter:
    """The writer of a planned export at path (rasterio and pmtiles load only for their formats)."""
    if plan.fmt in ARCHIVES:
        writer = MBTilesWriter if plan.fmt == "mbtiles" else PMTilesWriter
        return writer(path, archive_metadata(world, info, plan.tile_sets, plan.tile_format), plan.tile_format)
    return RasterWriter(path, plan.grid, plan.fmt, world, info, plan.compression)


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


def human_bytes(size: int) -> str:
    """'12.3 MB'-style size (powers of 1000)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def describe_plan(plan: ExportPlan) -> str:
    """A short human description of what an export covers (for the CLI's closing line and --dry-run)."""
    west, south, east, north = plan.tile_sets[-1].bounds_deg()
    where = f"lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}"
    if plan.fmt in ARCHIVES:
        zooms = f"z{plan.tile_sets[0].z}-{plan.tile_sets[-1].z}"
        return f"{plan.count} {plan.tile_format.value} tiles, {zooms}, {where}"
    return f"{plan.grid.width_px}x{plan.grid.height_px} px at z{plan.grid.z}, {where}"
