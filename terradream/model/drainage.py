"""Valleys: a branching drainage net carved into mountains, the same at every zoom.

Ridged noise alone draws a net of crests around closed basins: from above, cells, not the branching valleys of real
mountains. Here each level of a hierarchy of jittered points (one point per cell, cells halving from VALLEY_TOP_M)
drains into the level above: a point of the coarsest level flows to its lowest neighbour on a slow noise, a point of
every finer level to the nearest stretch of the coarser net, a little downstream of it, so tributaries join their
trunk at a slant. Each level carves a V valley along every channel of its own and the coarser levels, about as wide
as its cells and a small share of them deep (deeper ones made every slope a cliff), so valleys deepen where they
meet. Every point and channel is a
pure function of the world seed and its cell, so any window draws the same net without its neighbours, and a zoom
draws the levels at least VALLEY_MIN_PX wide; finer ones add the mean height they would have. The same net gives
the streams on all land (stream_distances; terradream.model.streams draws them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from terradream.model.lattice import (
    FIELD,
    STREAM_STRUCTURE,
    Grid,
    coarse_axis,
    gradient_noise_grad,
    merc,
    separable_lerp,
    value_noise,
)
from terradream.model.noise import stream_key, uniform_grid

VALLEY_TOP_M = 8000.0  # spacing of the coarsest valleys (ground metres)
VALLEY_LEVELS = 6  # levels, each half as far apart as the one above: 8 km down to 250 m
VALLEY_MIN_PX = 8.0  # levels whose spacing is under this many pixels add their mean instead
VALLEY_WIDTH = 0.7  # a valley's half-width, in its level's spacing: over it the ground is level with the crests
VALLEY_DEPTH = 0.06  # the coarsest level's depth over its spacing; finer ones are as deep over theirs
VALLEY_FALLOFF = 0.15  # each finer level's depth over spacing shrinks by 2^-this (as the relief's octaves do)
JITTER = 0.7  # how far a point wanders in its cell (share of the cell)
BASIN_CELLS = 5.0  # the noise the coarsest level flows down varies over this many of its cells
DOWNSTREAM = 0.5  # a tributary joins its trunk this share of its length downstream of the nearest point
REACH = 3  # channels that start this many cells away can pass through a cell
MAX_RUN = 2.2  # cells a channel runs at most (REACH - MAX_RUN cells cover a valley's half-width)
WARP_GAIN = 1.4  # gradient noise times this spans about -1..1
WARP = 0.5  # channels wander: pixels look up the net this share of each level's spacing away, on a smooth noise
SAMPLE_PER_CELL = 2.0  # a level's nearest channels are looked up at least this many times per spacing
MAX_SAMPLE_PX = 8
# a pixel's channel is at most this many sample steps nearer than its four samples' nearest (measured: 1.2 at most
# from z8 to z17; a pixel is within a step of its samples, and their warps differ a little)
SAMPLE_SLACK = 2.0
PROFILE_MEAN = 0.51  # mean of a fine level's valley profile over its ground (measured at z14, levels 3-5)
# every setting above, for the relief's identity (hence the model version)
SETTINGS = (VALLEY_TOP_M, VALLEY_LEVELS, VALLEY_MIN_PX, VALLEY_WIDTH, VALLEY_DEPTH, VALLEY_FALLOFF, JITTER,
            BASIN_CELLS, DOWNSTREAM, REACH, MAX_RUN, WARP_GAIN, WARP, SAMPLE_PER_CELL, MAX_SAMPLE_PX, SAMPLE_SLACK,
            PROFILE_MEAN)


@dataclass
class Channels:
    """One level's channels over a block of its cells: each cell's point (ax, ay) and where its channel ends
    (bx, by), Mercator metres, (rows, cols) from cell (row0, col0); rows count cells northwards."""

    row0: int
    col0: int
    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray


def level_spacing_m(level: int) -> float:
    """Spacing of one level's points, Web-Mercator metres.

    >>> round(level_spacing_m(1) / level_spacing_m(0), 2)
    0.5"""
    return merc(VALLEY_TOP_M) / 2**level


def level_depth_m(level: int) -> float:
    """How deep one level's valleys are (Web-Mercator metres)."""
    return VALLEY_DEPTH * 2 ** (-VALLEY_FALLOFF * level) * level_spacing_m(level)


