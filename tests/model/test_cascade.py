"""The cascade's contract: determinism, exact seams, cross-zoom consistency, linear cold cost, clear errors."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from terradream.core.errors import TileOutOfRange, UnknownWorld
from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry


def fresh(pipeline: TerraPipeline, batch_size: int | None = None) -> Cascade:
    return Cascade(pipeline, WorldRegistry(), MemoryTileStore(), batch_size=batch_size)


def digest(tile: np.ndarray) -> str:
    return hashlib.sha256(tile.tobytes()).hexdigest()


def test_tiles_are_256_rgb_and_deterministic_across_order_and_cache_state(pipeline: TerraPipeline) -> None:
    keys = [TileKey("earth", 7, 66, 44), TileKey("earth", 7, 67, 44), TileKey("earth", 8, 133, 88)]
    a = fresh(pipeline).render(keys)
    b_cascade = fresh(pipeline)
    b = {k: b_cascade.render([k])[k] for k in reversed(keys)}  # other order, other batches, warm parents
    c_cascade = fresh(pipeline, batch_size=3)
    c = c_cascade.render(list(reversed(keys)))
    for k in keys:
        assert a[k].shape == (256, 256, 3) and a[k].dtype == np.uint8
        assert digest(a[k]) == digest(b[k]) == digest(c[k])


def test_same_bytes_in_another_process(pipeline: TerraPipeline, tiny_model_dir: Path) -> None:
    key = TileKey("earth", 6, 33, 22)
    here = digest(fresh(pipeline).render([key])[key])
    code = (
        "import hashlib,sys;from terradream.model.cascade import Cascade,MemoryTileStore;"
        "from terradream.model.pipeline import TerraPipeline;from terradream.model.worlds import WorldRegistry;"
        "from terradream.core.keys import TileKey;"
        f"p=TerraPipeline.from_pretrained({str(tiny_model_dir)!r},device='cpu');k=TileKey('earth',6,33,22);"
        "print(hashlib.sha256(Cascade(p,WorldRegistry(),MemoryTileStore()).render([k])[k].tobytes()).hexdigest())"
    )
    # another process with another thread configuration, and idle OpenMP workers spinning instead of sleeping
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=env).stdout.strip()
    assert there == here


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_terradream_lets_idle_openmp_workers_sleep(preset: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = "import terradream, os, torch; torch.ones(1); print(os.environ['OMP_WAIT_POLICY'])"
    seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert seen.stdout.strip() == expected


def test_batch_slot_does_not_change_bytes(tiny_model_dir: Path) -> None:
    batched = TerraPipeline.from_pretrained(tiny_model_dir, device="cpu", micro_batch=4)
    cascade = fresh(batched, batch_size=4)
    units = list(dict.fromkeys(cascade.unit_of(TileKey("earth", 6, 33 + 2 * i, 23)) for i in range(5)))
    assert len(units) == 5  # five blocks: two model calls, one padded
    tiles = cascade.render(units)
    specs = [cascade.window_spec(u, dict(cascade.store.tiles)) for u in units]
    rotated = batched.sample(specs[1:] + specs[:1])  # other slots, other batch-mates, other padding
    for i, u in enumerate(units[1:] + units[:1]):
        r, c = batched.grid.offset_in_block_px(u, u)
        assert np.array_equal(rotated[i][r : r + 256, c : c + 256], tiles[u])


def test_a_block_is_made_whole_whichever_tile_asks(pipeline: TerraPipeline) -> None:
    """Any tile of a metatile block makes the whole block, with the same bytes whichever tile asked first."""
    key = TileKey("earth", 7, 71, 45)
    first = fresh(pipeline)
    a = first.render([key])[key]
    siblings = first.unit_tiles(first.unit_of(key))
    assert len(siblings) == 4 and key in siblings and set(siblings) <= set(first.store.tiles)
    for sibling in siblings:
        other = fresh(pipeline)
        other.render([sibling])
        assert digest(other.store.tiles[key]) == digest(a)
        assert other.stats.windows == first.stats.windows


def test_overlapping_windows_agree_exactly(pipeline: TerraPipeline) -> None:
    """A window cut half a tile further east computes the same pixels: seams are exact by construction."""
    cascade = fresh(pipeline)
    grid = pipeline.grid
    a = cascade.unit_of(TileKey("earth", 7, 71, 45))
    b = cascade.unit_of(TileKey("earth", 7, a.x + 2, a.y))  # the block east of a
    cascade.render([a, b])
    tiles = cascade.store.tiles
    rows = [[tiles[k] for k in cascade.unit_tiles(u)] for u in (a, b)]
    mosaic = np.concatenate([np.concatenate([rows[0][2 * j], rows[0][2 * j + 1], rows[1][2 * j], rows[1][2 * j + 1]],
                                            axis=1) for j in range(2)], axis=0)
    row0, col0 = grid.window_origin_px(a)
    spec = cascade.window_spec_at("earth", 7, row0, col0 + 128, dict(tiles))
    shifted = pipeline.sample([spec])[0]
    expected = mosaic[:, 128 : 128 + grid.core_px]
    assert np.abs(shifted.astype(int) - expected.astype(int)).max() <= 1
    assert (shifted == expected).mean() > 0.999


def test_cold_cost_is_linear_in_zoom(pipeline: TerraPipeline) -> None:
    def cold_key(z: int) -> TileKey:
        return TileKey("earth", z, (33 << (z - 6)) + 5, (22 << (z - 6)) + 3)

    cascade = fresh(pipeline)
    cascade.render([cold_key(8)])
    planner = fresh(pipeline)
    windows = {}
    for z in (8, 12, 16, 20):
        plan = planner.plan([cold_key(z)], lambda keys: [])
        windows[z] = sum(1 for k in plan if not planner.is_root(k))
    assert cascade.stats.windows == windows[8]  # the counter counts what the plan asks for
    root_zoom = planner.worlds.get("earth").root_zoom
    assert all(windows[z] <= 4 * (z - root_zoom) for z in windows)  # at most 2x2 blocks per level
    steps = [windows[b] - windows[a] for a, b in [(8, 12), (12, 16), (16, 20)]]
    assert steps == [16, 16, 16]  # each 4 more levels cost 4 x 4 windows: linear, not exponential


def test_out_of_range_and_unknown_worlds(pipeline: TerraPipeline) -> None:
    cascade = fresh(pipeline)
    for z, x, y in [(23, 0, 0), (3, 8, 0), (3, 0, 8), (-1, 0, 0), (2, -1, 0)]:
        with pytest.raises(TileOutOfRange):
            cascade.tile_key("earth", z, x, y, maxzoom=22)
    for name in ["Earth", "a" * 33, "../etc", "", "mars_1"]:
        with pytest.raises(UnknownWorld):
            cascade.tile_key(name, 1, 0, 0, maxzoom=22)
    closed = Cascade(pipeline, WorldRegistry(allow_arbitrary=False), MemoryTileStore())
    with pytest.raises(UnknownWorld):
        closed.tile_key("mars", 1, 0, 0, maxzoom=22)
    assert closed.tile_key("earth", 1, 0, 0, maxzoom=22) == TileKey("earth", 1, 0, 0)
