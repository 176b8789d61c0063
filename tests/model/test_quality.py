"""Quality of the shipped default model through the cascade: seams, cross-zoom consistency, colour over many levels."""

import numpy as np
import pytest

from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry
from terradream.training.quality import cross_zoom_psnr_db, descendant_colour_error, seam_ratio


@pytest.fixture(scope="module")
def default_cascade() -> Cascade:
    """The shipped model on CPU with one cache for the module (tiles are deterministic, so sharing is safe)."""
    return Cascade(TerraPipeline.from_pretrained(device="cpu"), WorldRegistry(), MemoryTileStore())


# 4x4 blocks at even x, y (so the four children of a parent tile lie inside), over land in Europe and on a planet
SEAM_RATIO_MAX = 1.10  # border differences at most 10 % above interior ones across 2x2 block boundaries
BLOCKS = [("earth", 6, 32, 22), ("earth", 12, 2140, 1440), ("earth", 17, 68500, 46100), ("mars", 12, 100, 1000)]


@pytest.mark.unit
def test_seam_ratio_sees_a_seam_not_the_projection_blocks() -> None:
    """Smooth ground in 2x2 steps (what the exact projection leaves on calm water) reads as seamless; the same
    ground with two columns of tiles brighter by 6 levels fails the threshold the cascade is held to."""
    steps = np.random.default_rng(0).normal(128, 2, (512, 512, 3)).repeat(2, 0).repeat(2, 1)
    world = {TileKey("w", 10, x, y): steps[256 * y : 256 * (y + 1), 256 * x : 256 * (x + 1)]
             for y in range(4) for x in range(4)}
    assert 0.9 < seam_ratio(world.__getitem__, "w", 10, 0, 0) < 1.1
    seamed = {k: v + 6.0 * (k.x >= 2) for k, v in world.items()}
    assert seam_ratio(seamed.__getitem__, "w", 10, 0, 0) > SEAM_RATIO_MAX


@pytest.mark.parametrize(("world", "z", "x", "y"), BLOCKS)
def test_seam_ratio_small(default_cascade: Cascade, world: str, z: int, x: int, y: int) -> None:
    keys = [TileKey(world, z, x + i, y + j) for j in range(4) for i in range(4)]
    tiles = default_cascade.render(keys)
    assert seam_ratio(tiles.__getitem__, world, z, x, y) <= SEAM_RATIO_MAX


@pytest.mark.parametrize(("world", "z", "x", "y"), BLOCKS)
def test_children_keep_the_parent(default_cascade: Cascade, world: str, z: int, x: int, y: int) -> None:
    parent = TileKey(world, z - 1, x // 2, y // 2)
    tiles = default_cascade.render([parent, *parent.children()])
    assert cross_zoom_psnr_db(tiles.__getitem__, parent) >= 35.0


def test_colour_of_64_z19_tiles_matches_their_z16_ancestor(default_cascade: Cascade) -> None:
    ancestor = TileKey("earth", 16, 68500 // 2, 46100 // 2)

    def tile(k: TileKey) -> np.ndarray:
        return default_cascade.render([k])[k]

    assert descendant_colour_error(tile, ancestor, 3) < 0.02
