"""The lazy self-cascade: resolve a tile's parents recursively down to cached or root tiles, then generate upwards.

The unit of generation is a metatile (a block of metatile x metatile tiles on a fixed grid, one window each), so a
tile's bytes depend only on its coordinates, never on which tile of the block was asked for first. A cold tile at zoom
z needs its block, whose window reads the parent tiles under it, which lie in 2x2 parent blocks, and so on until the
cache or the world's root pyramid answers: about four windows per level, linear in zoom. Ready windows from all
requested tiles, at any zoom, go through the pipeline together in fixed-shape batches: a window's bytes never depend on
its batch-mates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from terradream.core.errors import TileOutOfRange
from terradream.core.keys import TileKey
from terradream.core.tiles import TILE_SIZE_PX, latitude_of_rows_deg, meters_per_pixel, validate_tile
from terradream.model.metatiles import parent_px_span
from terradream.model.pipeline import PreparedWindow, TerraPipeline, WindowSpec
from terradream.model.worlds import EARTH, WorldRegistry


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


class UnitClaims(Protocol):
    """Claims on units across processes that share a store, so that no two of them make the same unit."""

    def claim(self, unit: TileKey) -> object | None:
        """A token when this process is to make unit, None while another one is making it."""
        ...

    def release(self, unit: TileKey, token: object) -> None:
        """Let go of a claimed unit (after its tiles are stored)."""
        ...

    def wait(self, unit: TileKey) -> None:
        """Block until the process making unit lets go of it, or a bounded time passes."""
        ...


@dataclass
class CascadeStats:
    """Monotonic counters: model windows computed, tiles the model produced (metatile^2 a window), root tiles made."""

    windows: int = 0
    tiles_generated: int = 0
    root_tiles: int = 0
    batches: int = 0


def plan_missing(missing: Sequence[TileKey], unit_of: Callable[[TileKey], TileKey],
                 parents_of: Callable[[TileKey], list[TileKey]], is_root: Callable[[TileKey], bool],
                 find_stored: Callable[[list[TileKey]], Collection[TileKey]]) -> dict[TileKey, list[TileKey]]:
    """Walk down from missing tiles to stored or root ones: every unit to make, with the parent tiles it reads.

    unit_of maps a tile to the unit that makes it (its metatile block; a root tile is its own unit, with no parents).
    find_stored(keys) returns the stored keys among keys; it is asked once per level, never twice for a key. The
    Cascade renders with this plan, and the distributed server submits the same plan as a task graph.
    """
    todo: dict[TileKey, list[TileKey]] = {}
    stored: set[TileKey] = set()
    frontier = list(dict.fromkeys(unit_of(k) for k in missing))
    while frontier:
        needed: dict[TileKey, None] = {}
        for unit in frontier:
            if unit in todo:
                continue
            todo[unit] = [] if is_root(unit) else parents_of(unit)
            needed.update((p, None) for p in todo[unit] if unit_of(p) not in todo and p not in stored)
        if not needed:
            break
        found = set(find_stored(list(needed)))
        stored |= found
        frontier = list(dict.fromkeys(unit_of(p) for p in needed if p not in found))
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
        # Set by a server whose sibling processes share the store: every unit, parents included, is claimed first.
        self.claims: UnitClaims | None = None

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
    def unit_of(self, key: TileKey) -> TileKey:
        """The unit that makes a tile: its metatile block (named by its first tile), or itself for root tiles."""
        return key if self.is_root(key) else self.pipeline.grid.unit_of(key)

    def unit_tiles(self, unit: TileKey) -> list[TileKey]:
        """The tiles one unit makes."""
        return [unit] if self.is_root(unit) else self.pipeline.grid.members(unit)

    def parents_of(self, unit: TileKey) -> list[TileKey]:
        """The parent-zoom tiles a unit's window reads."""
        return self.pipeline.grid.parent_tiles(unit)

    def is_root(self, key: TileKey) -> bool:
        """Whether a tile comes from its world's root pyramid (reprojected, not generated)."""
        return key.z <= self.worlds.get(key.world).root_zoom

    def plan(self, missing: Sequence[TileKey],
             find_stored: Callable[[list[TileKey]], Collection[TileKey]]) -> dict[TileKey, list[TileKey]]:
        """plan_missing with this cascade's units, parents and roots."""
        return plan_missing(missing, self.unit_of, self.parents_of, self.is_root, find_stored)

    def _plan(self, missing: list[TileKey], have: dict[TileKey, np.ndarray]) -> dict[TileKey, list[TileKey]]:
        """Plan from the store, make the root tiles; returns each unit to generate with its parent tiles."""
        def find_stored(keys: list[TileKey]) -> Collection[TileKey]:
            found = self.store.get_tiles([k for k in keys if k not in have])
            have.update(found)
            return [k for k in keys if k in have]

        plan = self.plan(missing, find_stored)
        self._add_roots([k for k in plan if self.is_root(k)], have)
        return {k: parents for k, parents in plan.items() if not self.is_root(k)}

    def _add_roots(self, keys: Iterable[TileKey], have: dict[TileKey, np.ndarray]) -> None:
        """Make and store the missing root tiles among keys (claimed first, like generated units)."""
        self._make_claimed([k for k in keys if k not in have], have, self._make_roots)

    def _make_roots(self, keys: list[TileKey], have: dict[TileKey, np.ndarray]) -> None:
        made = {k: self.worlds.get(k.world).root_tile(k.z, k.x, k.y) for k in keys}
        if made:
            self.store.put_tiles(made)
            have.update(made)
            self.stats.root_tiles += len(made)

    # ---- generation ----
    def _generate(self, todo: dict[TileKey, list[TileKey]], have: dict[TileKey, np.ndarray]) -> None:
        """Generate in waves: every unit whose parent tiles are all present goes into this wave's batches."""
        while todo:
            ready = [u for u, parents in todo.items() if all(p in have for p in parents)]
            if not ready:
                raise RuntimeError("cascade plan has unresolvable parents")  # a bug, never bad input
            ready.sort(key=lambda u: (u.z, u.world, u.y, u.x))
            self._make_claimed(ready, have, self._run_batches)
            for u in ready:
                del todo[u]

    def _run_batches(self, units: list[TileKey], have: dict[TileKey, np.ndarray]) -> None:
        """Generate ready units in batches, storing each batch's tiles; the next batch's structure is painted on
        the side while this one's model steps run (all their parents are in have already)."""
        batches = [units[start : start + self.batch_size] for start in range(0, len(units), self.batch_size)]
        upcoming = self._prepare(batches[0], have) if batches else ([], [])
        for i, batch in enumerate(batches):
            specs, prepared = upcoming
            if i + 1 < len(batches):
                upcoming = self._prepare(batches[i + 1], have)
            made = self._run_batch(batch, specs, prepared)
            self.store.put_tiles(made)
            have.update(made)

    def _prepare(self, units: list[TileKey], have: Mapping[TileKey, np.ndarray]
                 ) -> tuple[list[WindowSpec], list[PreparedWindow]]:
        """The units' window specs, with their structure started (TerraPipeline.prepare)."""
        specs = [self.window_spec(u, have) for u in units]
        return specs, self.pipeline.prepare(specs)

    def _read_back(self, unit: TileKey, have: dict[TileKey, np.ndarray]) -> bool:
        """Whether another process has stored all of unit's tiles (then they join have)."""
        keys = self.unit_tiles(unit)
        found = self.store.get_tiles(keys)
        if len(found) < len(keys):
            return False
        have.update(found)
        return True

    def _make_claimed(self, units: list[TileKey], have: dict[TileKey, np.ndarray],
                      make: Callable[[list[TileKey], dict[TileKey, np.ndarray]], None]) -> None:
        """make() the units this process claims (unless another process stored them meanwhile), then wait for the
        others and read them back; a unit still missing after the wait (its maker failed) is made here. Without
        claims, make() them all."""
        claims = self.claims
        if claims is None:
            make(units, have)
            return
        tokens: dict[TileKey, object] = {}
        elsewhere: list[TileKey] = []
        for unit in units:
            token = claims.claim(unit)
            if token is None:
                elsewhere.append(unit)
            else:
                tokens[unit] = token
        try:
            make([u for u in tokens if not self._read_back(u, have)], have)
        finally:
            for unit, token in tokens.items():
                claims.release(unit, token)
        missing = []
        for unit in elsewhere:
            claims.wait(unit)
            if not self._read_back(unit, have):
                missing.append(unit)
        make(missing, have)

    def window_spec(self, unit: TileKey, tiles: Mapping[TileKey, np.ndarray]) -> WindowSpec:
        """The WindowSpec of a unit (any tile of it will do), read from its parents in tiles."""
        row0, col0 = self.pipeline.grid.window_origin_px(self.unit_of(unit))
        return self.window_spec_at(unit.world, unit.z, row0, col0, tiles)

    def window_spec_at(self, world: str, z: int, row0: int, col0: int, tiles: Mapping[TileKey, np.ndarray]) -> WindowSpec:
        """The WindowSpec of a window with any patch-aligned origin (global px at zoom z), parents read from tiles."""
        w = self.pipeline.window_px
        r_lo, r_hi = parent_px_span(row0, w)
        c_lo, c_hi = parent_px_span(col0, w)
        parent_px = gather_px(tiles, world, z - 1, np.arange(r_lo, r_hi), np.arange(c_lo, c_hi))
        log2_mpp = block_row_log2_mpp(z, row0, w, int(self.pipeline.denoiser.config.patch_size))
        return WindowSpec(self.worlds.get(world).seed, z, row0, col0, parent_px, log2_mpp, real_water=world == EARTH)

    def _run_batch(self, units: list[TileKey], specs: list[WindowSpec], prepared: list[PreparedWindow]
                   ) -> dict[TileKey, np.ndarray]:
        """Windows of one batch (the pipeline splits it into fixed-shape model calls), cut into their tiles."""
        cores = self.pipeline.sample(specs, prepared)
        made: dict[TileKey, np.ndarray] = {}
        for unit, core in zip(units, cores, strict=True):
            for k in self.unit_tiles(unit):
                r, c = self.pipeline.grid.offset_in_block_px(unit, k)
                made[k] = np.ascontiguousarray(core[r : r + TILE_SIZE_PX, c : c + TILE_SIZE_PX])
        self.stats.windows += len(units)
        self.stats.tiles_generated += len(made)
        self.stats.batches += 1
        return made
