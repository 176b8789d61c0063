"""The structure field: procedural layout (field parcels, roads, streams, towns, buildings, trees) in world coordinates.

A one-window model cannot draw anything longer than it sees, so long-range layout comes from here: every feature is a
pure function of (world seed, position in Web-Mercator metres), drawn anti-aliased at the pixel size of a zoom. The
sampler adds the layout's newest octave (what it changes at a zoom, less the upsample of its own 2x2 means) to each
window's output before the exact projection onto the parent: the parent already holds the coarser part, so a road is
a faint line at z11, a crisp one at z14 and still the same road, in the same place, at z18. For that, a pixel coarser
than a feature shows what the finer zoom's pixels average to (parcels, buildings), not a point sample of it: the
projection keeps the parent's 2x2 means, so a point sample's error would stay at every finer zoom. What goes where
follows the parent's colours (no roads or fields on water, snow or rock) and slow noise fields (farmland, forest and
town districts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from terradream.model.fields import FIELDS_MAX_PX_M, TRACK, paint_fields
from terradream.model.lattice import (
    FIELD,
    STREAM_STRUCTURE,
    SUN,
    Grid,
    coverage,
    fbm,
    hash2,
    level_slope,
    merc,
    over,
    ramp,
    toward_light,
    unit,
    value_noise,
)
from terradream.model.noise import stream_key
from terradream.model.streams import RIPARIAN_ALPHA, STREAM_ALPHA, stream_cover
from terradream.model.towns import (
    BUILDINGS_FROM_PX_M,
    SHED_MAX_PX_M,
    SHEDS_FROM_PX_M,
    StreetGrid,
    boulevards,
    land_use,
    paint_buildings,
    paint_urban,
    roof_style,
    streets,
)
from terradream.model.waves import paint_waves

# (land colours, water colours) of every pixel, each (H, W, 3) -> the same with a shore painted on them
ShorePaint = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

STRUCTURE_REVISION = 41  # bump whenever the layout changes: it is part of the model version, hence of cache keys


# ---- land cover from the parent's (low-passed) colours ----
def land_cover(base: np.ndarray) -> dict[str, np.ndarray]:
    """Soft masks from colour: water, snow, bare ground (desert, rock), vegetation greenness, a bluish cast (shade on
    snow and rock), usable land."""
    r, g, b = base[..., 0], base[..., 1], base[..., 2]
    lum = base.mean(axis=-1)
    sat = base.max(-1) - base.min(-1)
    water = ramp(b - np.maximum(r, g * 0.92), 0.0, 0.06) * ramp(0.45 - lum, 0.0, 0.1)
    # a blurred snowfield reads pale grey, not white: bright and colourless enough is snow
    snow = ramp(lum, 0.5, 0.6) * ramp(0.10 - sat, 0.0, 0.05)
    # bare ground: reddish desert, or colourless mid-grey rock and scree (mountains above the tree line)
    rock = ramp(lum, 0.34, 0.42) * ramp(0.07 - sat, 0.0, 0.03)
    desert = np.maximum(ramp(r - g, 0.06, 0.14) * ramp(lum, 0.45, 0.6), rock)
    green = ramp(g - np.maximum(r, b), -0.02, 0.06)  # greener than red and blue: a cool grey (shaded snow) is not
    bluish = ramp(b - r, 0.0, 0.03)
    land = (1 - water) * (1 - snow)
    return {"water": water, "snow": snow, "desert": desert, "green": green, "land": land, "lum": lum, "bluish": bluish}


# ---- features ----
@dataclass(frozen=True)
class Districts:
    """Warped 2.5 km districts over a window, per pixel: hash, street and field angle, roof style, how much larger
    than the smallest its field parcels are, and the distance (m) to the district's edge (None when not asked for)."""

    rb: np.ndarray
    theta: np.ndarray
    roof_style: np.ndarray
    parcel_scale: np.ndarray
    edge_m: np.ndarray | None


