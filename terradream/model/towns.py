"""Towns of the structure field: street grids, lots, buildings with pitched roofs, and the built-up ground under them.

A town runs from detached houses set back in gardens at its edge to terraced rows on the street at its centre (the
`core` share, 0 to 1), where the street grid bends into an old town's irregular blocks. Each district keeps one
street grid and one roof style (terracotta, slate or mixed), so a town reads as a place rather than a texture.
Everything is a pure function of (world seed, position), like the rest of the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from terradream.model.lattice import (
    FIELD,
    LIGHT_FROM,
    STREAM_STRUCTURE,
    Grid,
    coverage,
    fbm,
    hash2,
    merc,
    next_zoom_offsets,
    over,
    rotated,
    toward_light,
    unit,
)
from terradream.model.noise import stream_key

URBAN_COLOUR = (0.50, 0.48, 0.46)
URBAN_ALPHA = 0.7  # how much built-up ground covers what was there at a town's centre
SUBURB_ALPHA = 0.45  # ... and at its edge, where gardens show through
BUILDING_MAX_PX_M = 10.0  # single buildings from pixels this fine on (ground metres)
BLOCK_M = (70.0, 110.0)  # city block across and along the street grid (ground metres)
SQUARE_M = (merc(2 * BLOCK_M[0]), merc(2 * BLOCK_M[1]))  # two by two blocks (Mercator metres): tone, avenues, parks
STREET_HALF_WIDTH_M = 4.5
BOULEVARD_BLOCKS = ((4, 7), (3, 6))  # a boulevard runs along every n-th block edge across the street grid and every
# m-th along it, n and m chosen per district from these ranges (so cities are not one even net)
BOULEVARD_HALF_WIDTH_M = 12.0
ROOF_RELIEF = 0.22  # brightness swing of a roof slope facing the light (or away from it)
OLD_STREETS_M = (25.0, 180.0)  # a centre's streets wander up to this far (ground metres) over about this distance
FLAT_ROOF_SHARE = 0.25  # centre buildings with flat roofs (shops, blocks of flats)
# The share of a town's ground its buildings cover in detached blocks and in dense ones, and the share their
# shadows darken besides: town_plan's averages over many blocks (a test holds them to it). Where single buildings
# are finer than a pixel, the pixel shows that average, so the zoom that first draws them keeps its parent's means.
BUILDING_SHARE = (0.29, 0.55)
SHADOW_SHARE = 0.11
SHADOW_COLOUR, SHADOW_ALPHA = (0.05, 0.05, 0.06), 0.45
HOUSE_SHADOW_M = 4.0  # how far a house's shadow reaches from it, away from the light (ground metres)
# Blocks of flats: a dense block is one with this chance times the core share (so a centre's blocks, up to a third):
# one flat-roofed slab set back from its streets, or two with a courtyard between, casting a long shadow
TALL_SHARE, TALL_INSET_M, TALL_GAP_M, TALL_SPLIT_SHARE, TALL_SHADOW_M = 0.35, 9.0, 18.0, 0.5, 16.0
# the share of a block of flats' ground under its slabs and in its long shadow (town_plan's averages; a test holds them)
TALL_BUILDING_SHARE, TALL_SHADOW_SHARE = 0.53, 0.25
PARK_SHARE = 0.05  # squares of 2 x 2 city blocks that are parks: grass and trees, paths, no buildings
PARK_COLOUR = (0.27, 0.33, 0.21)

# Roof colours by district style: terracotta, slate, mixed. A district's blocks are mostly of its style
# (DISTRICT_STYLE_SHARE of them, the rest of any style), so it differs from its neighbours by its mix, not as a square
# of one tint, and each block reads as one built mass.
DISTRICT_STYLE_SHARE = 0.6
_ROOFS = np.array([
    [[0.66, 0.36, 0.26], [0.58, 0.31, 0.23], [0.72, 0.45, 0.32], [0.50, 0.28, 0.22], [0.62, 0.40, 0.30],
     [0.55, 0.55, 0.55]],
    [[0.30, 0.31, 0.34], [0.36, 0.36, 0.39], [0.42, 0.41, 0.41], [0.25, 0.26, 0.28], [0.62, 0.33, 0.25],
     [0.48, 0.49, 0.52]],
    [[0.62, 0.33, 0.25], [0.55, 0.55, 0.55], [0.35, 0.35, 0.37], [0.78, 0.76, 0.72], [0.50, 0.28, 0.22],
     [0.45, 0.47, 0.50]],
], np.float32)
_FLAT_ROOF = np.array([0.64, 0.63, 0.61], np.float32)

# Land use in towns: mostly homes and shops; here and there an industrial estate (big flat-roofed sheds on tarmac
# yards, on blocks twice the size) or a large park or wood. Seen from z11 to z13, they break a town's even tone into
# the patches real towns show.
USE_HOMES, USE_INDUSTRY, USE_GREEN = 0, 1, 2
# Estates and parks are about this size (ground metres), where their noise is over these levels. A park much larger
# than a kilometre would come with a pink halo: the cascade keeps Blue Marble's colour on 2 km pixels, so a park's
# green that Blue Marble lacks is paid for by its surroundings.
INDUSTRY_M, GREEN_SPACE_M = 1200.0, 600.0
INDUSTRY_LEVEL, GREEN_LEVEL = 0.68, 0.70
YARD_COLOUR = (0.46, 0.46, 0.45)  # tarmac and concrete
_SHEDS = np.array([[0.82, 0.82, 0.80], [0.68, 0.69, 0.70], [0.50, 0.55, 0.60], [0.40, 0.41, 0.43],
                   [0.88, 0.87, 0.84], [0.60, 0.42, 0.36]], np.float32)
SHED_MAX_PX_M = 40.0  # single sheds from pixels this fine on (ground metres): they are 100-200 m
# Up to twice the pixel size of single ones, paint_buildings draws what the next zoom's buildings average to; from
# there on coarser, paint_urban paints their statistical average (buildings_average).
BUILDINGS_FROM_PX_M, SHEDS_FROM_PX_M = 2 * BUILDING_MAX_PX_M, 2 * SHED_MAX_PX_M
SHED_INSET_M = (12.0, 12.0)  # a shed stands this far from its block's streets, plus up to as much again (ground m)
SHED_SPLIT_SHARE, SHED_GAP_M, YARD_SHARE = 0.5, 14.0, 0.15  # blocks with two sheds (this far apart); bare yards
# the shares of an industrial estate's ground its sheds cover and their shadows darken (town_plan's averages; a test
# holds them)
SHED_SHARE, SHED_SHADOW_SHARE = 0.52, 0.035


@dataclass(frozen=True)
class TownPlan:
    """What a town's buildings put on each pixel: their coverage (H, W), the roof's colour (H, W, 3), and whether
    it is a block of flats (H, W)."""

    building: np.ndarray
    roof: np.ndarray
    tall: np.ndarray


def roof_style(rb: np.ndarray) -> np.ndarray:
    """Roof style index (0 terracotta, 1 slate, 2 mixed) of districts from their hash."""
    return (unit(rb, 6) * len(_ROOFS)).astype(np.int64)


def land_use(seed: int, g: Grid) -> np.ndarray:
    """What the town's ground at every pixel is used for (int8: USE_HOMES, USE_INDUSTRY or USE_GREEN): estates and
    large parks are the high ground of two slow noise fields, so their outlines are irregular, not districts'."""
    use = np.full((len(g.y), len(g.x)), USE_HOMES, np.int8)
    use[fbm(seed, "industry", g, merc(INDUSTRY_M), 2) > INDUSTRY_LEVEL] = USE_INDUSTRY
    use[fbm(seed, "green_space", g, merc(GREEN_SPACE_M), 2) > GREEN_LEVEL] = USE_GREEN
    return use


