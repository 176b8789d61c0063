"""Where snow lies on mountains: on the heights between branching valleys, as much of it as the parent pixel says.

A coarse pixel's colour only says how much of it is snow (a blur of white snow and dark ground is as bright as its
share of snow), not where. From above, snowy mountains are white massifs and ridges cut by a branching net of dark
valleys, wooded below the treeline. So at each zoom, the snow share read from the parent pixel is laid on the high
ground of the local relief (the valleys of drainage.py and the relief's ridged octaves up to a few kilometres long),
over a snowline that leaves about that share of the ground over it. The local relief is the same at every zoom (each
zoom draws more, finer levels of it), so every zoom refines the split its parent made instead of starting a new one:
the cascade keeps every parent's mean, and a split redrawn at every zoom piles up into speckle. Bare ground is scree
and rock just under the snowline and forest further down the valleys; where most of a pixel is snow, ice fills the
valleys and the bare ground moves up to the crests (ICE_SHARE), so a glacier's basin is white with rock ridges.
Coarse pixels are read as blends of snow and dark valleys; finer ones (settled_share) as snow, bare ground or the
soft line between them, so grey scree is not read as half snow and a snowfield's edge stays sharp.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from terradream.model.lattice import merc, ramp

# how high ground lies in the local relief (LocalRelief.height), at shares of the ground under it (the same on every
# slope), by how many levels of valleys a zoom draws (its spread grows with them; from 3 on it barely changes): a
# pixel with that share of snow has its snowline where that share of the ground is over it
HEIGHT_SHARES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
HEIGHT_QUANTILES = ((0.0, 0.51, 0.527, 0.564, 0.588, 0.606, 0.62, 0.623, 1.0),
                    (0.0, 0.356, 0.397, 0.478, 0.565, 0.652, 0.746, 0.788, 1.0),
                    (0.0, 0.28, 0.329, 0.452, 0.577, 0.689, 0.801, 0.852, 1.0),
                    (0.0, 0.226, 0.282, 0.425, 0.557, 0.692, 0.824, 0.879, 1.0))
SNOWLINE_SOFT_PX = 0.75  # half the pixels over which snow thins out at its line: sharp at every zoom
SNOW_REGION = (0.05, 0.2)  # a snow share over which ground is mountain snow and bare ground (under it: left alone)
ICE_SHARE = (0.5, 0.9)  # snow shares over which the bare ground moves from the valley floors up to the crests
TREELINE_DROP = (0.12, 0.25)  # drop under the snowline over which bare ground turns from scree and rock to forest
# a coarse pixel's snow share, unmixed from its brightness: dark valleys up to white snow, if colourless enough
SNOW_MIX_LUM, SNOW_MIX_SAT = (0.20, 0.85), (0.10, 0.16)
BLEND_MIN_PX_M = 40.0  # pixels down to this size (ground metres, z11) are read as blends of snow and dark valleys
SNOW_SHARE_SETTLED = (0.5, 0.9)  # on finer pixels, snow shares over which ground counts as snow
SNOW_WHITE = (0.84, 0.86, 0.90)
SCREE = (0.44, 0.43, 0.39)
MOUNTAIN_FOREST = (0.12, 0.16, 0.10)
# every setting above, for the relief's identity (hence the model version)
SETTINGS = (HEIGHT_SHARES, HEIGHT_QUANTILES, ICE_SHARE, TREELINE_DROP, SNOWLINE_SOFT_PX, BLEND_MIN_PX_M,
            SNOW_SHARE_SETTLED, SNOW_REGION, SNOW_WHITE, SCREE, MOUNTAIN_FOREST, SNOW_MIX_LUM, SNOW_MIX_SAT)


class LocalRelief(NamedTuple):
    """The local relief at a window's pixels (terrain.ridge_slopes): its height as a share of the tallest it reaches
    (0 to 1; what is too fine to draw adds its mean), how much that share changes across a pixel (a snowline's ramp
    spans SNOWLINE_SOFT_PX of it either way, so it is sharp at every zoom) and how many levels of valleys it holds
    (which HEIGHT_QUANTILES row describes it)."""

    height: np.ndarray
    step: np.ndarray
    levels: int


def settled_share(share: np.ndarray, px_m: float) -> np.ndarray:
    """The snow share (H, W) paint_snowline splits, from the parent's (snow_fraction) on pixels of this size
    (Web-Mercator metres): as it is down to BLEND_MIN_PX_M; on finer pixels, which coarser zooms have split already,
    only the pale part of it (SNOW_SHARE_SETTLED), so grey scree stays bare and half-snow greys at a snowfield's edge
    are split again.

    >>> share = np.array([0.3, 0.7])
    >>> settled_share(share, merc(100.0)).tolist(), settled_share(share, merc(20.0)).round(2).tolist()
    ([0.3, 0.7], [0.0, 0.5])"""
    return share if px_m >= merc(BLEND_MIN_PX_M) else ramp(share, *SNOW_SHARE_SETTLED).astype(np.float32)


def snow_fraction(rgb: np.ndarray) -> np.ndarray:
    """The share of snow in coarse pixels (..., 3) in [0, 1]: a blur of snow and dark valleys is as bright as its
    share of snow; colourful ground (deserts, fields, forest) has none.

    >>> snow_fraction(np.array([[0.9, 0.9, 0.92], [0.5, 0.5, 0.52], [0.7, 0.5, 0.3]])).astype(float).round(2).tolist()
    [1.0, 0.47, 0.0]"""
    lum, sat = rgb.mean(axis=-1), rgb.max(axis=-1) - rgb.min(axis=-1)
    return (ramp(lum, *SNOW_MIX_LUM) * (1.0 - ramp(sat, *SNOW_MIX_SAT))).astype(np.float32)


def _height_under(under: np.ndarray, levels: int) -> np.ndarray:
    """The height of the local relief with `under` of the ground (a share, [0, 1]) under it, at a zoom that draws
    `levels` levels of valleys."""
    return np.interp(under, HEIGHT_SHARES, HEIGHT_QUANTILES[min(levels, len(HEIGHT_QUANTILES) - 1)])


def snowline(share: np.ndarray, levels: int) -> np.ndarray:
    """The height (H, W) of the local relief over which ground is snow, for a snow share in [0, 1], at a zoom that
    draws `levels` levels of valleys: that share of the ground lies over it.

    >>> snowline(np.array([0.0, 0.5, 1.0]), 3).astype(float).round(3).tolist()
    [1.0, 0.557, 0.0]"""
    return _height_under(1.0 - share, levels).astype(np.float32)


@cache
def _forest_share_table(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(snow shares, the mean forest weight of the bare ground at each): how much of the ground under a snowline
    lies below the treeline (TREELINE_DROP), from the heights' quantiles, so a pixel's unmixed colours keep its
    mean."""
    shares = np.linspace(0.0, 1.0, 41)
    below = np.linspace(0.0, 1.0, 201)[:, None]  # quantiles through the bare ground, from the lowest up
    heights = _height_under(below * (1.0 - shares), levels)
    weights = ramp(snowline(shares, levels) - heights, *TREELINE_DROP).mean(axis=0)
    return shares, weights.astype(np.float32)


