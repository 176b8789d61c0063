"""Where snow lies on mountains: in the hollows between bare crests, as much of it as the parent pixel says.

A coarse pixel's colour only says how much of it is snow (a blur of white snow and dark ground is as bright as its
share of snow), not where. From above, high mountains are snowfields and glaciers filling cirques and basins, cut by a
branching net of dark rock crests; lower down, the bare ground between is forest. So at each zoom, the snow share read
from the parent pixel is laid in the hollows of the relief's local octaves (those that vary inside a parent pixel),
under a snowline that leaves about that share of the ground under it, and the crests are bare. The cascade keeps every
parent's mean, so each zoom splits the pale pixels it inherits a little further, along the relief, instead of
painting a pale haze. Coarse pixels are read as blends of snow and dark valleys; finer ones (settled_share) as snow,
bare ground or the soft line between them, so grey scree is not read as half snow and a snowfield's edge stays sharp
at every zoom instead of blurring as the cascade magnifies it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from terradream.model.lattice import merc, ramp

# how deep ground lies among the local octaves' crests (1 - LocalRelief.height), at shares of the ground under it
# (the same on every slope and at every zoom): a pixel with that share of snow has its snowline there
DEPTH_QUANTILES = ((0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0),
                   (0.0, 0.028, 0.062, 0.146, 0.228, 0.331, 0.49, 0.586, 0.7))
SNOWLINE_SOFT = 0.02  # depth share over which snow thins out at its line, beyond a pixel's own blur
SNOW_REGION = (0.05, 0.2)  # a snow share over which ground is mountain snow and bare ground (under it: left alone)
SCREE_SHARE = (0.1, 0.5)  # snow shares over which the bare ground between snow turns from forest to scree and rock
# a coarse pixel's snow share, unmixed from its brightness: dark valleys up to white snow, if colourless enough
SNOW_MIX_LUM, SNOW_MIX_SAT = (0.20, 0.85), (0.10, 0.16)
BLEND_MIN_PX_M = 40.0  # pixels down to this size (ground metres, z11) are read as blends of snow and dark valleys
SNOW_SHARE_SETTLED = (0.5, 0.9)  # on finer pixels, snow shares over which ground counts as snow
SNOW_WHITE = (0.84, 0.86, 0.90)
SCREE = (0.44, 0.43, 0.39)
MOUNTAIN_FOREST = (0.12, 0.16, 0.10)
# every setting above, for the relief's identity (hence the model version)
SETTINGS = (DEPTH_QUANTILES, SNOWLINE_SOFT, BLEND_MIN_PX_M, SNOW_SHARE_SETTLED, SCREE_SHARE, SNOW_REGION, SNOW_WHITE,
            SCREE, MOUNTAIN_FOREST, SNOW_MIX_LUM, SNOW_MIX_SAT)


class LocalRelief(NamedTuple):
    """The relief's local octaves at a window's pixels (terrain.ridge_slopes): their height as a share of the tallest
    they reach together (0 to 1), and about how much that share changes across a pixel (a snowline is blurred over
    it)."""

    height: np.ndarray
    step: np.ndarray


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


def snowline(share: np.ndarray) -> np.ndarray:
    """The depth (H, W) under which ground is snow, for a snow share in [0, 1]: that share of the ground lies under it.

    >>> snowline(np.array([0.0, 0.5, 1.0])).astype(float).round(3).tolist()
    [0.0, 0.228, 0.7]"""
    return np.interp(share, *DEPTH_QUANTILES).astype(np.float32)


def paint_snowline(c: np.ndarray, local: LocalRelief, share: np.ndarray, rugged: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Snow in the hollows between bare crests: colours c (H, W, 3) unmixed into snow and bare ground, and the snow
    share (H, W) the rest of the relief paints with (rock on steep faces, crevasses, blue shade).

    local: the relief's local octaves; share: the parent's snow share here (settled_share; under SNOW_REGION, valley
    towns and fields, nothing changes);
    rugged: how mountainous, [0, 1]. A pixel that is share x snow + (1 - share) x bare ground becomes snow where it
    is under the snowline and bare ground elsewhere; its texture stays, and all-snow ground is left as it is."""
    soft = np.float32(SNOWLINE_SOFT) + local.step
    line = snowline(share)
    on = np.clip((line - (1.0 - local.height)) / (2.0 * soft) + 0.5, 0.0, 1.0)  # a ramp of width 2 soft
    here = ramp(share, *SNOW_REGION) * rugged
    forest, scree = np.asarray(MOUNTAIN_FOREST, np.float32), np.asarray(SCREE, np.float32)
    bare = forest + ramp(share, *SCREE_SHARE)[..., None] * (scree - forest)
    contrast = np.asarray(SNOW_WHITE, np.float32) - bare
    return c + (here * (on - share))[..., None] * contrast, on * here