@dataclass(eq=False)
class StreetGrid:
    """A district's street grid over some pixels: angle theta, bent towards a centre (core) with slow noise so an old
    town's streets wander and its blocks are irregular (where core is 0 the grid is straight, to the bit). The
    rotated, bent positions are computed once, on first use, for the built-up tone, streets and buildings alike."""

    seed: int
    g: Grid
    theta: np.ndarray
    core: np.ndarray
    use: np.ndarray | None = None  # land_use per pixel; None: homes everywhere

    @cached_property
    def industry(self) -> np.ndarray:
        """True on industrial estates (H, W)."""
        return np.zeros(self.core.shape, bool) if self.use is None else self.use == USE_INDUSTRY

    @cached_property
    def green(self) -> np.ndarray:
        """True in districts that are one park or wood (H, W)."""
        return np.zeros(self.core.shape, bool) if self.use is None else self.use == USE_GREEN

    @cached_property
    def block_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Every pixel's city block across and along the grid (Mercator metres): twice as large on estates."""
        scale = np.where(self.industry, np.float32(2.0), np.float32(1.0))
        return merc(BLOCK_M[0]) * scale, merc(BLOCK_M[1]) * scale

    @cached_property
    def uv(self) -> tuple[np.ndarray, np.ndarray]:
        """Every pixel's position across (u) and along (v) the street grid, in metres."""
        u, v = rotated(self.g, self.theta)
        if self.core.max() > 0:
            cell, reach = merc(OLD_STREETS_M[1]), (2 * merc(OLD_STREETS_M[0])) * self.core
            u = u + (fbm(self.seed, "street_bend_u", self.g, cell, 2) - 0.5) * reach
            v = v + (fbm(self.seed, "street_bend_v", self.g, cell, 2) - 0.5) * reach
        return u, v

    def blocks(self, bw: float | np.ndarray, bl: float | np.ndarray) -> tuple[np.ndarray, ...]:
        """Indices of bw x bl blocks (a across, b along the grid) and positions inside them (fu, fv), in metres."""
        u, v = self.uv
        a, b = np.floor(u / bw), np.floor(v / bl)
        return a, b, u - a * bw, v - b * bl

    @cached_property
    def squares(self) -> tuple[np.ndarray, ...]:
        """Every pixel's square of 2 x 2 city blocks: its hash (which tone, which a park) and the position inside
        it (fu, fv), in metres."""
        a, b, fu, fv = self.blocks(SQUARE_M[0], SQUARE_M[1])
        return hash2(stream_key(self.seed, STREAM_STRUCTURE, FIELD["urban"]), a.astype(np.int64),
                     b.astype(np.int64)), fu, fv

    def shifted(self, dx_m: float, dy_m: float) -> StreetGrid:
        """The same grid sampled dx_m east and dy_m north of every pixel (a shadow pass, a finer zoom's pixels)."""
        return self.on(self.g.shifted(dx_m, dy_m))

    def part(self, box: tuple[slice, slice], g: Grid) -> StreetGrid:
        """The grid over a box of its pixels (g: that box's Grid)."""
        return StreetGrid(self.seed, g, self.theta[box], self.core[box], None if self.use is None else self.use[box])

    def on(self, g: Grid) -> StreetGrid:
        """The same streets sampled at other points of the same pixels (g: a shifted grid, or Grid.children)."""
        return StreetGrid(self.seed, g, self.theta, self.core, self.use)


