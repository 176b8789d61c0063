"""Quality of the shipped default model through the cascade: seams, cross-zoom consistency, colour over many levels."""

import numpy as np
import pytest

from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.keys import TileKey
from terradream.model.pipeline import TerraPipeline
from terradream.model.quality import cross_zoom_psnr_db, descendant_colour_error, seam_ratio
from terradream.model.worlds import WorldRegistry


@pytest.fixture(scope="module")
def default_cascade() -> Cascade:
    """The shipped model on CPU with one cache for the module (tiles are deterministic, so sharing is safe)."""
    return Cascade(TerraPipeline.from_pretrained(device="cpu"), WorldRegistry(), MemoryTileStore())


@pytest.mark.parametrize(("world", "z", "x", "y"), [("earth", 6, 30, 20), ("earth", 12, 2100, 1400),
                                                    ("earth", 17, 67200, 44800), ("mars", 12, 100, 1000)])
def test_seam_ratio_small(default_cascade: Cascade, world: str, z: int, x: int, y: int) -> None:
    cascade = default_cascade
    keys = [TileKey(world, z, x + i, y + j) for j in range(4) for i in range(4)]
    tiles = cascade.render(keys)
    assert seam_ratio(tiles.__getitem__, world, z, x, y) <= 1.10


def test_children_keep_the_parent(default_cascade: Cascade) -> None:
    cascade = default_cascade
    for parent in [TileKey("earth", 6, 33, 22), TileKey("earth", 11, 1050, 700), TileKey("venus", 9, 300, 200)]:
        tiles = cascade.render([parent, *parent.children()])
        assert cross_zoom_psnr_db(tiles.__getitem__, parent) >= 35.0


def test_colour_holds_down_the_cascade(default_cascade: Cascade) -> None:
    cascade = default_cascade
    ancestor = TileKey("earth", 5, 16, 11)
    def tile(k: TileKey) -> np.ndarray:
        return cascade.render([k])[k]
    assert descendant_colour_error(tile, ancestor, 2) < 0.01
    deep = TileKey("earth", 20, 16 << 15, 11 << 15)  # 15 levels below, top-left corner
    region = tile(ancestor)[:1, :1].astype(float).mean(axis=(0, 1))
    assert np.abs(tile(deep).reshape(-1, 3).mean(axis=0) - region).sum() / region.sum() < 0.05


