"""The lazy self-cascade: resolve a tile's parents recursively down to cached or root tiles, then generate upwards.

A cold tile at zoom z needs the parent tiles under its window (2x2 of them), which need theirs, and so on until the
cache or the world's root pyramid answers, so its cost grows linearly with zoom. Ready windows from all requested tiles,
at any zoom, go through the pipeline together in fixed-shape batches: a window's bytes never depend on its batch-mates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from terradream.model.errors import TileOutOfRange
from terradream.model.keys import TileKey
from terradream.model.pipeline import TerraPipeline, WindowSpec
from terradream.model.tiles import TILE_SIZE_PX, latitude_of_rows_deg, meters_per_pixel, validate_tile
from terradream.model.worlds import WorldRegistry


class TileStore(Protocol):
    """Where the cascade reads parents from and writes every tile it makes (uint8 (256, 256, 3) arrays)."""

    def get_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        """The stored tiles among keys; missing ones are omitted."""
        ...

    def put_tiles(self, tiles: Mapping[TileKey, np.ndarray]) -> None:
        """Store tiles (atomically per tile)."""
        ...


class MemoryTileStore:
    """An unbounded in-process TileStore, for tests and one-off scripts."""

    def __init__(self) -> None:
        self.tiles: dict[TileKey, np.ndarray] = {}
        self._lock = threading.Lock()

    def get_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        with self._lock:
            return {k: self.tiles[k] for k in keys if k in self.tiles}

    def put_tiles(self, tiles: Mapping[TileKey, np.ndarray]) -> None:
        with self._lock:
            self.tiles.update(tiles)


@dataclass
class CascadeStats:
    """Monotonic counters: model windows computed, tiles the model produced, root tiles reprojected."""

    windows: int = 0
    tiles_generated: int = 0
    root_tiles: int = 0
    batches: int = 0


def window_origin_px(key: TileKey, margin_px: int) -> tuple[int, int]:
    """Global (row, col) of the top-left pixel of the window around a tile, at the tile's zoom (col unwrapped)."""
    return key.y * TILE_SIZE_PX - margin_px, key.x * TILE_SIZE_PX - margin_px


def parent_px_span(origin_px: int, window_px: int) -> tuple[int, int]:
    """Half-open range of parent-zoom pixels under a window starting at origin_px, plus one pixel of apron each side."""
    return origin_px // 2 - 1, (origin_px + window_px) // 2 + 1


