"""Raster exports of one zoom in EPSG:3857: a Cloud Optimized GeoTIFF or a georeferenced PNG, written by rasterio.

Tiles go into a tiled staging GeoTIFF (one XYZ tile per 256 px block); finish() turns it into a COG with GDAL's own COG
driver (overviews before the data, the layout `rio cogeo validate` checks), JPEG by default, WebP, or lossless DEFLATE
or LZW on request. The PNG gets a `.pgw` world file, a `.prj` and GDAL's `.aux.xml`. rasterio loads only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from terradream import __version__
from terradream.cache.codec import JPEG_QUALITY, WEBP_QUALITY, decode_png
from terradream.core.keys import TileKey
from terradream.core.regions import TileGrid
from terradream.core.tiles import TILE_SIZE_PX
from terradream.data.sources import TilesetInfo

if TYPE_CHECKING:
    from rasterio.transform import Affine

COMPRESSIONS = ("jpeg", "webp", "deflate", "lzw")  # the first two are lossy: small files of imagery
LOSSY_QUALITY = {"jpeg": JPEG_QUALITY, "webp": WEBP_QUALITY}


def grid_transform(grid: TileGrid) -> Affine:
    """The affine pixel -> EPSG:3857 transform of a tile grid (north up, square pixels)."""
    from rasterio.transform import Affine

    left, top = grid.origin_m
    return Affine(grid.pixel_size_m, 0.0, left, 0.0, -grid.pixel_size_m, top)


def world_file_text(transform: Affine) -> str:
    """An ESRI world file (.pgw): pixel size, rotations, and the centre of the top-left pixel."""
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    centre_x, centre_y = c + a / 2 + b / 2, f + d / 2 + e / 2
    return "\n".join(repr(float(v)) for v in (a, d, b, e, centre_x, centre_y)) + "\n"


def cog_options(compression: str) -> dict[str, str]:
    """GDAL COG driver creation options: 256 px blocks, average overviews, the compression (and its quality)."""
    options = {"BLOCKSIZE": str(TILE_SIZE_PX), "COMPRESS": compression.upper(), "OVERVIEW_RESAMPLING": "AVERAGE",
               "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS"}
    if compression in LOSSY_QUALITY:
        options["QUALITY"] = str(LOSSY_QUALITY[compression])
    else:
        options["PREDICTOR"] = "YES"
    return options


class RasterWriter:
    """A mosaic of one zoom as a COG or a PNG in EPSG:3857, one tile per 256 px window."""

    def __init__(self, path: Path, grid: TileGrid, fmt: str, world: str, info: TilesetInfo,
                 compression: str = "jpeg") -> None:
        """Create the staging dataset (a tiled GeoTIFF for a COG; the PNG driver assembles in memory)."""
        import rasterio
        from rasterio.crs import CRS

        self.path, self.grid, self.fmt, self.compression = path, grid, fmt, compression
        self.staging = path.with_name(f"{path.stem}.staging.tif") if fmt == "tif" else path
        profile: dict[str, object] = {"width": grid.width_px, "height": grid.height_px, "count": 3,
                                      "dtype": "uint8", "crs": CRS.from_epsg(3857),
                                      "transform": grid_transform(grid)}
        if fmt == "tif":
            profile.update(driver="GTiff", tiled=True, blockxsize=TILE_SIZE_PX, blockysize=TILE_SIZE_PX,
                           compress="deflate", predictor=2, photometric="RGB", bigtiff="IF_SAFER")
        else:
            profile.update(driver="PNG")
        self.dataset = rasterio.open(self.staging, "w", **profile)
        self.dataset.update_tags(
            TIFFTAG_SOFTWARE=f"terradream {__version__}", TIFFTAG_COPYRIGHT=info.attribution,
            TIFFTAG_IMAGEDESCRIPTION=f"terradream world {world!r} z{grid.z}, model version {info.version}",
            world=world, model_version=info.version, zoom=str(grid.z))

    def write(self, key: TileKey, png: bytes) -> None:
        """Decode the tile and write it into its window."""
        from rasterio.windows import Window

        col_px, row_px = self.grid.place_px(key)
        window = Window(col_px, row_px, TILE_SIZE_PX, TILE_SIZE_PX)
        self.dataset.write(decode_png(png).transpose(2, 0, 1), window=window)

    def finish(self) -> None:
        """COG: copy the staging GeoTIFF through GDAL's COG driver; PNG: also write the .pgw world file and the .prj."""
        import rasterio.shutil
        from rasterio.crs import CRS

        transform = self.dataset.transform
        self.dataset.close()
        if self.fmt == "tif":
            rasterio.shutil.copy(self.staging, self.path, driver="COG", **cog_options(self.compression))
            self.staging.unlink()
        else:
            self.path.with_suffix(".pgw").write_text(world_file_text(transform))
            self.path.with_suffix(".prj").write_text(CRS.from_epsg(3857).to_wkt(version="WKT1_ESRI"))

    def abort(self) -> None:
        """Close the dataset as it is."""
        self.dataset.close()