def _districts(seed: int, g: Grid, edges: bool) -> Districts:
    """The districts under a window. Per-district values are computed once on the few lattice cells the window
    touches and gathered per pixel. For edges the warp is read on the grid grown by a pixel, so its slope (central
    differences) turns how far the warped position is from a cell edge into a distance on the ground."""
    size = merc(DISTRICT_M)
    grid = g.grown() if edges else g
    wx = (fbm(seed, "warp_x", grid, merc(3000.0), 2) - 0.5) * DISTRICT_WARP * size
    wy = (fbm(seed, "warp_y", grid, merc(3000.0), 2) - 0.5) * DISTRICT_WARP * size
    ids, dist = [], None
    for warped in (grid.y[:, None] + wy, grid.x[None, :] + wx):
        inner, slope = level_slope(warped, g.px_m) if edges else (warped, None)
        cells = inner / size
        cell = np.floor(cells)
        ids.append(cell.astype(np.int64))
        if slope is not None:
            edge = np.minimum(cells - cell, cell + 1 - cells) * size / np.maximum(slope, 1e-6)
            dist = edge if dist is None else np.minimum(dist, edge)
    rj, ri = ids
    j0, i0 = int(rj.min()), int(ri.min())
    table = hash2(stream_key(seed, STREAM_STRUCTURE, FIELD["region"]), np.arange(j0, int(rj.max()) + 1)[:, None],
                  np.arange(i0, int(ri.max()) + 1)[None, :])
    at = (rj - j0, ri - i0)
    # a district's direction: the land's slow grain at its cell's centre, turned a little its own way
    centres_x = (np.arange(i0, int(ri.max()) + 1) + 0.5) * size
    centres_y = (np.arange(j0, int(rj.max()) + 1) + 0.5) * size
    grain = value_noise(stream_key(seed, STREAM_STRUCTURE, FIELD["grain"]), centres_x, centres_y, merc(LAND_GRAIN_M))
    theta = grain * np.float32(2.0 * math.pi) + (unit(table, 3) - np.float32(0.5)) * np.float32(2.0 * DISTRICT_TURN)
    # a region's fields are large or small together (as its history of land holdings made them)
    region = value_noise(stream_key(seed, STREAM_STRUCTURE, FIELD["parcel_scale"]), centres_x, centres_y,
                         merc(PARCEL_REGION_M))
    scale = np.float32(1.0) + np.float32(PARCEL_SCALE - 1.0) * ramp(region, 0.3, 0.7)
    return Districts(table[at], theta[at], roof_style(table)[at], scale[at], dist)


_ASPHALT, _WATER = (0.40, 0.40, 0.41), (0.10, 0.16, 0.20)
_LANE = (0.56, 0.55, 0.52)  # a country road: paler than the fields on either side
_DRY_LAND = (0.34, 0.34, 0.25)
_WOODS = (0.13, 0.19, 0.11)
WOODS_ALPHA = 0.6
WILD_TONE, WILD_HUE = 0.35, 0.05  # wild land's brightness swing (relative) and warm-cool swing (absolute), at most
CANOPY_TONE = (0.5, 1.2)  # the fine grain's brightness swing over open and over leafy wild land, at most
WOODS_MAX_PX_M = 5000.0  # woods from pixels this fine on (ground metres): from z5, where a patch is a pixel or two
ROADS_MAX_PX_M = 300.0  # streams, roads and tracks from pixels this fine on: coarser, they tint under 2 % of one
DISTRICT_M = 2500.0  # side of the warped districts that share a field pattern and a street grid (ground metres)
# how far district edges wander, as a share of their size: under about 0.6 the warp never folds (a fold cuts a
# district into a fan of slivers)
DISTRICT_WARP = 0.35
# Fields and streets of neighbouring districts run alike, as they follow the same valleys, roads and surveys: a
# district's direction is a slow field over this many ground metres, turned by up to DISTRICT_TURN radians.
LAND_GRAIN_M, DISTRICT_TURN = 15000.0, 0.35
# Field parcels are up to PARCEL_SCALE times larger where a slow field over this many ground metres says so
PARCEL_REGION_M, PARCEL_SCALE = 250000.0, 2.2
DISTRICT_ROAD_MAX_PX_M = 40.0  # roads along district edges from pixels this fine on (ground metres)
TOWN_EDGE, TOWN_CORE = (0.66, 0.70), (0.72, 0.80)  # slow town noise from open land to built up, and to a centre
URBAN_MAX_PX_M = 1500.0  # towns are drawn from pixels this fine on (ground metres)
FARM_LIKELY_SHIFT = 0.2  # how far certain (or no) farmland moves the farmed districts' threshold down (or up): a farm
# belt's districts are nearly all farmed (each about half, as anywhere), a rainforest's hardly any
UNSETTLED_RUGGEDNESS = (0.5, 0.9)  # ruggedness over which mountains give way from farmed and built-on land to none
CROWN_LIGHT = 0.8  # how much a crown's lit side is brighter than its mean (and its far side darker), per unit light
CROWN_CLUMP_M, CROWN_CLUMP_LIGHT = 1.2, 0.5  # leafy clumps in a crown: their size (ground metres) and light
TREE_TURN = {"tree": 0.45, "tree_b": 1.2}  # radians each crown lattice is turned by
CLOSED_CANOPY = (0.5, 0.9)  # tree density over which a wood closes: crowns spread, the ground between is shaded
CANOPY_SPREAD = 0.45  # how much wider a closed wood's crowns are
UNDERSTOREY, UNDERSTOREY_ALPHA = (0.05, 0.08, 0.04), 0.6  # shade under a closed wood's crowns
TREE_MAX_PX_M = 6.0  # single tree crowns from pixels this fine on (ground metres); what they average to from twice that