def _block_edge(fu: np.ndarray, fv: np.ndarray, bw: float | np.ndarray, bl: float | np.ndarray) -> np.ndarray:
    """Distance (m) from a position inside a bw x bl block to the block's nearest side."""
    return np.minimum(np.minimum(fu, bw - fu), np.minimum(fv, bl - fv))


def streets(grid: StreetGrid, town: np.ndarray, block_m: tuple[np.ndarray | float, np.ndarray | float] | None = None,
            half_width_m: float = STREET_HALF_WIDTH_M) -> np.ndarray:
    """Coverage (H, W) of streets half_width_m wide (ground metres) around every block of the grid, inside towns;
    block_m: the blocks across and along the grid (Mercator metres), by default its city blocks (StreetGrid.block_m)."""
    bw, bl = grid.block_m if block_m is None else block_m
    _, _, fu, fv = grid.blocks(bw, bl)
    return coverage(_block_edge(fu, fv, bw, bl), merc(half_width_m), grid.g.px_m) * town


def boulevard_blocks(rb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many city blocks apart a district's boulevards run, across and along its street grid, from its hash rb
    (each from its range in BOULEVARD_BLOCKS)."""
    (lo_u, hi_u), (lo_v, hi_v) = BOULEVARD_BLOCKS
    return lo_u + np.floor(unit(rb, 9) * (hi_u - lo_u + 1)), lo_v + np.floor(unit(rb, 10) * (hi_v - lo_v + 1))


def boulevards(grid: StreetGrid, town: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Coverage (H, W) of boulevards inside towns: streets BOULEVARD_HALF_WIDTH_M wide along every few block edges
    of the grid (boulevard_blocks, per district hash rb), the long lines that give a city its shape from coarse zooms
    on (single streets are finer than a pixel there; at street level they are painted over the blocks' edges)."""
    every_u, every_v = boulevard_blocks(rb)
    return streets(grid, town, (merc(BLOCK_M[0]) * every_u, merc(BLOCK_M[1]) * every_v), BOULEVARD_HALF_WIDTH_M)


def _park_flags(grid: StreetGrid) -> np.ndarray:
    """1 where a pixel's square of 2 x 2 city blocks is a park or its district is green, else 0 (H, W)."""
    return ((unit(grid.squares[0], 1) < PARK_SHARE) | grid.green).astype(np.float32)


def parks(grid: StreetGrid) -> np.ndarray:
    """Park share of every pixel (H, W): 1 in a park square and 0 elsewhere once a square of 2 x 2 city blocks
    spans two pixels; where it spans about one, the mean of the next zoom's four pixel centres in the pixel (what
    that zoom's pixels average to, so a park's fill is in the parent's means when it is first drawn whole);
    coarser, PARK_SHARE."""
    g = grid.g
    if SQUARE_M[0] >= 2 * g.px_m:
        return _park_flags(grid)
    if SQUARE_M[0] < g.px_m / 2:
        return np.where(grid.green, np.float32(1.0), np.float32(PARK_SHARE))
    (dx, dy), *others = next_zoom_offsets(g.px_m)
    share = _park_flags(grid.shifted(dx, dy))
    for dx, dy in others:
        share += _park_flags(grid.shifted(dx, dy))
    return share * np.float32(0.25)


def town_plan(grid: StreetGrid, rb: np.ndarray, style: np.ndarray, town: np.ndarray, roofs: bool = True) -> TownPlan:
    """Buildings and roofs of towns on a district's street grid (district hash rb, roof style).

    A block is dense where its random number is below the grid's `core`: six terraced lots a side built on the
    street, else four detached houses a side set back in gardens. `core` is read per pixel, so a block that a
    centre's edge crosses is split along that line between the two layouts. Pitched roofs have their ridge along
    the building's longer side, the slope facing the light lighter; some centre buildings have flat roofs.
    roofs=False skips the colours (a shadow pass)."""
    seed, g = grid.seed, grid.g
    bw, bl = merc(BLOCK_M[0]), merc(BLOCK_M[1])
    a, b, fu, fv, hblock = _city_blocks(grid, rb)
    ai, bi, rbi = a.astype(np.int64), b.astype(np.int64), rb.astype(np.int64)
    dense = unit(hblock, 0) < grid.core
    lot_len = bl / np.where(dense, 6, 4)
    lot = np.floor(fv / lot_len)
    side = (fu > bw / 2).astype(np.int64)
    lu = np.where(side == 1, bw - fu, fu)
    hb = hash2(stream_key(seed, STREAM_STRUCTURE, FIELD["lot"]), ai * 7 + side,
               (bi * 11 + lot.astype(np.int64)) ^ rbi)
    depth = np.where(dense, merc(12.0) + unit(hb, 0) * merc(18.0), merc(9.0) + unit(hb, 0) * merc(12.0))
    inset = np.where(dense, merc(0.5) + unit(hb, 1) * merc(2.0), merc(6.0) + unit(hb, 1) * merc(4.0))
    gap = np.where(dense, merc(0.4), merc(1.5) + unit(hb, 2) * merc(3.0))
    built = unit(hb, 3) < np.where(dense, 0.95, 0.85)
    lv = fv - lot * lot_len
    inside = np.minimum(np.minimum(lu - inset, inset + depth - lu), np.minimum(lv - gap, lot_len - gap - lv))
    building = np.clip(inside / g.px_m + 0.5, 0.0, 1.0) * built
    tall, slabs = _flats(grid, fu, fv, hblock)
    if slabs is not None:
        building = np.where(tall, slabs, building)
    sheds = _sheds(grid, rbi) if grid.industry.any() else None
    if sheds is not None:
        building = np.where(grid.industry, sheds.building, building)
    building = _on_town_ground(grid, building, town)
    if not roofs:
        return TownPlan(building, np.zeros(0, np.float32), tall)
    # a block's roofs are of one style, mostly its district's (else any, so districts differ by their mix): a block
    # reads as one built mass, not confetti
    own = unit(hblock, 1) < DISTRICT_STYLE_SHARE
    style = np.where(own, style, (unit(hblock, 2) * len(_ROOFS)).astype(np.int64))
    roof = _ROOFS[style, (unit(hb, 5) * _ROOFS.shape[1]).astype(np.int64)]
    roof *= (0.85 + 0.3 * unit(hb, 4))[..., None]
    # the ridge runs along the longer side: each slope faces across it, towards or away from the sun
    across_street = depth > lot_len - 2 * gap
    ridge_px = np.float32(2.0 / g.px_m)  # the slopes meet over a pixel at the ridge (a sign would alias into steps)
    sign_u = np.clip((lu - inset - depth / 2) * ridge_px, -1.0, 1.0) * np.where(side == 1, -1.0, 1.0)
    sign_v = np.clip((lv - lot_len / 2) * ridge_px, -1.0, 1.0)
    c, s = np.cos(grid.theta), np.sin(grid.theta)
    light = LIGHT_FROM
    facing = np.where(across_street, sign_v * (-s * light[0] + c * light[1]), sign_u * (c * light[0] + s * light[1]))
    flat = dense & (unit(hb, 7) < FLAT_ROOF_SHARE)
    roof = np.where(flat[..., None], _FLAT_ROOF * (0.9 + 0.2 * unit(hb, 4))[..., None],
                    roof * (1.0 + ROOF_RELIEF * facing)[..., None])
    roof = np.where(tall[..., None], _FLAT_ROOF * (0.85 + 0.3 * unit(hblock, 5))[..., None], roof)
    if sheds is not None:
        roof = np.where(grid.industry[..., None], sheds.roof, roof)
    return TownPlan(building, roof.astype(np.float32), tall)


def _on_town_ground(grid: StreetGrid, building: np.ndarray, town: np.ndarray) -> np.ndarray:
    """Buildings' coverage (H, W) where they stand: on the town's share of the ground, not in parks."""
    return building * town * (1 - parks(grid))


def _city_blocks(grid: StreetGrid, rb: np.ndarray) -> tuple[np.ndarray, ...]:
    """The city block under every pixel of the grid (district hash rb): its indices across and along the street
    grid, the pixel's position in it, and the block's hash."""
    a, b, fu, fv = grid.blocks(merc(BLOCK_M[0]), merc(BLOCK_M[1]))
    hblock = hash2(stream_key(grid.seed, STREAM_STRUCTURE, FIELD["block"]), a.astype(np.int64) ^ rb.astype(np.int64),
                   b.astype(np.int64))
    return a, b, fu, fv, hblock


def _flats(grid: StreetGrid, fu: np.ndarray, fv: np.ndarray, hblock: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Which pixels are in blocks of flats (dense blocks, with a chance of TALL_SHARE times the core share, not on
    estates), and the coverage of their slabs (one set back from the streets, or two with a courtyard between; None
    where there are no such blocks)."""
    bw, bl = merc(BLOCK_M[0]), merc(BLOCK_M[1])
    core = grid.core
    tall = (unit(hblock, 0) < core) & (unit(hblock, 3) < TALL_SHARE * core) & ~grid.industry
    if not tall.any():
        return tall, None
    slab = _block_edge(fu, fv, bw, bl) - merc(TALL_INSET_M)
    courtyard = np.abs(fv - bl / 2) - merc(TALL_GAP_M) / 2
    slab = np.where(unit(hblock, 4) < TALL_SPLIT_SHARE, np.minimum(slab, courtyard), slab)
    return tall, np.clip(slab / grid.g.px_m + 0.5, 0.0, 1.0)


def _sheds(grid: StreetGrid, rbi: np.ndarray) -> TownPlan:
    """An industrial estate's sheds (coverage and flat roofs) on blocks of its own size (StreetGrid.block_m): one
    per block set back from its streets, or two with a lane between, or a bare yard."""
    bw, bl = merc(2 * BLOCK_M[0]), merc(2 * BLOCK_M[1])
    a, b, fu, fv = grid.blocks(bw, bl)
    hb = hash2(stream_key(grid.seed, STREAM_STRUCTURE, FIELD["lot"]), a.astype(np.int64) * 7 + 5,
               (b.astype(np.int64) * 11) ^ rbi)
    inside = _block_edge(fu, fv, bw, bl) - (merc(SHED_INSET_M[0]) + unit(hb, 0) * merc(SHED_INSET_M[1]))
    split = unit(hb, 1) < SHED_SPLIT_SHARE
    inside = np.where(split, np.minimum(inside, np.abs(fv - bl / 2) - merc(SHED_GAP_M) / 2), inside)
    building = np.clip(inside / grid.g.px_m + 0.5, 0.0, 1.0) * (unit(hb, 2) >= YARD_SHARE)
    which = np.where(split & (fv > bl / 2), unit(hb, 6), unit(hb, 5))
    roof = _SHEDS[(which * len(_SHEDS)).astype(np.int64)] * (0.92 + 0.16 * unit(hb, 4))[..., None]
    return TownPlan(building.astype(np.float32), roof.astype(np.float32), np.zeros(building.shape, bool))


def _roofs_over(c: np.ndarray, shadow: np.ndarray, building: np.ndarray, roof: np.ndarray) -> np.ndarray:
    """Buildings' shadows (the share of each pixel they darken) and then their roofs (building share, roof colour)
    over c (H, W, 3)."""
    c = over(c, shadow * SHADOW_ALPHA, SHADOW_COLOUR)
    return c + building[..., None] * (roof - c)


def paint_buildings(grid: StreetGrid, c: np.ndarray, rb: np.ndarray, style: np.ndarray, town: np.ndarray,
                    single_px_m: float = BUILDING_MAX_PX_M) -> tuple[np.ndarray, np.ndarray]:
    """Single buildings of towns (town_plan) over c, with the shadows they cast away from the light, on pixels up to
    single_px_m (ground metres), and the share of each pixel under a roof (nothing grows there); where pixels are up
    to twice that, what the next zoom's pixels of them average to (their coarser octave, which a flat average would
    leave out of every finer zoom)."""
    if grid.g.px_m > merc(single_px_m):
        both = grid.g.children_mean(lambda sub: np.dstack(paint_buildings(grid.on(sub), c.copy(), rb, style, town,
                                                                          single_px_m)))
        return both[..., :3], both[..., 3]
    plan = town_plan(grid, rb, style, town)
    return _roofs_over(c, shadows(grid, rb, style, town, plan), plan.building, plan.roof), plan.building


def shadows(grid: StreetGrid, rb: np.ndarray, style: np.ndarray, town: np.ndarray, plan: TownPlan) -> np.ndarray:
    """The share of each pixel that the buildings of plan (town_plan on grid) shade, away from the light: a house's
    shadow reaches HOUSE_SHADOW_M, a block of flats' TALL_SHADOW_M (its slabs are wider than that, so one shifted
    copy of them covers the whole shadow)."""
    shade = town_plan(grid.shifted(*toward_light(merc(HOUSE_SHADOW_M))), rb, style, town, roofs=False).building
    if grid.core.max() > 0:  # (only the slabs, not the whole plan, of the grid shifted that much)
        far = grid.shifted(*toward_light(merc(TALL_SHADOW_M)))
        _, _, fu, fv, hblock = _city_blocks(far, rb)
        tall, slabs = _flats(far, fu, fv, hblock)
        if slabs is not None:
            shade = np.maximum(shade, _on_town_ground(far, np.where(tall, slabs, np.float32(0)), town))
    return shade * (1 - plan.building)


def buildings_average(c: np.ndarray, town: np.ndarray, core: np.ndarray, style: np.ndarray, park: np.ndarray,
                      industry: np.ndarray) -> np.ndarray:
    """What the buildings of towns (H, W) and their shadows average to over pixels too coarse for single ones, over
    c: their roofs' mean colour (with the centres' flat roofs) on their share of the ground, in detached blocks at
    a town's edge and in dense ones (the `core` share of them) towards its centre, sheds on industrial estates
    (industry); none in parks (park share)."""
    built = town * (1 - park)
    tall = TALL_SHARE * core * core  # the share of blocks that are blocks of flats (dense, and tall among those)
    homes = BUILDING_SHARE[0] + (BUILDING_SHARE[1] - BUILDING_SHARE[0]) * core
    homes = homes + tall * (TALL_BUILDING_SHARE - BUILDING_SHARE[1])
    share = built * np.where(industry, np.float32(SHED_SHARE), homes)
    roof = (DISTRICT_STYLE_SHARE * _ROOFS.mean(axis=1)[style]
            + np.float32(1.0 - DISTRICT_STYLE_SHARE) * _ROOFS.mean(axis=(0, 1)))
    flat = core * FLAT_ROOF_SHARE * (1 - tall) + tall  # (by blocks: near enough by area)
    roof = roof + flat[..., None] * (_FLAT_ROOF - roof)
    roof = np.where(industry[..., None], _SHEDS.mean(axis=0), roof)
    shade = np.where(industry, np.float32(SHED_SHADOW_SHARE), SHADOW_SHARE + tall * (TALL_SHADOW_SHARE - SHADOW_SHARE))
    return _roofs_over(c, built * shade, share, roof)


def paint_urban(grid: StreetGrid, c: np.ndarray, town: np.ndarray, style: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Built-up ground under towns, over c, and the park share (parks()): pavement a little lighter or darker per
    (frayed) district and, once they span two pixels, per square of 2 x 2 city blocks of the street grid, with
    avenues between, some squares parks; towards the centre it is more built over, at the edge gardens show
    through; tarmac yards on estates. Where pixels are too coarse to draw buildings (BUILDINGS_FROM_PX_M, or
    SHEDS_FROM_PX_M for sheds), what they average to is painted here (buildings_average)."""
    g, core = grid.g, grid.core
    tone = 0.85 + 0.3 * fbm(grid.seed, "urban", g, merc(1200.0), 3)
    if SQUARE_M[0] >= 2 * g.px_m:
        h, fu, fv = grid.squares
        tone = tone * (0.8 + 0.4 * unit(h, 0))
        avenue = coverage(_block_edge(fu, fv, *SQUARE_M), merc(8.0), g.px_m)
        tone = tone * (1.0 - 0.5 * avenue)
    alpha = town * np.where(grid.industry, np.float32(URBAN_ALPHA), SUBURB_ALPHA + (URBAN_ALPHA - SUBURB_ALPHA) * core)
    ground = np.where(grid.industry[..., None], np.asarray(YARD_COLOUR, np.float32), np.asarray(URBAN_COLOUR, np.float32))
    c = c + alpha[..., None] * (ground * tone[..., None] - c)
    park = parks(grid)
    c = c + (town * park)[..., None] * (np.asarray(PARK_COLOUR, np.float32) * tone[..., None] - c)
    coarse = np.where(grid.industry, g.px_m > merc(SHEDS_FROM_PX_M), g.px_m > merc(BUILDINGS_FROM_PX_M))
    return buildings_average(c, town * coarse, core, style, park, grid.industry), park