def paint_snowline(c: np.ndarray, local: LocalRelief | None, share: np.ndarray, rugged: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Snow on the heights of the local relief, between branching valleys: colours c (H, W, 3) unmixed into snow
    and bare ground, and how much of each pixel is snow (H, W; on rugged ground, whatever its ruggedness), which the
    rest of the relief paints with (rock on steep faces, crevasses, blue shade, lighting).

    local: the relief's local octaves, or None where none is drawn yet (the coarsest zooms: the blend stays as it
    is); share: the parent's snow share here (settled_share; under SNOW_REGION, valley towns and fields, nothing
    changes); rugged: how mountainous, [0, 1]. A pixel that is share x snow + (1 - share)
    x bare ground becomes snow where it rises over the snowline and bare ground elsewhere: scree and rock just under
    the snow, dark forest further down (at coarse zooms, wooded valleys between snowy massifs); the more of it is
    snow, the more of its bare ground is on the crests instead, over a second line (ice fills the valleys). Its
    texture stays, and all-snow ground is left as it is."""
    region = ramp(share, *SNOW_REGION)
    if local is None:
        return c, share * region
    soft = np.float32(SNOWLINE_SOFT_PX) * local.step + np.float32(1e-6)
    crest = (1.0 - share) * ramp(share, *ICE_SHARE)  # bare ground on the crests: ice fills the valleys under them
    floor = 1.0 - share - crest  # ... and on the valley floors
    drop = snowline(1.0 - floor, local.levels) - local.height  # how far under the lower snowline
    upper = snowline(crest, local.levels)  # over it, bare crests
    on = np.clip(-drop / (2.0 * soft) + 0.5, 0.0, 1.0)  # ramps of width 2 soft
    on = on * np.where(crest > 0.0, np.clip((upper - local.height) / (2.0 * soft) + 0.5, 0.0, 1.0), 1.0)
    here = region * rugged
    forest, scree = np.asarray(MOUNTAIN_FOREST, np.float32), np.asarray(SCREE, np.float32)
    white = np.asarray(SNOW_WHITE, np.float32)
    bare = scree + ramp(drop, *TREELINE_DROP)[..., None] * (forest - scree)  # (crests: scree and rock)
    wooded = np.interp(1.0 - floor, *_forest_share_table(local.levels)).astype(np.float32)  # of the floors' ground
    wooded = wooded * floor / np.maximum(1.0 - share, np.float32(1e-6))  # ... of all the bare ground, on average
    mixed = scree + wooded[..., None] * (forest - scree)  # what the parent's pixel blurs
    mixed = mixed + share[..., None] * (white - mixed)
    target = bare + on[..., None] * (white - bare)
    return c + here[..., None] * (target - mixed), on * region