def _road_segments(seed: int, g: Grid, field: str, cell_m: float, p_link: float) -> list[tuple[float, ...]]:
    """Segments of a jittered lattice network near the window: each node links right and up with p_link, bent once."""
    pad = cell_m
    i0, i1 = int(math.floor((g.x.min() - pad) / cell_m)) - 1, int(math.floor((g.x.max() + pad) / cell_m)) + 1
    j0, j1 = int(math.floor((g.y.min() - pad) / cell_m)) - 1, int(math.floor((g.y.max() + pad) / cell_m)) + 1
    key = stream_key(seed, STREAM_STRUCTURE, FIELD[field])
    ii, jj = np.meshgrid(np.arange(i0, i1 + 2), np.arange(j0, j1 + 2))
    h = hash2(key, jj, ii)
    nx = (ii + 0.15 + 0.7 * unit(h, 0)) * cell_m
    ny = (jj + 0.15 + 0.7 * unit(h, 1)) * cell_m
    segs: list[tuple[float, ...]] = []
    for dj, di, bit in ((0, 1, 2), (1, 0, 3)):
        link = unit(h, bit) < p_link
        for j, i in zip(*np.nonzero(link[: ii.shape[0] - dj, : ii.shape[1] - di]), strict=True):
            x0, y0, x1, y1 = nx[j, i], ny[j, i], nx[j + dj, i + di], ny[j + dj, i + di]
            bend = (unit(h[j, i], 4 + dj) - 0.5) * 0.35 * cell_m
            mx, my = (x0 + x1) / 2 - (y1 - y0) / cell_m * bend, (y0 + y1) / 2 + (x1 - x0) / cell_m * bend
            segs += [(x0, y0, mx, my), (mx, my, x1, y1)]
    return segs


