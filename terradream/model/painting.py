"""The structure field applied to one window: its newest octave as detail, and where the model's grain is calmed.

A window's detail is the newest octave of what the layout changes at its zoom (minus the upsample of its own 2x2
means) over its core plus the final projection's reach, with land cover read from the parent blurred by a fixed
radius (terradream.model.structure has the layout itself). Every value is a function of global position only, so the
region can be painted in horizontal bands on several threads and give the same numbers as in one piece; seams stay
exact either way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from terradream.model.atlas import FarmlandAtlas, default_farmland
from terradream.model.coast import COAST_MAX_ZOOM, Shore, paint_shore, water_and_shore
from terradream.model.coast import SETTINGS as COAST_SETTINGS
from terradream.model.lattice import Grid
from terradream.model.places import PlaceAtlas, default_places
from terradream.model.snow import snow_fraction
from terradream.model.streams import SETTINGS as STREAM_SETTINGS
from terradream.model.structure import STRUCTURE_REVISION, land_cover, layout
from terradream.model.terrain import ReliefAtlas, cover_ruggedness, default_relief, shade_relief
from terradream.model.water import WaterAtlas, default_atlas

STRUCTURE_BASE_RADIUS_PX = 8  # land cover for the structure field is read from the parent blurred this much
CALM_SNOW_SHARE = 0.8  # snowfields are calmed as if this much water
CALM_SAND_SHARE = 0.8  # ... and the sand along shores
STRUCTURE_BANDS = 2  # horizontal bands a window's structure is painted in, one thread each (the same numbers)


@dataclass(frozen=True)
class WindowSpec:
    """Everything that determines one window's output.

    parent_px is the parent imagery under the window plus one parent pixel on every side (for bilinear upsampling),
    uint8 of shape (window/2 + 2, window/2 + 2, 3); log2_mpp holds the ground resolution of each block-row.
    """

    seed: int
    z: int
    row0: int
    col0: int
    parent_px: np.ndarray
    log2_mpp: np.ndarray
    real_water: bool = False  # paint real shorelines, lakes, rivers and towns (earth) into the structure field


def upsample2_bilinear(parent: torch.Tensor) -> torch.Tensor:
    """2x bilinear upsample of (B, C, h+2, w+2) with a 1 px apron, returning the exact interior (B, C, 2h, 2w)."""
    up = F.interpolate(parent, scale_factor=2, mode="bilinear", align_corners=False)
    return up[:, :, 2:-2, 2:-2]


def box_blur_region(img: torch.Tensor, start: int, size: int, radius: int) -> np.ndarray:
    """Means over (2 radius + 1)^2 boxes of img (1, C, H, W) on the square [start, start + size) of both axes, as
    (size, size, C) float64: running sums down the rows, then across the columns (the box is separable)."""
    k = 2 * radius + 1
    lo, hi = start - radius, start + size + radius
    x = img[0, :, lo:hi, lo:hi].double()
    for dim in (1, 2):
        sums = F.pad(x.cumsum(dim), (1, 0) if dim == 2 else (0, 0, 1, 0))  # sums[i] = the sum of the first i values
        x = (sums.narrow(dim, k, size) - sums.narrow(dim, 0, size)) / k
    return x.permute(1, 2, 0).numpy()


def row_bands(rows: int, bands: int) -> list[slice]:
    """rows split into `bands` consecutive slices of nearly equal length.

    >>> row_bands(5, 2)
    [slice(0, 2, None), slice(2, 5, None)]
    """
    edges = [rows * i // bands for i in range(bands + 1)]
    return [slice(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]


class RealWater(NamedTuple):
    """Earth's real water over a square of global pixels: its share of every pixel (smoothed coasts and rivers) and
    the shore (water_and_shore); None where not known, or no shore is near."""

    share: np.ndarray | None
    shore: Shore | None

    def cut(self, at: int, size: int) -> RealWater:
        """The same of the size x size square from (at, at) of this one (the values of global pixels: any square
        gives a pixel the same ones)."""
        part = (slice(at, at + size), slice(at, at + size))
        shore = None if self.shore is None else self.shore.cut(part)
        return RealWater(None if self.share is None else self.share[part], shore)


@dataclass
class StructurePainter:
    """Paints the structure field into windows; earth's real water, towns and relief are loaded on first use.

    reach_px: how far the final projection reaches beyond a window's core (the detail is computed that far out)."""

    reach_px: int
    bands: int = STRUCTURE_BANDS

    @cached_property
    def water(self) -> WaterAtlas:
        """Real shorelines, lakes and rivers (GSHHG, WDB II), loaded on first use."""
        return default_atlas()

    @cached_property
    def places(self) -> PlaceAtlas:
        """Real settlements (GeoNames), loaded on first use."""
        return default_places()

    @cached_property
    def relief(self) -> ReliefAtlas:
        """How rugged the real Earth is (Natural Earth shaded relief), loaded on first use."""
        return default_relief()

    @cached_property
    def farmland(self) -> FarmlandAtlas:
        """How likely the real Earth's land is farmed (from Blue Marble's colours), loaded on first use."""
        return default_farmland()

    @property
    def identity(self) -> str:
        """What decides the painted numbers (besides the model): part of the model version, hence of cache keys."""
        return (f"structure/{STRUCTURE_REVISION}/{STREAM_SETTINGS}/{STRUCTURE_BASE_RADIUS_PX}/{CALM_SNOW_SHARE}/"
                f"{CALM_SAND_SHARE}/{self.water.identity}/{COAST_SETTINGS}/{self.places.identity}/"
                f"{self.relief.identity}/{self.farmland.identity}")

    def warm(self) -> None:
        """Load the real data earth's windows read (water, places, relief, farmland) now rather than in the first
        windows."""
        self.places.warm()
        self.water.warm()
        self.relief.warm()
        self.farmland.warm()

    @cached_property
    def _band_work(self) -> ThreadPoolExecutor:
        """Threads for all bands but the first, which the calling thread paints itself."""
        return ThreadPoolExecutor(max(1, self.bands - 1), thread_name_prefix="terradream-bands")

    def window_water(self, spec: WindowSpec, window_px: int) -> RealWater:
        """Earth's real water over every window pixel (RealWater), or nothing where no real water is known."""
        return self._real_water(spec, spec.z, spec.row0, spec.col0, window_px)

    def _real_water(self, spec: WindowSpec, z: int, row0: int, col0: int, size: int) -> RealWater:
        """Earth's real water over a size x size square of global pixels at zoom z, or nothing where none is known
        (spec: the window it is for)."""
        if not spec.real_water:
            return RealWater(None, None)
        water, shore = water_and_shore(self.water.water_window, z, row0, col0, size, size)
        return RealWater(np.maximum(water, self.water.rivers_window(z, row0, col0, size, size)), shore)

    def calm_share(self, spec: WindowSpec, real: RealWater) -> np.ndarray:
        """The share of every window pixel where the model's grain is damped, (1, W, W): open water (real's, from
        window_water, else read from the upsampled parent's colours), snowfields, which are smooth too (their
        structure comes from the relief), and earth's beaches; a function of global position only."""
        parent = torch.from_numpy(spec.parent_px).permute(2, 0, 1)[None].float() / 255.0
        cover = land_cover(upsample2_bilinear(parent)[0].permute(1, 2, 0).numpy())
        wet = np.asarray(cover["water"] if real.share is None else real.share, np.float32)
        calm = np.maximum(wet, CALM_SNOW_SHARE * cover["snow"])
        if real.shore is not None:
            calm = np.maximum(calm, CALM_SAND_SHARE * real.shore.sand)
        return calm[None].astype(np.float32)

    def detail(self, spec: WindowSpec, window_px: int, margin_px: int,
               window: RealWater | None = None) -> np.ndarray:
        """The structure field's newest octave over a window, (3, W, W) in [-1, 1] units: what the layout changes at
        this zoom minus the bilinear upsample of its 2x2 means (a Laplacian band: the coarser part is in the parent
        already, and the exact projection would remove it anyway), zero beyond the core's reach.

        The layout is painted one parent pixel further out on every side, so its 2x2 means have the apron the
        upsample reads, and every value stays a function of global position.
        window: window_water(spec), when already read: the region at this zoom is cut from it (the same values:
        water and shores are functions of global pixels)."""
        w, reach = window_px, self.reach_px
        size, start = w - 2 * margin_px + 2 * reach, margin_px - reach  # the region at this zoom, in window pixels
        grown, at = size + 4, start - 2  # ... with a parent pixel more on every side
        parent = torch.from_numpy(spec.parent_px).permute(2, 0, 1)[None].float() / 255.0
        up = upsample2_bilinear(parent)
        base = box_blur_region(up, at, grown, STRUCTURE_BASE_RADIUS_PX)
        # how much of each pixel is snow is read sharp: a blur would spread a dark parent pixel's share around it
        share = snow_fraction(up[0, :, at : at + grown, at : at + grown].permute(1, 2, 0).numpy())
        here_px = (spec.z, spec.row0 + at, spec.col0 + at, grown)
        water, shore = self._real_water(spec, *here_px) if window is None else window.cut(at, grown)
        here = Grid.of_window(*here_px, grown)
        rows = row_bands(grown, self.bands)
        others = [self._band_work.submit(self._layout_rows, spec, here, base, share, water, shore, rows[i])
                  for i in range(1, self.bands)]
        parts = [self._layout_rows(spec, here, base, share, water, shore, rows[0])]
        parts += [f.result() for f in others]
        change = torch.from_numpy(np.concatenate(parts)).permute(2, 0, 1)[None].float()
        band = change[0, :, 2:-2, 2:-2] - upsample2_bilinear(F.avg_pool2d(change, 2))[0]
        detail = np.zeros((3, w, w), np.float32)
        detail[:, start : start + size, start : start + size] = 2.0 * band.numpy()
        return detail

    def _layout_rows(self, spec: WindowSpec, g: Grid, base: np.ndarray, share: np.ndarray, water: np.ndarray | None,
                     shore: Shore | None, rows: slice) -> np.ndarray:
        """The structure field's colours minus base on some rows of a region: layout, then relief; earth's real
        towns, ruggedness and farmland where this is earth, else ruggedness read from the colours. share: the snow
        share of the region's pixels (snow_fraction of the sharp upsampled parent); shore: the region's Shore where
        earth has shores there (water_and_shore)."""
        g, base = Grid(g.x, g.y[rows], g.px_m), base[rows].astype(np.float32)  # every mask follows in float32
        water = None if water is None else water[rows]
        towns = self.places.density(spec.seed, g) if spec.real_water else None
        cover = land_cover(base)
        rugged = self.relief.sample(g) if spec.real_water else None
        rugged = cover_ruggedness(cover) if rugged is None else rugged
        farmland = self.farmland.sample(g) if spec.real_water else None
        shore = None if shore is None else shore.cut((rows, slice(None)))
        on_shore = None if shore is None or water is None else (  # (a shore is only read with the water)
            lambda land, sea: paint_shore(spec.seed, g, land, sea, shore, rugged, water))
        painted = layout(spec.seed, g, base, water, towns, cover, rugged, farmland, on_shore,
                         water_settled=spec.z > COAST_MAX_ZOOM)
        return shade_relief(spec.seed, g, painted, share[rows], rugged) - base