def parent_keys_for(key: TileKey, margin_px: int, window_px: int) -> list[TileKey]:
    """The parent-zoom tiles a tile's window reads (x wrapped, y clamped to the world): 2x2 for margins < 256 px."""
    row0, col0 = window_origin_px(key, margin_px)
    n = 1 << (key.z - 1)
    r_lo, r_hi = parent_px_span(row0, window_px)
    c_lo, c_hi = parent_px_span(col0, window_px)
    ys = sorted({min(max(t, 0), n - 1) for t in range(r_lo // TILE_SIZE_PX, (r_hi - 1) // TILE_SIZE_PX + 1)})
    xs = sorted({t % n for t in range(c_lo // TILE_SIZE_PX, (c_hi - 1) // TILE_SIZE_PX + 1)})
    return [TileKey(key.world, key.z - 1, x, y) for y in ys for x in xs]


def plan_missing(missing: Sequence[TileKey], parents_of: Callable[[TileKey], list[TileKey]],
                 is_root: Callable[[TileKey], bool],
                 find_stored: Callable[[list[TileKey]], Collection[TileKey]]) -> dict[TileKey, list[TileKey]]:
    """Walk down from missing tiles to stored or root ones: every tile to make, with its parent keys ([] for roots).

    find_stored(keys) returns the stored keys among keys; it is asked once per level, never twice for a key. The
    Cascade renders with this plan, and the distributed server submits the same plan as a task graph.
    """
    todo: dict[TileKey, list[TileKey]] = {}
    stored: set[TileKey] = set()
    frontier = list(dict.fromkeys(missing))
    while frontier:
        needed: dict[TileKey, None] = {}
        for k in frontier:
            if k in todo:
                continue
            todo[k] = [] if is_root(k) else parents_of(k)
            needed.update((p, None) for p in todo[k] if p not in todo and p not in stored)
        if not needed:
            break
        found = set(find_stored(list(needed)))
        stored |= found
        frontier = [p for p in needed if p not in found]
    return todo


def gather_px(tiles: Mapping[TileKey, np.ndarray], world: str, z: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pixels at global rows x cols of zoom z from a set of tiles (rows clamped to the world, cols wrapped)."""
    size = TILE_SIZE_PX << z
    rows = np.clip(rows, 0, size - 1)
    cols = np.mod(cols, size)
    tys, txs = np.unique(rows // TILE_SIZE_PX), np.unique(cols // TILE_SIZE_PX)
    mosaic = np.empty((len(tys) * TILE_SIZE_PX, len(txs) * TILE_SIZE_PX, 3), dtype=np.uint8)
    for i, ty in enumerate(tys):
        for j, tx in enumerate(txs):
            tile = tiles[TileKey(world, z, int(tx), int(ty))]
            mosaic[i * TILE_SIZE_PX : (i + 1) * TILE_SIZE_PX, j * TILE_SIZE_PX : (j + 1) * TILE_SIZE_PX] = tile
    ri = np.searchsorted(tys, rows // TILE_SIZE_PX) * TILE_SIZE_PX + rows % TILE_SIZE_PX
    ci = np.searchsorted(txs, cols // TILE_SIZE_PX) * TILE_SIZE_PX + cols % TILE_SIZE_PX
    return mosaic[np.ix_(ri, ci)]


def block_row_log2_mpp(z: int, row0: int, window_px: int, patch_px: int) -> np.ndarray:
    """log2 of the ground resolution (m/px) at the centre of each patch-high row band of a window."""
    centres = np.arange(row0, row0 + window_px, patch_px, dtype=np.float64) + patch_px / 2.0 - 0.5
    return np.log2(meters_per_pixel(z, latitude_of_rows_deg(z, centres))).astype(np.float32)


class Cascade:
    """Turns tile keys into tiles: lazily resolves parents, batches ready windows, writes results to the store."""

    def __init__(
        self, pipeline: TerraPipeline, worlds: WorldRegistry, store: TileStore, batch_size: int | None = None
    ) -> None:
        self.pipeline = pipeline
        self.worlds = worlds
        self.store = store
        self.batch_size = batch_size or pipeline.micro_batch
        self.stats = CascadeStats()
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The model version that keys this cascade's tiles."""
        return self.pipeline.version

    def tile_key(self, world: str, z: int, x: int, y: int, maxzoom: int) -> TileKey:
        """A validated key: raises TileOutOfRange outside the matrix and UnknownWorld for bad or disallowed names."""
        validate_tile(z, x, y, maxzoom)
        self.worlds.get(world)
        return TileKey(world, z, x, y)

    def render(self, keys: Sequence[TileKey]) -> dict[TileKey, np.ndarray]:
        """The tiles for keys, generating (and storing) whatever is missing, parents first."""
        with self._lock:
            wanted = list(dict.fromkeys(keys))
            for k in wanted:
                if k.z < 0 or not (0 <= k.x < (1 << k.z) and 0 <= k.y < (1 << k.z)):
                    raise TileOutOfRange(f"tile {k} is outside the tile matrix")
            have: dict[TileKey, np.ndarray] = dict(self.store.get_tiles(wanted))
            todo = self._plan([k for k in wanted if k not in have], have)
            self._generate(todo, have)
            return {k: have[k] for k in wanted}

    # ---- planning ----
    def parents_of(self, key: TileKey) -> list[TileKey]:
        """The parent-zoom tiles a generated tile's window reads."""
        return parent_keys_for(key, self.pipeline.margin_px, self.pipeline.window_px)

    def is_root(self, key: TileKey) -> bool:
        """Whether a tile comes from its world's root pyramid (reprojected, not generated)."""
        return key.z <= self.worlds.get(key.world).root_zoom

    def _plan(self, missing: list[TileKey], have: dict[TileKey, np.ndarray]) -> dict[TileKey, list[TileKey]]:
        """Plan from the store, make the root tiles; returns each tile to generate with its parent keys."""
        def find_stored(keys: list[TileKey]) -> Collection[TileKey]:
            found = self.store.get_tiles([k for k in keys if k not in have])
            have.update(found)
            return [k for k in keys if k in have]

        plan = plan_missing(missing, self.parents_of, self.is_root, find_stored)
        self._add_roots([k for k in plan if self.is_root(k)], have)
        return {k: parents for k, parents in plan.items() if k not in have}

    def _add_roots(self, keys: Iterable[TileKey], have: dict[TileKey, np.ndarray]) -> None:
        made = {k: self.worlds.get(k.world).root_tile(k.z, k.x, k.y) for k in keys if k not in have}
        if made:
            self.store.put_tiles(made)
            have.update(made)
            self.stats.root_tiles += len(made)

    # ---- generation ----
    def _generate(self, todo: dict[TileKey, list[TileKey]], have: dict[TileKey, np.ndarray]) -> None:
        """Generate in waves: every tile whose parents are all present goes into this wave's batches."""
        while todo:
            ready = [k for k, parents in todo.items() if all(p in have for p in parents)]
            if not ready:
                raise RuntimeError("cascade plan has unresolvable parents")  # a bug, never bad input
            ready.sort(key=lambda k: (k.z, k.world, k.y, k.x))
            for start in range(0, len(ready), self.batch_size):
                chunk = ready[start : start + self.batch_size]
                made = self._run_batch(chunk, have)
                self.store.put_tiles(made)
                have.update(made)
            for k in ready:
                del todo[k]

    def window_spec(self, key: TileKey, tiles: Mapping[TileKey, np.ndarray]) -> WindowSpec:
        """The WindowSpec of a tile, read from its parents in tiles."""
        row0, col0 = window_origin_px(key, self.pipeline.margin_px)
        return self.window_spec_at(key.world, key.z, row0, col0, tiles)

    def window_spec_at(self, world: str, z: int, row0: int, col0: int, tiles: Mapping[TileKey, np.ndarray]) -> WindowSpec:
        """The WindowSpec of a window with any patch-aligned origin (global px at zoom z), parents read from tiles."""
        w = self.pipeline.window_px
        r_lo, r_hi = parent_px_span(row0, w)
        c_lo, c_hi = parent_px_span(col0, w)
        parent_px = gather_px(tiles, world, z - 1, np.arange(r_lo, r_hi), np.arange(c_lo, c_hi))
        log2_mpp = block_row_log2_mpp(z, row0, w, int(self.pipeline.denoiser.config.patch_size))
        return WindowSpec(self.worlds.get(world).seed, z, row0, col0, parent_px, log2_mpp)

    def _run_batch(self, chunk: list[TileKey], have: Mapping[TileKey, np.ndarray]) -> dict[TileKey, np.ndarray]:
        """Windows of one batch (the pipeline splits it into fixed-shape model calls)."""
        specs = [self.window_spec(k, have) for k in chunk]
        out = self.pipeline.sample(specs)
        self.stats.windows += len(specs)
        self.stats.tiles_generated += len(specs)
        self.stats.batches += 1
        return {k: out[i] for i, k in enumerate(chunk)}