def _segments_distance(g: Grid, segs: list[tuple[float, ...]], reach_m: float) -> np.ndarray:
    """Distance (m) from every pixel to the nearest segment, capped at reach_m (computed only near each segment;
    callers pass a reach beyond the band's anti-aliased edge, so the cap never tints open land)."""
    d = np.full((len(g.y), len(g.x)), reach_m)
    for x0, y0, x1, y1 in segs:
        cols = np.nonzero((g.x >= min(x0, x1) - reach_m) & (g.x <= max(x0, x1) + reach_m))[0]
        rows = np.nonzero((g.y >= min(y0, y1) - reach_m) & (g.y <= max(y0, y1) + reach_m))[0]
        if not len(cols) or not len(rows):
            continue
        sx, sy = g.x[cols][None, :], g.y[rows][:, None]
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((sx - x0) * dx + (sy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        dist = np.hypot(sx - x0 - t * dx, sy - y0 - t * dy)
        r0, c0 = rows[0], cols[0]
        sub = d[r0 : r0 + len(rows), c0 : c0 + len(cols)]
        np.minimum(sub, dist, out=sub)
    return d


class _Crowns(NamedTuple):
    """Tree crowns at a grid's points: coverage, shade of green per crown, and each point's offset from its crown's
    centre along the crown lattice's turned axes (u, v) with the crown's radius."""

    cover: np.ndarray
    tone: np.ndarray
    du: np.ndarray
    dv: np.ndarray
    radius: np.ndarray


def _trees(seed: int, g: Grid, density: np.ndarray, field: str, cell_m: float) -> _Crowns:
    """Tree crowns on a jittered lattice (one per cell, anywhere in it, the lattice turned by TREE_TURN) at the grid's
    points. A crown is at most half a cell wide, so the four cells around a point's nearest lattice corner hold every
    crown that reaches it; where two overlap, the one that covers the point more is on top. (Crowns kept inside their
    cells would line up in rows wherever a closed wood's crowns fill them.)"""
    x, y = g.x, g.y
    cos, sin = math.cos(TREE_TURN[field]), math.sin(TREE_TURN[field])  # (no lattice runs along the axes or another)
    u, v = x[None, :] * cos + y[:, None] * sin, y[:, None] * cos - x[None, :] * sin
    corner_i, corner_j = np.floor(u / cell_m - 0.5).astype(np.int64), np.floor(v / cell_m - 0.5).astype(np.int64)
    key = stream_key(seed, STREAM_STRUCTURE, FIELD[field])
    # crowns of a closed wood spread until they touch (at most half a cell); scattered trees keep their own size
    spread = 1.0 + CANOPY_SPREAD * ramp(density, *CLOSED_CANOPY)
    # every crown's numbers, worked out once per cell of the lattice the window's points reach
    i0, j0 = int(corner_i.min()), int(corner_j.min())
    cells_i = np.arange(i0, int(corner_i.max()) + 2, dtype=np.int64)[None, :]
    cells_j = np.arange(j0, int(corner_j.max()) + 2, dtype=np.int64)[:, None]
    h = hash2(key, cells_j, cells_i)
    width = cells_i.shape[1]
    size, alive, tone = unit(h, 0).ravel(), unit(h, 3).ravel(), unit(h, 4).ravel()
    centre_u = ((cells_i + unit(h, 1)) * cell_m).ravel()  # (float64: Mercator positions)
    centre_v = ((cells_j + unit(h, 2)) * cell_m).ravel()
    corner = (corner_j - j0) * width + (corner_i - i0)
    offsets = (0, 1, width, width + 1)

    def crown(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        radius = (cell_m * np.minimum((0.25 + 0.15 * size.take(cell)) * spread, 0.5)).astype(np.float32)
        return radius, (u - centre_u.take(cell)).astype(np.float32), (v - centre_v.take(cell)).astype(np.float32)

    cover, top = np.zeros(corner.shape, np.float32), np.zeros(corner.shape, np.int64)
    for offset in offsets:
        cell = corner + offset
        radius, du, dv = crown(cell)
        cov = np.clip((radius - np.hypot(du, dv)) / np.float32(g.px_m) + np.float32(0.5), 0.0, 1.0)
        cov *= alive.take(cell) < density
        on_top = cov > cover
        cover = np.where(on_top, cov, cover)
        top = np.where(on_top, offset, top)
    cell = corner + top  # (where no crown covers a point: its own corner cell's, as good as any)
    radius, du, dv = crown(cell)
    return _Crowns(cover * np.float32(min(1.0, (2 * float(cell_m) * 0.3 / g.px_m) ** 2)), tone.take(cell), du, dv,
                   radius)


def _crown_light(seed: int, g: Grid, crowns: _Crowns, field: str) -> np.ndarray:
    """How much brighter or darker than its mean each point of a crown is: lit as a dome (bright towards the light,
    dark away from it) and, where pixels are fine enough, clumped."""
    cos, sin = math.cos(TREE_TURN[field]), math.sin(TREE_TURN[field])
    east = (crowns.du * cos - crowns.dv * sin) / crowns.radius  # the offset turned back onto the ground's axes
    north = (crowns.du * sin + crowns.dv * cos) / crowns.radius
    up = np.sqrt(np.clip(1.0 - east * east - north * north, 0.0, 1.0))
    # the dome's normal against the light, less its mean over the disc (2/3 of the light's height)
    light = (east * SUN[0] + north * SUN[1] + up * SUN[2] - SUN[2] * (2.0 / 3.0)).astype(np.float32)
    if g.px_m <= merc(CROWN_CLUMP_M):  # leafy clumps, finer than a crown
        clumps = value_noise(stream_key(seed, STREAM_STRUCTURE, FIELD["crown_clump"]), g.x, g.y, merc(CROWN_CLUMP_M))
        light = light + np.float32(CROWN_CLUMP_LIGHT) * (clumps - np.float32(0.5))
    return light


def dry_coast(c: np.ndarray, cover: dict[str, np.ndarray], water: np.ndarray,
              settled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Real water coverage (H, W) read into c and cover: returns the land colour under every pixel (dry land where the
    parent looks like water but the data says land: blurred coasts) and the colour of the water over it (the
    parent's where it already looks like water). The layout paints its land features on the first and lays the water
    over them last, so a shore pixel stays as wet as the data says, however bright the town beside it. settled: the
    parent already shows the water where the data has it (finer zooms than the data's), so the water keeps the
    parent's colour."""
    looks_wet = np.float32(1.0) if settled else cover["water"][..., None]
    water_colour = looks_wet * c + (1 - looks_wet) * np.asarray(_WATER, np.float32)
    land = over(c, cover["water"], _DRY_LAND)
    cover["water"] = water.astype(np.float32)
    # land features are drawn whole on every pixel with some land: the water laid over them weighs them by its share
    cover["land"] = (water < 1).astype(np.float32) * (1 - cover["snow"])
    return land, water_colour


def _woods_colour(seed: int, g: Grid) -> np.ndarray:
    """The colour (H, W, 3) of woods, a little lighter or darker over a few hundred metres."""
    tone = 0.85 + 0.3 * fbm(seed, "woods_tone", g, merc(700.0), 2)
    return np.asarray(_WOODS, np.float32) * tone[..., None]


def _woods(seed: int, g: Grid, c: np.ndarray, forest: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Dense woods over c: patches of a few km with ragged edges where `forest` (H, W) allows them (leafy land outside
    farmland and towns), darker than the open land around them, in colour (_woods_colour). Drawn from coarse zooms
    on, so every octave of their outline joins the cascade at the zoom where it is a pixel or two wide (the
    projection keeps coarser changes out)."""
    patches = ramp(fbm(seed, "woods", g, merc(4000.0), 4), 0.5, 0.58) * forest
    return c + (patches * WOODS_ALPHA)[..., None] * (colour - c)


def _wild_mottle(seed: int, g: Grid, c: np.ndarray, wild: np.ndarray, leafy: np.ndarray) -> np.ndarray:
    """Meadow, scrub and grove patches over land that is neither farmed nor built on: brightness and a warm-cool
    shift from fractal noise of 1.6 km down to 200 m (the shift 2.4-1.2 km), so it is never a flat wash; and below
    that a finer grain down to a few metres (clumps of crowns and gaps, stronger where it is leafy) that keeps its
    strength octave after octave, so every zoom adds some."""
    tone = (fbm(seed, "land_tone", g, merc(1600.0), 4) - 0.5) * 2 * WILD_TONE
    grain = (fbm(seed, "canopy", g, merc(160.0), 6, persistence=0.85) - 0.5) * 2
    tone += grain * (CANOPY_TONE[0] + (CANOPY_TONE[1] - CANOPY_TONE[0]) * leafy)
    hue = (fbm(seed, "land_hue", g, merc(2400.0), 2) - 0.5) * 2 * WILD_HUE
    shift = np.stack([hue, -0.4 * hue, -hue], axis=-1)
    return c + wild[..., None] * (c * tone[..., None] + shift)


def layout(seed: int, g: Grid, base: np.ndarray, water: np.ndarray | None = None, towns: np.ndarray | None = None,
           cover: dict[str, np.ndarray] | None = None, rugged: np.ndarray | None = None,
           farmland: np.ndarray | None = None, shore: ShorePaint | None = None,
           water_settled: bool = False) -> np.ndarray:
    """The structure painted over base (H, W, 3) colours in [0, 1], at the grid's pixel size: new colours (H, W, 3).

    water: real water coverage (H, W) where known (earth), painted over the land features; else water is read from
    the colours. towns: real built-up density (H, W) where known
    (earth, terradream.model.places: 1 built up, up to 2 towards a centre), drawn from coarse zooms on; procedural
    towns join it where pixels are fine enough.
    Each feature starts at the pixel size where it first covers a useful part of a pixel, so coarse zooms skip it.
    cover: land_cover(base) when the caller has it already (it is not changed). rugged: how mountainous (H, W) in
    [0, 1], where known: rugged mountains are not farmed or built on (their bare ground is scree, not fields).
    farmland: how likely the land is farmed (H, W) in [0, 1], where known (earth, terradream.model.atlas): it moves
    the threshold of farmed districts by up to FARM_LIKELY_SHIFT, so farm belts are mostly fields and rainforest
    and taiga hardly any; 0.5 or None leaves it as it is.
    shore: paints a shore on the land's and the water's colours (each of a whole pixel) before the water is laid
    over the land by its share, so a pixel that is part sand, part surf is the mix of the two by area, as the next
    zoom's pixels average to. water_settled: the parent shows the water already (dry_coast's settled).
    Water, real or read from the colours, gets waves (terradream.model.waves) where they are a few pixels long."""
    cover = land_cover(base) if cover is None else dict(cover)
    c = base.astype(np.float32)
    if water is None:
        return paint_waves(seed, g, _land(seed, g, c, cover, towns, rugged, farmland), cover["water"])
    c, water_colour = dry_coast(c, cover, water, water_settled)
    c = _land(seed, g, c, cover, towns, rugged, farmland)
    if shore is not None:
        c, water_colour = shore(c, water_colour)
    return paint_waves(seed, g, c + water[..., None] * (water_colour - c), cover["water"])


def _land(seed: int, g: Grid, c: np.ndarray, cover: dict[str, np.ndarray], towns: np.ndarray | None,
          rugged: np.ndarray | None, farmland: np.ndarray | None) -> np.ndarray:
    """layout's land features (towns, woods, fields, roads, trees) over c, kept off water and snow by cover."""
    px = g.px_m
    land = cover["land"] * (1 - cover["desert"] * 0.7)
    farmable = land if rugged is None else land * (1 - ramp(rugged, *UNSETTLED_RUGGEDNESS))
    town = np.zeros(c.shape[:2], np.float32) if towns is None else np.minimum(towns, 1.0) * cover["land"]
    core = np.zeros(c.shape[:2], np.float32) if towns is None else np.clip(towns - 1.0, 0.0, 1.0)
    if px <= merc(200.0):
        v = fbm(seed, "town", g, merc(6000.0), 3)
        town = np.maximum(town, ramp(v, TOWN_EDGE[0], TOWN_EDGE[1]) * farmable * (1 - cover["desert"]))
        core = np.maximum(core, ramp(v, TOWN_CORE[0], TOWN_CORE[1]))
    urban = px <= merc(URBAN_MAX_PX_M) and town.max() > 0
    if px > merc(WOODS_MAX_PX_M):  # (towns start finer than woods)
        return c
    district = fbm(seed, "district", g, merc(40000.0), 3)
    farmed = district if farmland is None else district + FARM_LIKELY_SHIFT * (2 * farmland - 1)
    farm = ramp(fbm(seed, "farm", g, merc(12000.0), 3), 0.42, 0.5) * farmable * ramp(farmed, 0.3, 0.45) * (1 - town)
    # dark ground is leafy too (Blue Marble's forests are nearly black), unless it is bluish: shaded snow and rock
    dark = ramp(0.3 - cover["lum"], 0, 0.1) * (1 - cover["bluish"])
    leafy = ramp(cover["green"] + 0.5 * dark, 0.2, 0.6)
    wild = (1 - farm) * (1 - town) * land  # land that is neither farmed nor built on
    forest = wild * leafy
    woods_colour = _woods_colour(seed, g)  # (riparian woods below are the same woods)
    c = _woods(seed, g, c, wild * ramp(leafy, 0.05, 0.3), woods_colour)
    c = _wild_mottle(seed, g, c, wild, leafy)
    if px > merc(FIELDS_MAX_PX_M) and not urban:
        return c
    d = _districts(seed, g, edges=px <= merc(DISTRICT_ROAD_MAX_PX_M))
    if urban:  # towns are drawn on the box of pixels they reach (the same numbers: every value is per pixel)
        box, sub = g.box(town > 0)
        tb, grid = town[box], StreetGrid(seed, sub, d.theta[box], core[box], land_use(seed, sub))
        c[box], park = paint_urban(grid, c[box], tb, d.roof_style[box])
    if px > merc(FIELDS_MAX_PX_M):
        return c
    c, hedges = paint_fields(g, d.rb, d.theta, d.parcel_scale, c, farm)
    wet_land = farmable * (1 - town) * (1 - cover["snow"]) * ramp(0.5 - cover["desert"], 0.0, 0.5)  # (not on dry land)
    riparian, stream = stream_cover(seed, g, wet_land)
    c = over(over(c, riparian * RIPARIAN_ALPHA, woods_colour), stream * STREAM_ALPHA, _WATER)
    if px > merc(ROADS_MAX_PX_M):
        return c
    road_land = cover["land"] * (1 - cover["snow"])
    major = coverage(_segments_distance(g, _road_segments(seed, g, "road_major", merc(6000.0), 0.75),
                                         max(merc(30.0), merc(6.0) + px)), merc(6.0), px)
    if px <= merc(20.0):
        minor = coverage(_segments_distance(g, _road_segments(seed, g, "road_minor", merc(1200.0), 0.55),
                                             max(merc(12.0), merc(2.5) + px)), merc(2.5), px)
        c = over(c, minor * road_land * (1 - town) * 0.75 * ramp(district, 0.2, 0.35), TRACK)
    if d.edge_m is not None:  # a road where field patterns and street grids meet
        settled = np.maximum(farm, town)
        c = over(c, coverage(d.edge_m, merc(3.5), px) * road_land * settled * 0.85, _LANE)
    if px <= merc(30.0) and urban:  # (no town in the window: every town term is zero anyway)
        c[box] = over(c[box], streets(grid, tb) * 0.85, _ASPHALT)
    roofs = np.zeros(c.shape[:2], np.float32)  # the share of each pixel under single roofs: no trees there
    if px <= merc(BUILDINGS_FROM_PX_M) and urban:  # coarser, single roofs would only be one-pixel speckle
        c[box], roofs[box] = paint_buildings(grid, c[box], d.rb[box], d.roof_style[box], tb)
    elif px <= merc(SHEDS_FROM_PX_M) and urban and grid.industry.any():  # sheds are larger: drawn from coarser
        estates, on = sub.box(grid.industry)
        c[box][estates], roofs[box][estates] = paint_buildings(
            grid.part(estates, on), c[box][estates], d.rb[box][estates], d.roof_style[box][estates],
            (tb * grid.industry)[estates], SHED_MAX_PX_M)
    if urban:  # (parks and woods have paths, not boulevards)
        c[box] = over(c[box], boulevards(grid, tb * (1 - park), d.rb[box]) * 0.9, _ASPHALT)
    c = over(c, major * road_land * 0.9, _ASPHALT)
    # trees where land is mostly wild (not scattered over fields the parent painted green), on hedgerows, and in
    # gardens at a town's edge
    density = 0.9 * np.maximum(ramp(forest, 0.3, 0.6), riparian) + 0.25 * hedges + town * (0.05 + 0.2 * (1 - core))
    if urban:  # parks have trees, industrial estates hardly any
        density[box] += tb * (park * 0.6 - grid.industry * 0.9 * (0.05 + 0.2 * (1 - core[box])))
    if px <= 2 * merc(TREE_MAX_PX_M) and density.max() > 0:
        c = paint_trees(seed, g, c, density * (1 - roofs) * (1 - stream))
    return c


def paint_trees(seed: int, g: Grid, c: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Tree crowns (two jittered lattices, density per pixel) and their shadows over c; where pixels are up to twice
    too coarse for single crowns, what the next zoom's pixels of them average to (their coarser octave)."""
    if g.px_m > merc(TREE_MAX_PX_M):
        return g.children_mean(lambda sub: paint_trees(seed, sub, c.copy(), density))
    shade = toward_light(merc(2.0))
    c = over(c, ramp(density, *CLOSED_CANOPY) * UNDERSTOREY_ALPHA, UNDERSTOREY)  # the gaps of a closed wood are dark
    for field, cell, off in (("tree", merc(7.0), 0.0), ("tree_b", merc(9.0), merc(3.0))):
        shade_cov = _trees(seed, g.shifted(off + shade[0], off + shade[1]), density, field, cell).cover
        at = g.shifted(off, off)
        crowns = _trees(seed, at, density, field, cell)
        crown, tone, light = crowns.cover, crowns.tone, _crown_light(seed, at, crowns, field)
        c = over(c, shade_cov * (1 - crown) * 0.55, (0.04, 0.06, 0.04))
        colour = np.stack([0.10 + 0.08 * tone, 0.20 + 0.10 * tone, 0.08 + 0.05 * tone], axis=-1)
        c = c + crown[..., None] * 0.9 * (colour * (1.0 + np.float32(CROWN_LIGHT) * light)[..., None] - c)
    return c.astype(np.float32)  # (as without trees: later steps must round alike in every band of a window)
