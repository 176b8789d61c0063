"""The task graph an API server submits: the cascade's plan, stable keys, planned parents as dependencies."""

from __future__ import annotations

import numpy as np
import pytest

from terradream.cache import MemoryLRU
from terradream.cache.store import CacheTileStore
from terradream.cluster.client import plan_tile, tile_graph
from terradream.cluster.tasks import (
    dask_priority,
    is_bulk_priority,
    make_tile,
    task_name,
)
from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry

TILE = TileKey("earth", 6, 20, 24)


@pytest.fixture
def store(pipeline: TerraPipeline) -> CacheTileStore:
    """An empty tile store over an in-memory cache."""
    return CacheTileStore(MemoryLRU(64 * 2**20), pipeline.version)


def test_plan_is_what_the_single_process_cascade_makes(pipeline: TerraPipeline, store: CacheTileStore) -> None:
    cascade = Cascade(pipeline, WorldRegistry(), store)
    plan = plan_tile(cascade, store, TILE)
    reference = MemoryTileStore()
    local = Cascade(pipeline, WorldRegistry(), reference)
    local.render([TILE])
    assert {t for unit in plan for t in cascade.unit_tiles(unit)} == set(reference.tiles)  # generated and root tiles
    assert len([u for u in plan if not cascade.is_root(u)]) == local.stats.windows
    assert all(plan[u] == [] for u in plan if cascade.is_root(u))


def test_graph_keys_and_dependencies(pipeline: TerraPipeline, store: CacheTileStore) -> None:
    cascade = Cascade(pipeline, WorldRegistry(), store)
    version = pipeline.version
    plan = plan_tile(cascade, store, TILE)
    graph = tile_graph(plan, cascade, version, known=())
    assert set(graph) == {f"tile-{u.world}-{version}-{u.z}-{u.x}-{u.y}" for u in plan}
    for unit, parents in plan.items():
        spec = graph[task_name(unit, version)]
        assert spec.func is make_tile
        assert spec.dependencies == {task_name(cascade.unit_of(p), version) for p in parents}

    # a key the scheduler already knows is depended on, never specified again (its first shape stays)
    unit = cascade.unit_of(TILE)
    parent_unit = cascade.unit_of(cascade.parents_of(unit)[0])
    again = tile_graph(plan, cascade, version, known={task_name(parent_unit, version)})
    assert task_name(parent_unit, version) not in again
    assert task_name(parent_unit, version) in again[task_name(unit, version)].dependencies


def test_cached_parents_are_neither_planned_nor_dependencies(pipeline: TerraPipeline, store: CacheTileStore) -> None:
    cascade = Cascade(pipeline, WorldRegistry(), store)
    unit = cascade.unit_of(TILE)
    sibling = next(k for k in cascade.unit_tiles(unit) if k != TILE)  # any tile of a block plans its block
    parents = cascade.parents_of(unit)
    store.put_tiles({p: np.full((256, 256, 3), 90, dtype=np.uint8) for p in parents})
    plan = plan_tile(cascade, store, sibling)
    assert plan == {unit: parents}
    graph = tile_graph(plan, cascade, pipeline.version, known=())
    assert graph[task_name(unit, pipeline.version)].dependencies == set()
    store.put_tiles({TILE: np.zeros((256, 256, 3), dtype=np.uint8)})
    assert plan_tile(cascade, store, TILE) == {}


def test_priorities() -> None:
    assert dask_priority(bulk=False) > dask_priority(bulk=True)  # Dask runs higher priorities first
    assert not is_bulk_priority((-dask_priority(bulk=False), 1, 0))
    assert is_bulk_priority((-dask_priority(bulk=True), 1, 0))
