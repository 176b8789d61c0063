"""World-coordinate primitives of the structure field: window grids, coordinate hashes, value noise and fractal noise,
anti-aliased bands and compositing. Every value is a pure function of (world seed, position), so windows agree where
they meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from terradream.core.tiles import TILE_SIZE_PX, WEB_MERCATOR_HALF_WORLD_M
from terradream.model.noise import splitmix64, stream_key, uniform_grid

WORLD_M = 2 * WEB_MERCATOR_HALF_WORLD_M  # Web-Mercator world width in metres
GROUND_TO_MERCATOR = 1.35  # sizes below are ground metres at mid latitudes; Mercator metres are about this much larger
LIGHT_FROM = (-math.sqrt(0.5), math.sqrt(0.5))  # where the light comes from, along the ground (x east, y north)
_SUN_RISE = 1.6 / math.sqrt(2.0)  # the light's height over its run along the ground (about 48 degrees up)
# the unit vector towards the light (x east, y north, up): from where LIGHT_FROM says, as roofs and shadows are lit
SUN = (np.array([*LIGHT_FROM, _SUN_RISE]) / math.hypot(*LIGHT_FROM, _SUN_RISE)).astype(np.float32)
STREAM_STRUCTURE = 2  # noise.py stream id of the structure field's random numbers
FIELD = {"district": 0, "farm": 1, "town": 2, "forest": 3, "warp_x": 4, "warp_y": 5, "region": 6, "parcel": 7,
         "riparian": 8, "riparian_width": 9, "road_major": 10, "road_minor": 11, "lot": 12, "tree": 13, "tree_b": 14,
         "town_edge": 15, "urban": 16, "ridge": 17, "woods": 18, "woods_tone": 19, "land_tone": 20, "land_hue": 21,
         "block": 22, "street_bend_u": 23, "street_bend_v": 24, "grain": 25, "canopy": 26, "gully": 27, "crevasse": 28,
         "crevasse_field": 29, "industry": 30, "green_space": 31, "crown_clump": 32,
         "wave": 33, "sea_state": 34, "beach": 35, "surf": 36, "breaker": 37, "breaker_drift": 38,
         "beach_depth": 39, "valley": 40, "valley_basin": 41, "valley_warp": 42,
         "parcel_scale": 43}


@dataclass(frozen=True)
class Grid:
    """Sample points of a window: x (W,) and y (H,) in Mercator metres (y grows northwards), and the pixel size."""

    x: np.ndarray
    y: np.ndarray
    px_m: float

    @classmethod
    def of_window(cls, z: int, row0: int, col0: int, height: int, width: int) -> Grid:
        """Pixel centres of a window of global pixels at zoom z (columns wrap at the antimeridian)."""
        px_m = WORLD_M / (TILE_SIZE_PX << z)
        start = col0 % (TILE_SIZE_PX << z)  # x runs on unwrapped past the antimeridian: lattices stay window-sized
        cols = np.arange(start, start + width, dtype=np.float64) + 0.5
        rows = np.arange(row0, row0 + height, dtype=np.float64) + 0.5
        return cls(cols * px_m - WORLD_M / 2, WORLD_M / 2 - rows * px_m, px_m)

    def shifted(self, dx_m: float, dy_m: float) -> Grid:
        """The same pixels sampled dx_m east and dy_m north of their centres."""
        return Grid(self.x + dx_m, self.y + dy_m, self.px_m)

    def children(self) -> tuple[Grid, ...]:
        """The next zoom's four pixels inside each of these (half the size, centres next_zoom_offsets away): a
        feature painted on each and averaged is what that zoom's pixels will average to, so the zoom before the one
        that first draws a feature can hold its coarser octave (the cascade keeps 2x2 means from zoom to zoom)."""
        return tuple(Grid(self.x + dx, self.y + dy, self.px_m / 2) for dx, dy in next_zoom_offsets(self.px_m))

    def box(self, mask: np.ndarray) -> tuple[tuple[slice, slice], Grid]:
        """The smallest box of rows and columns holding every set pixel of mask (H, W; at least one is set), and the
        grid of that box: features drawn on it get the same numbers as on the whole window (each is per pixel)."""
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        return box, Grid(self.x[box[1]], self.y[box[0]], self.px_m)

    def children_mean(self, paint: Callable[[Grid], np.ndarray]) -> np.ndarray:
        """The mean of paint over the children grids, added up elementwise in one order (a reduction such as np.mean
        may round differently with the array's shape, and a pixel must get the same bits in every window)."""
        a, b, c, d = (paint(sub) for sub in self.children())
        return ((a + b) + (c + d)) * np.float32(0.25)

    def grown(self) -> Grid:
        """This grid with one more pixel on every side, computed as of_window computes points (so a point has the
        same coordinates, to the bit, whichever window's grid it is in)."""
        col0 = round((self.x[0] + WORLD_M / 2) / self.px_m - 0.5)
        row0 = round((WORLD_M / 2 - self.y[0]) / self.px_m - 0.5)
        cols = np.arange(col0 - 1, col0 + len(self.x) + 1, dtype=np.float64) + 0.5
        rows = np.arange(row0 - 1, row0 + len(self.y) + 1, dtype=np.float64) + 0.5
        return Grid(cols * self.px_m - WORLD_M / 2, WORLD_M / 2 - rows * self.px_m, self.px_m)


def merc(ground_m: float) -> float:
    """Mercator metres of a size given in ground metres at mid latitudes (GROUND_TO_MERCATOR)."""
    return ground_m * GROUND_TO_MERCATOR


def hash2(key: np.uint64 | np.ndarray, a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """64 random bits per element of two integer arrays (elementwise, broadcasting)."""
    ha = splitmix64(np.asarray(a, dtype=np.int64).astype(np.uint64) ^ key)
    return splitmix64(ha ^ (np.asarray(b, dtype=np.int64).astype(np.uint64) * np.uint64(0x94D049BB133111EB)))


def unit(bits: np.ndarray, salt: int = 0) -> np.ndarray:
    """Uniform [0, 1) float32 values with 16-bit steps from 64-bit hashes: salts 0-3 read the four 16-bit fields of
    the hash itself, higher salts those of a re-mixed hash, so every salt gives an independent value."""
    bits = np.asarray(bits, dtype=np.uint64)
    if salt >= 4:
        bits = splitmix64(bits ^ np.uint64(salt // 4))
    return ((bits >> np.uint64(16 * (salt % 4))) & np.uint64(0xFFFF)).astype(np.float32) * np.float32(2.0**-16)


def _cells(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lattice cell index and smoothstep weight of 1-D positions f (in cells)."""
    i = np.floor(f).astype(np.int64)
    t = (f - i).astype(np.float32)
    return i, t * t * (3 - 2 * t)


def _lattice_axis(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lattice indices one axis of samples needs (every i and i + 1) and where each i is among them; i + 1 is
    the next entry. Cells wider than a pixel need a contiguous run; finer cells only the points next to a sample (a
    whole run would hash a continent's lattice for a coarse window)."""
    lo, hi = int(i.min()), int(i.max())
    if len(i) < 2 or int(np.abs(np.diff(i)).max()) <= 1:  # i runs without gaps (either way along the axis)
        return np.arange(lo, hi + 2, dtype=np.int64), i - lo
    points = np.union1d(i, i + 1)
    return points, np.searchsorted(points, i)


def value_noise(key: np.uint64, x: np.ndarray, y: np.ndarray, cell_m: float) -> np.ndarray:
    """Smooth value noise in [0, 1) on the separable grid x (W,) by y (H,): the lattice under the window is hashed
    once, interpolated along x on its few rows, then along y (exact smoothstep-bilinear, as the grid is separable)."""
    ix, tx = _cells(x / cell_m)
    iy, ty = _cells(y / cell_m)
    (cols, cx), (rows, cy) = _lattice_axis(ix), _lattice_axis(iy)
    lattice = uniform_grid(key, rows, cols).astype(np.float32)
    return separable_lerp(lattice, (cy, ty), (cx, tx))


def separable_lerp(a: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]
                   ) -> np.ndarray:
    """Samples a (R, C) interpolated at (index, weight) pairs per output row and column: along the columns first
    (a[:, i] to a[:, i + 1] by the weight), then along the rows, so an output pixel gets the same arithmetic
    whichever window it is in.

    >>> separable_lerp(np.array([[0.0, 2.0], [4.0, 6.0]]), (np.array([0]), np.array([0.5])),
    ...                (np.array([0]), np.array([0.25]))).tolist()
    [[2.5]]
    """
    (ri, rt), (ci, ct) = rows, cols
    along = a[:, ci] * (1 - ct) + a[:, ci + 1] * ct
    return along[ri] * (1 - rt)[:, None] + along[ri + 1] * rt[:, None]


def coarse_axis(coords: np.ndarray, px_m: float, sign: float, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every step-th global pixel centre around a window's pixel centres along one axis (coords = sign x
    (index + 0.5) x px_m - sign x WORLD_M / 2, as Grid.of_window makes them), with each pixel's sample index and
    linear weight: pure functions of the global pixel index, so every window interpolates the same numbers."""
    idx = np.round(sign * (coords + sign * WORLD_M / 2) / px_m - 0.5).astype(np.int64)
    k = idx // step
    k0 = int(k.min())
    samples = np.arange(k0, int(k.max()) + 2, dtype=np.int64) * step
    at = sign * ((samples + 0.5) * px_m - WORLD_M / 2)
    return at, (k - k0).astype(np.intp), ((idx - k * step) / step).astype(np.float32)


def fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic fade 6t^5 - 15t^4 + 10t^3: flat at 0 and 1 to the second derivative."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def fade_grad(t: np.ndarray) -> np.ndarray:
    """The fade's derivative, 30 t^2 (t - 1)^2."""
    return 30 * t * t * (t - 1) * (t - 1)


def cell_of(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Lattice cell indices (from the smallest, as intp) and float32 offsets in the cell of positions f (in cells)."""
    i = np.floor(f)
    low = float(i.min())
    return (i - low).astype(np.intp), (f - i).astype(np.float32), low


def gradient_noise_grad(key: np.uint64, fx: np.ndarray, fy: np.ndarray, cell_m: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Perlin gradient noise (about -0.7..0.7, zero on the lattice) at points fx, fy (broadcastable, in cells) and
    its derivatives per metre along x and y, exactly: a hashed unit gradient at each lattice point, quintic fades.

    >>> n, dx, dy = gradient_noise_grad(np.uint64(7), np.array([[3.0]]), np.array([[5.0]]), 100.0)
    >>> float(n[0, 0])
    0.0"""
    cx, tx, x0 = cell_of(fx)
    cy, ty, y0 = cell_of(fy)
    width = int(cx.max()) + 2
    angle = uniform_grid(key, np.arange(y0, y0 + int(cy.max()) + 2, dtype=np.int64),
                         np.arange(x0, x0 + width, dtype=np.int64)) * (2.0 * math.pi)
    gx, gy = np.cos(angle).astype(np.float32).ravel(), np.sin(angle).astype(np.float32).ravel()
    i00 = cy * width + cx
    corners = [(gx.take(i), gy.take(i)) for i in (i00, i00 + 1, i00 + width, i00 + width + 1)]
    (ax, ay), (bx, by), (cx_, cy_), (dx_, dy_) = corners
    one = np.float32(1.0)
    a, b = ax * tx + ay * ty, bx * (tx - one) + by * ty
    c, d = cx_ * tx + cy_ * (ty - one), dx_ * (tx - one) + dy_ * (ty - one)
    sx, sy = fade(tx), fade(ty)
    k1, k2, k3 = b - a, c - a, a - b - c + d
    n = a + k1 * sx + k2 * sy + k3 * sx * sy
    per_m = np.float32(1.0 / cell_m)
    dn_x = ax + (bx - ax) * sx + (cx_ - ax) * sy + (ax - bx - cx_ + dx_) * sx * sy + (k1 + k3 * sy) * fade_grad(tx)
    dn_y = ay + (by - ay) * sx + (cy_ - ay) * sy + (ay - by - cy_ + dy_) * sx * sy + (k2 + k3 * sx) * fade_grad(ty)
    return n, dn_x * per_m, dn_y * per_m


def fbm(seed: int, field: str, g: Grid, cell_m: float, octaves: int, persistence: float = 0.5) -> np.ndarray:
    """Fractal value noise in [0, 1], (H, W), each octave persistence times as strong as the one above. Octaves
    finer than a pixel add their mean, 0.5 (what a pixel's area average of them is): sampled at pixel centres they
    would only be speckle, and each joins the cascade at the zoom where its cells are a pixel wide."""
    total, amp, norm = np.zeros((len(g.y), len(g.x)), np.float32), 1.0, 0.0
    for octave in range(octaves):
        if cell_m < g.px_m:
            total += np.float32(amp * 0.5)
        else:
            total += amp * value_noise(stream_key(seed, STREAM_STRUCTURE, FIELD[field], octave), g.x, g.y, cell_m)
        norm += amp
        amp *= persistence
        cell_m *= 0.5
    return total / norm


def ramp(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below lo, 1 at or above hi, linear between."""
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def coverage(dist_m: np.ndarray, half_width_m: float | np.ndarray, px_m: float) -> np.ndarray:
    """The share of a pixel px_m across that a band of half_width around a line covers, from the distance of the
    pixel's centre to the line: exact across a straight line, so a band thinner than a pixel adds its area to the
    pixels it crosses at every zoom and the zoom that resolves it has nothing to add to their means.

    >>> [float(v) for v in coverage(np.array([0.0, 1.0, 2.0]), 0.25, 2.0)]
    [0.25, 0.125, 0.0]"""
    w = np.maximum(half_width_m, 0.0)
    return np.clip(np.minimum((w - dist_m) / px_m + 0.5, 2.0 * w / px_m), 0.0, 1.0)


def over(c: np.ndarray, alpha: np.ndarray, colour: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """Composite colour over c (H, W, 3) with per-pixel alpha (H, W), in place."""
    c += alpha.astype(np.float32)[..., None] * (np.asarray(colour, dtype=np.float32) - c)
    return c


def rotated(g: Grid, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions in a frame rotated by theta (per pixel)."""
    c, s = np.cos(theta), np.sin(theta)
    x, y = g.x[None, :], g.y[:, None]
    return x * c + y * s, -x * s + y * c


def toward_light(dist_m: float) -> tuple[float, float]:
    """The offset (x, y metres) from a pixel to the point whose object would shade it: dist_m each way towards the
    light, so a shadow falls away from it.

    >>> toward_light(4.0)
    (-4.0, 4.0)
    """
    return math.copysign(dist_m, LIGHT_FROM[0]), math.copysign(dist_m, LIGHT_FROM[1])


def next_zoom_offsets(px_m: float) -> tuple[tuple[float, float], ...]:
    """Offsets (x, y metres) from a pixel's centre to the centres of the four pixels of the next zoom inside it: a
    feature about a pixel wide is averaged there, so a pixel holds what its children will average to (the
    cascade's exact projection keeps those 2x2 means).

    >>> next_zoom_offsets(8.0)
    ((-2.0, -2.0), (2.0, -2.0), (-2.0, 2.0), (2.0, 2.0))
    """
    q = px_m / 4.0
    return (-q, -q), (q, -q), (-q, q), (q, q)


def level_slope(grown: np.ndarray, px_m: float) -> tuple[np.ndarray, np.ndarray]:
    """A field sampled on a grid grown by one pixel (Grid.grown): its values on the grid itself and the size of its
    gradient there (central differences, per metre), which turns a value's distance from a level into metres."""
    slope = np.hypot(grown[1:-1, 2:] - grown[1:-1, :-2], grown[2:, 1:-1] - grown[:-2, 1:-1]) / (2 * px_m)
    return grown[1:-1, 1:-1], slope
