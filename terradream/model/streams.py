"""Streams and the woods along them: the drainage net (terradream.model.drainage) drawn on all land, not only carved
into mountains, so flat farmland and wild land are cut by branching lines of trees and water as real land is.

The three coarsest levels of the net (8, 4 and 2 km apart) carry riparian woods a few hundred metres wide, broken
where slow noise leaves a stretch open and wandering in width, from the zoom where a level's streams are a few pixels
apart; from about z12 the water itself shows, a few metres wide. Both cover each pixel by their area in it, as every
line of the structure field does, so a coarse zoom holds what its children's pixels average to.
"""

from __future__ import annotations

import numpy as np

from terradream.model.drainage import level_spacing_m, stream_distances
from terradream.model.lattice import Grid, coverage, fbm, merc, ramp

RIPARIAN_HALF_M = (200.0, 130.0, 80.0)  # the woods either side of each level's streams, coarsest first
STREAM_HALF_M = (6.0, 4.0, 2.5)  # ... and the streams' water
RIPARIAN_WOBBLE = (0.6, 1.4)  # the woods' width wanders between these shares of it (over 800 m to 100 m)
RIPARIAN_OPEN = (0.4, 0.5)  # slow noise (3 km) over which a stretch goes from open to wooded (about half are)
RIPARIAN_ALPHA = 0.8
RISE = 0.6  # a tributary widens from nothing over this share of its level's spacing, down from where it rises
STREAM_WARP_GAIN = 0.35  # streams wander this share as far as valleys do: enough to meander, never to fold over
RIPARIAN_MIN_PX = 4.0  # a level's streams are drawn where its spacing is at least this many pixels
STREAM_MAX_PX_M = 40.0  # the water from pixels this fine on (ground metres): coarser, it tints under 1/8 of one
STREAM_ALPHA = 0.9
# every setting above, for the layout's identity (hence the model version)
SETTINGS = (RIPARIAN_HALF_M, STREAM_HALF_M, RIPARIAN_WOBBLE, RIPARIAN_OPEN, RIPARIAN_ALPHA, RIPARIAN_MIN_PX,
            RISE, STREAM_WARP_GAIN, STREAM_MAX_PX_M, STREAM_ALPHA)


def stream_levels(px_m: float) -> int:
    """How many levels of the net, from the coarsest, carry streams on pixels of this size (Web-Mercator metres).

    >>> stream_levels(merc(150.0)), stream_levels(merc(1000.0)), stream_levels(merc(5000.0))
    (3, 2, 0)"""
    return sum(1 for k in range(len(RIPARIAN_HALF_M)) if level_spacing_m(k) >= RIPARIAN_MIN_PX * px_m)


def stream_cover(seed: int, g: Grid, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The share (H, W) of every pixel under riparian woods and under the streams' water, as far as `where` (H, W)
    allows them (the layout keeps them off water, snow, desert, towns and rugged mountains, whose valleys are carved
    in the relief instead). The net is looked up only on the box of pixels `where` allows: the rest stay zero."""
    woods, water = np.zeros(where.shape, np.float32), np.zeros(where.shape, np.float32)
    levels = stream_levels(g.px_m)
    allowed = where > 0
    if levels == 0 or not allowed.any():
        return woods, water
    box, sub = g.box(allowed)
    wobble = RIPARIAN_WOBBLE[0] + (RIPARIAN_WOBBLE[1] - RIPARIAN_WOBBLE[0]) * fbm(
        seed, "riparian_width", sub, merc(800.0), 4)
    halves = [merc(h) for h in RIPARIAN_HALF_M[:levels]]
    caps = [h * RIPARIAN_WOBBLE[1] + g.px_m for h in halves]
    show_water = g.px_m <= merc(STREAM_MAX_PX_M)
    on_woods, on_water = woods[box], water[box]
    for k, found in enumerate(stream_distances(seed, sub, caps, len(RIPARIAN_HALF_M), STREAM_WARP_GAIN)):
        if found is None:
            continue
        d, down = found
        # a tributary rises where its channel starts: its woods and water narrow to a point there (the coarsest
        # level's channels start where the one upstream ends, so they run on at full width)
        taper = 1.0 if k == 0 else np.minimum(down / np.float32(RISE * level_spacing_m(k)), np.float32(1.0))
        on_woods = np.maximum(on_woods, coverage(d, halves[k] * wobble * taper, g.px_m))
        if show_water:
            on_water = np.maximum(on_water, coverage(d, merc(STREAM_HALF_M[k]) * taper, g.px_m))
    woods[box] = on_woods * (ramp(fbm(seed, "riparian", sub, merc(3000.0), 3), *RIPARIAN_OPEN) * where[box])
    water[box] = on_water * where[box]
    return woods, water