def _points(seed: int, level: int, row0: int, col0: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The jittered point of every cell of a block (float64 Mercator metres)."""
    r = np.arange(row0, row0 + rows, dtype=np.int64)
    c = np.arange(col0, col0 + cols, dtype=np.int64)
    cell = level_spacing_m(level)
    u = uniform_grid(stream_key(seed, STREAM_STRUCTURE, FIELD["valley"], level, 0), r, c)
    v = uniform_grid(stream_key(seed, STREAM_STRUCTURE, FIELD["valley"], level, 1), r, c)
    return (c[None, :] + 0.5 + JITTER * (u - 0.5)) * cell, (r[:, None] + 0.5 + JITTER * (v - 0.5)) * cell


def _top_channels(seed: int, row0: int, col0: int, rows: int, cols: int) -> Channels:
    """The coarsest level: each point flows to the neighbour lowest on a slow noise, if lower than itself (else it
    is a sink: its channel is the point)."""
    ax, ay = _points(seed, 0, row0 - 1, col0 - 1, rows + 2, cols + 2)
    cell = level_spacing_m(0)
    centres_x = (np.arange(col0 - 1, col0 + cols + 1) + 0.5) * cell
    centres_y = (np.arange(row0 - 1, row0 + rows + 1) + 0.5) * cell
    key = stream_key(seed, STREAM_STRUCTURE, FIELD["valley_basin"], 0)
    low = value_noise(key, centres_x, centres_y, BASIN_CELLS * cell).astype(np.float64)
    best = low[1:-1, 1:-1].copy()
    bx, by = ax[1:-1, 1:-1].copy(), ay[1:-1, 1:-1].copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            there = low[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
            lower = there < best
            best = np.where(lower, there, best)
            bx = np.where(lower, ax[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols], bx)
            by = np.where(lower, ay[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols], by)
    return Channels(row0, col0, ax[1:-1, 1:-1], ay[1:-1, 1:-1], bx, by)


def _to_channel(net: Channels, idx: np.ndarray, px: np.ndarray, py: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance from points (px, py) to the channels with flat cell indices idx (same shape), and the nearest point
    on each (x, y)."""
    ax, ay, bx, by = (a.ravel().take(idx) for a in (net.ax, net.ay, net.bx, net.by))
    ex, ey = bx - ax, by - ay
    t = np.clip(((px - ax) * ex + (py - ay) * ey) / np.maximum(ex * ex + ey * ey, 1e-9), 0.0, 1.0)
    qx, qy = ax + t * ex, ay + t * ey
    return np.hypot(px - qx, py - qy), qx, qy


def _nearest(net: Channels, cell: float, px: np.ndarray, py: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For points (px, py) (any shape, float64): the distance to the nearest channel of net among those starting
    within REACH cells, the nearest point on it (x, y) and that channel's flat cell index."""
    rows, cols = net.ax.shape
    ci = np.floor(px / cell).astype(np.int64) - net.col0
    ri = np.floor(py / cell).astype(np.int64) - net.row0
    best = np.full(px.shape, np.inf)
    nx, ny = np.zeros(px.shape), np.zeros(px.shape)
    which = np.zeros(px.shape, np.int64)
    for dr in range(-REACH, REACH + 1):
        for dc in range(-REACH, REACH + 1):
            idx = np.clip(ri + dr, 0, rows - 1) * cols + np.clip(ci + dc, 0, cols - 1)
            d, qx, qy = _to_channel(net, idx, px, py)
            closer = d < best
            best, nx, ny, which = (np.where(closer, new, old) for new, old in ((d, best), (qx, nx), (qy, ny),
                                                                                  (idx, which)))
    return best, nx, ny, which


def _finer_channels(seed: int, level: int, coarser: Channels, row0: int, col0: int, rows: int, cols: int
                    ) -> Channels:
    """A finer level: each point flows to the coarser net, DOWNSTREAM of its nearest point along that channel."""
    ax, ay = _points(seed, level, row0, col0, rows, cols)
    dist, nx, ny, idx = _nearest(coarser, level_spacing_m(level - 1), ax, ay)
    tx, ty = (b.ravel().take(idx) for b in (coarser.bx, coarser.by))  # where the trunk's stretch ends
    left = np.hypot(tx - nx, ty - ny)
    shift = np.minimum(DOWNSTREAM * dist, left) / np.maximum(left, 1e-9)  # downstream, not past the stretch's end
    bx, by = nx + shift * (tx - nx) - ax, ny + shift * (ty - ny) - ay
    # a channel runs at most MAX_RUN cells (beyond, a pixel's search would miss it): far from any trunk, it ends
    scale = np.minimum(1.0, MAX_RUN * level_spacing_m(level) / np.maximum(np.hypot(bx, by), 1e-9))
    return Channels(row0, col0, ax, ay, ax + scale * bx, ay + scale * by)


def _block(g: Grid, cell: float, margin: int) -> tuple[int, int, int, int]:
    """(row0, col0, rows, cols) of the cells under a window and margin more on every side."""
    c0, c1 = int(math.floor(float(g.x.min()) / cell)), int(math.floor(float(g.x.max()) / cell))
    r0, r1 = int(math.floor(float(g.y.min()) / cell)), int(math.floor(float(g.y.max()) / cell))
    return r0 - margin, c0 - margin, r1 - r0 + 1 + 2 * margin, c1 - c0 + 1 + 2 * margin


def drawn_levels(px_m: float) -> int:
    """How many levels, from the coarsest, are drawn on pixels of this size (Web-Mercator metres)."""
    return sum(1 for k in range(VALLEY_LEVELS) if level_spacing_m(k) >= VALLEY_MIN_PX * px_m)


def channel_nets(seed: int, g: Grid, levels: int) -> list[Channels]:
    """The channels of the coarsest `levels` levels over a window, each with the margin its pixels and the next
    level's points need."""
    nets: list[Channels] = []
    for level in range(levels):
        # finer levels' points reach into this one, and pixels look up to 2 WARP of the coarsest spacing away
        margin = REACH + 2 * (levels - 1 - level) + 1 + math.ceil(2 * WARP * 2**level)
        block = _block(g, level_spacing_m(level), margin)
        nets.append(_top_channels(seed, *block) if level == 0 else _finer_channels(seed, level, nets[-1], *block))
    return nets


@cache
def valley_tallest_m() -> float:
    """How high the valleys' crests stand over their deepest floor: every level's depth."""
    return sum(level_depth_m(k) for k in range(VALLEY_LEVELS))


def valley_share(valleys: tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None, px_m: float
                 ) -> tuple[np.ndarray | np.float32, np.ndarray | np.float32, int]:
    """What snow is laid along, from valley_relief's answer on pixels of this size: the valleys' height as a share
    of the tallest they reach (0 to 1; where none is drawn, the mean of them all), how much it changes across a
    pixel, and how many levels are drawn."""
    deep = np.float32(valley_tallest_m())
    if valleys is None:
        return np.float32(undrawn_mean_m(0)) / deep, np.float32(0.0), 0
    (sx, sy) = valleys[1]
    return valleys[0] / deep, np.sqrt(sx * sx + sy * sy) * np.float32(px_m) / deep, drawn_levels(px_m)


@cache
def undrawn_mean_m(first: int) -> float:
    """The mean height levels from `first` on add where they are too fine to draw (each level's valleys cover
    its ground in the same way, so a measured mean of its profile, times its depth)."""
    return sum(PROFILE_MEAN * level_depth_m(k) for k in range(first, VALLEY_LEVELS))


def profile(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A valley's cross-section (0 on its channel, 1 from its half-width on) and its slope, at t = distance over
    half-width: t (2 - t), V-shaped at the channel (a sharp dark line from afar), level with the crests at its edge.

    >>> [round(float(v), 2) for v in profile(np.array([0.0, 0.5, 2.0]))[0]]
    [0.0, 0.75, 1.0]"""
    s = np.minimum(t, np.float32(1.0))
    return s * (np.float32(2.0) - s), np.float32(2.0) * (np.float32(1.0) - s)


def _at(a: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Some elements (flat indices) of an array."""
    return a.ravel().take(which)


def _warp(seed: int, octaves: int, xs: np.ndarray, ys: np.ndarray, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """How far (x, y; Mercator metres, (H, W) float64) pixels at xs (W,), ys (H,) look up the net: smooth noise with
    one octave per level from the coarsest, gain x WARP x each spacing. A valley's warp has an octave per level down
    to its own, so a tributary's is its trunk's plus one finer octave and its valley still opens into the trunk's."""
    wx = np.zeros((len(ys), len(xs)))
    wy = np.zeros((len(ys), len(xs)))
    for k in range(octaves):
        cell = level_spacing_m(k)
        fx, fy = (xs / cell)[None, :], (ys / cell)[:, None]
        for axis, acc in ((0, wx), (1, wy)):
            key = stream_key(seed, STREAM_STRUCTURE, FIELD["valley_warp"], k, axis)
            acc += (gain * WARP * cell * WARP_GAIN) * gradient_noise_grad(key, fx, fy, cell)[0].astype(np.float64)
    return wx, wy


class _Nearest(NamedTuple):
    """What one level's lookup found for the pixels it computed (rows, cols; the others lie further than its cap):
    each one's distance to its nearest channel, its position looked up through the warp (x, y), the nearest point on
    that channel (x, y) and the channel's flat cell index."""

    rows: np.ndarray
    cols: np.ndarray
    dist: np.ndarray
    px: np.ndarray
    py: np.ndarray
    qx: np.ndarray
    qy: np.ndarray
    chan: np.ndarray

    def scatter(self, shape: tuple[int, int], values: np.ndarray, fill: float) -> np.ndarray:
        """values of the computed pixels in a float32 array of shape, fill elsewhere."""
        out = np.full(shape, np.float32(fill), np.float32)
        out[self.rows, self.cols] = values
        return out


def _level_nearest(seed: int, g: Grid, level: int, net: Channels, cap_m: float, warp_octaves: int,
                   warp_gain: float = 1.0) -> _Nearest | None:
    """The nearest channel of one level to every pixel that may lie within cap_m of one (by its four samples), looked
    up through a warp of so many octaves (and gain); None where no pixel is that near.

    The nearest channels are looked up every few pixels (SAMPLE_PER_CELL per spacing, at global pixel positions) and
    each pixel's distance is exact to the nearest of its four samples' channels, so every window gets the same
    numbers (which pixels are skipped is decided from the same samples)."""
    cell = level_spacing_m(level)
    step = int(min(MAX_SAMPLE_PX, 2 ** max(0, math.floor(math.log2(cell / g.px_m / SAMPLE_PER_CELL)))))
    xs, ci, ct = coarse_axis(g.x, g.px_m, 1.0, step)
    ys, ri, rt = coarse_axis(g.y, g.px_m, -1.0, step)
    wx, wy = _warp(seed, warp_octaves, xs, ys, warp_gain)
    near, _, _, idx = _nearest(net, cell, xs[None, :] + wx, ys[:, None] + wy)
    reach = cap_m + SAMPLE_SLACK * step * g.px_m
    if float(near.min()) > reach:
        return None
    low = np.minimum(np.minimum(near[:-1, :-1], near[1:, :-1]), np.minimum(near[:-1, 1:], near[1:, 1:]))
    rows, cols = np.nonzero(low[ri][:, ci] <= reach)
    r, c = ri[rows], ci[cols]
    px = g.x[cols] + separable_lerp(wx, (ri, rt), (ci, ct))[rows, cols]
    py = g.y[rows] + separable_lerp(wy, (ri, rt), (ci, ct))[rows, cols]
    chan = idx[r, c]
    d, qx, qy = _to_channel(net, chan, px, py)
    for corner in (idx[r + 1, c], idx[r, c + 1], idx[r + 1, c + 1]):
        other = np.nonzero(corner != chan)[0]  # (most pixels' four samples share one channel)
        if len(other) == 0:
            continue
        dc, qxc, qyc = _to_channel(net, corner[other], px[other], py[other])
        closer = dc < d[other]
        for full, new in ((d, dc), (qx, qxc), (qy, qyc), (chan, corner[other])):
            full[other] = np.where(closer, new, full[other])
    return _Nearest(rows, cols, d, px, py, qx, qy, chan)


def valley_relief(seed: int, g: Grid) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """The valleys' height (H, W; Web-Mercator metres over the deepest floor, finer levels their mean) and slopes
    (rise over run east and north) at a window's pixels; None when no level is VALLEY_MIN_PX wide (coarse zooms)."""
    levels = drawn_levels(g.px_m)
    if levels == 0:
        return None
    nets = channel_nets(seed, g, levels)
    shape = (len(g.y), len(g.x))
    height = np.full(shape, np.float32(undrawn_mean_m(levels)))
    sx, sy = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    dist = np.full(shape, np.inf, np.float32)  # to the nearest channel of the levels so far, and away from it
    dir_x, dir_y = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for level, net in enumerate(nets):
        half = np.float32(VALLEY_WIDTH * level_spacing_m(level))
        depth = np.float32(level_depth_m(level))
        found = _level_nearest(seed, g, level, net, float(half), level + 1)
        if found is None:  # no pixel is in this level's valleys (nor the finer ones'):
            height += depth  # its profile is level, 1, everywhere (as it would come out)
            continue
        away = np.maximum(found.dist, 1e-6)  # the unit vector away from the channel, uphill
        d32 = found.scatter(shape, found.dist, np.inf)
        ux = found.scatter(shape, (found.px - found.qx) / away, 0.0)
        uy = found.scatter(shape, (found.py - found.qy) / away, 0.0)
        closer = d32 < dist
        dist, dir_x, dir_y = np.where(closer, d32, dist), np.where(closer, ux, dir_x), np.where(closer, uy, dir_y)
        h, dh = profile(dist / half)
        height += depth * h
        gain = depth * dh / half
        sx += gain * dir_x
        sy += gain * dir_y
    return height, (sx, sy)


def stream_distances(seed: int, g: Grid, caps_m: Sequence[float], warp_octaves: int, warp_gain: float
                     ) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """The distance (H, W; float32 Mercator metres; inf beyond that level's cap) from every pixel to the channels of
    the coarsest len(caps_m) levels and how far the nearest spot is down its channel (from the channel's point,
    where a finer level's stream rises), or None for a level none of whose channels comes within its cap: streams,
    wherever the ground is (flat land drains too). Every level is looked up through one warp of warp_octaves octaves
    and warp_gain x the valleys' strength (the same at every zoom), so a stream meets its trunk where its channel ends
    on it; a gain under about 0.4 never folds the warp, which would draw a stretch of stream two or three times."""
    shape = (len(g.y), len(g.x))
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for level, (net, cap) in enumerate(zip(channel_nets(seed, g, len(caps_m)), caps_m, strict=True)):
        found = _level_nearest(seed, g, level, net, cap, warp_octaves, warp_gain)
        if found is None:
            out.append(None)
            continue
        down = np.hypot(found.qx - _at(net.ax, found.chan), found.qy - _at(net.ay, found.chan))
        out.append((found.scatter(shape, found.dist, np.inf), found.scatter(shape, down, 0.0)))
    return out
