"""Claimed generation: processes sharing a store never make the same unit twice (parents included), and a unit whose
maker fails is made here after the wait."""

from __future__ import annotations

import numpy as np

from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry

TILE = TileKey("earth", 8, 130, 88)


class OtherProcess:
    """Claims stub: units in `busy` are held by another cascade over the same store, which makes them while we wait
    (or, with `fails`, gives up without storing anything)."""

    def __init__(self, other: Cascade, busy: set[TileKey], fails: bool = False) -> None:
        self.other, self.busy, self.fails = other, busy, fails
        self.claimed: list[TileKey] = []
        self.released: list[TileKey] = []

    def claim(self, unit: TileKey) -> object | None:
        if unit in self.busy:
            return None
        self.claimed.append(unit)
        return unit

    def release(self, unit: TileKey, token: object) -> None:
        assert token == unit
        self.released.append(unit)

    def wait(self, unit: TileKey) -> None:
        if not self.fails:
            self.other.render(self.other.unit_tiles(unit))


def test_units_held_elsewhere_are_read_back_not_made(pipeline: TerraPipeline) -> None:
    reference = Cascade(pipeline, WorldRegistry(), MemoryTileStore()).render([TILE])[TILE]
    store = MemoryTileStore()
    here, there = Cascade(pipeline, WorldRegistry(), store), Cascade(pipeline, WorldRegistry(), store)
    plan = here.plan([TILE], lambda keys: [])
    parents = sorted((u for u in plan if u.z == TILE.z - 1 and not here.is_root(u)), key=lambda u: (u.y, u.x))
    busy = set(parents[:1])
    here.claims = claims = OtherProcess(there, busy)
    tile = here.render([TILE])[TILE]
    np.testing.assert_array_equal(tile, reference)
    made = [u for u in plan if not here.is_root(u)]
    assert here.stats.windows == len(made) - len(busy)  # the busy parent was made once, by the other cascade
    assert sorted(claims.claimed, key=str) == sorted(claims.released, key=str)
    assert not busy & set(claims.claimed)


def test_a_unit_whose_maker_failed_is_made_here(pipeline: TerraPipeline) -> None:
    store = MemoryTileStore()
    here = Cascade(pipeline, WorldRegistry(), store)
    unit = here.unit_of(TILE)
    here.claims = OtherProcess(Cascade(pipeline, WorldRegistry(), store), {unit}, fails=True)
    assert TILE in here.render([TILE])
    assert all(k in store.tiles for k in here.unit_tiles(unit))


def test_a_unit_stored_meanwhile_is_not_made_again(pipeline: TerraPipeline) -> None:
    """Claimed after another process finished it (its plan was older): read back, no window."""
    store = MemoryTileStore()
    here, there = Cascade(pipeline, WorldRegistry(), store), Cascade(pipeline, WorldRegistry(), store)
    have: dict[TileKey, np.ndarray] = {}
    todo = here._plan([TILE], have)  # planned while nothing was stored
    there.render([TILE])
    windows = there.stats.windows
    here.claims = OtherProcess(there, set())
    here._generate(todo, have)
    assert here.stats.windows == 0 and there.stats.windows == windows
    assert TILE in have
