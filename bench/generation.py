"""Generation cost on this machine: seconds per new tile with parents cached, cold viewport time,
and model windows per tile against zoom (it must grow linearly).

A window makes a metatile block (2x2 tiles by default), so a new tile costs its block's window shared by the block's
tiles; a lone request for one tile of a new block waits for the whole window, which is printed too.

Usage: .venv/bin/python bench/generation.py [--model DIR] [--blocks 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from terradream.cache.codec import encode_pngs
from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry

# z14 tiles (x, y) where blocks of new tiles start, going east: the Alps, where the relief is most of the painting
# (the headline figure), and across Paris from west to east, where the town is most of it.
NEW_TILE_PLACES: dict[str, tuple[int, int]] = {"": (8561, 5761), " in a city (Paris)": (8293, 5635)}


def new_tiles(pipe: TerraPipeline, blocks: int, place: str = "") -> None:
    """Time blocks of new z14 tiles with their z13 parents cached: render and PNG-encode every tile of a block."""
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    x0, y = NEW_TILE_PLACES[place]
    units = list(dict.fromkeys(cascade.unit_of(TileKey("earth", 14, x0 + 2 * pipe.metatile * i, y))
                               for i in range(blocks)))
    cascade.render(sorted({p for u in units for p in cascade.parents_of(u)}))
    block_s, per_tile_s = [], []
    for unit in units:
        tiles = cascade.unit_tiles(unit)
        start = time.perf_counter()
        arrays = cascade.render(tiles)
        encode_pngs([arrays[k] for k in tiles])  # as the cache store encodes a new block
        block_s.append(time.perf_counter() - start)
        per_tile_s.append(block_s[-1] / len(tiles))
    print(f"new tile{place} with parents cached (render + PNG): median {statistics.median(per_tile_s):.3f} s per tile, "
          f"p90 {sorted(per_tile_s)[int(0.9 * len(per_tile_s))]:.3f} s "
          f"over {len(units)} blocks of {pipe.metatile}x{pipe.metatile} tiles")
    print(f"  a lone request for one tile of a new block: median {statistics.median(block_s):.3f} s "
          "(the block's window)")


def cold(pipe: TerraPipeline) -> None:
    """A cold viewport, then planned window counts for one cold tile against zoom."""
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    viewport = [TileKey("earth", 12, 2140 + i, 1440 + j) for j in range(4) for i in range(5)]
    pipe.warm()  # earth's real data, as a server loads it in the background at start
    start = time.perf_counter()
    cascade.render(viewport)
    print(f"cold viewport (20 tiles at z12, nothing cached below the root, earth's data loaded): "
          f"{time.perf_counter() - start:.1f} s, "
          f"{cascade.stats.windows} windows")
    print("windows for one cold tile against zoom (planned by the cascade, nothing cached below the root):")
    planner = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    root_zoom = planner.worlds.get("earth").root_zoom
    for z in (6, 8, 10, 12, 14, 16, 18, 20):
        counts = []
        for dx, dy in ((0, 0), (1, 1), (5, 3), (3, 2)):  # several alignments: the count depends on the tile's bits
            key = TileKey("earth", z, (33 << (z - 6)) + dx, (22 << (z - 6)) + dy)
            plan = planner.plan([key], lambda keys: [])
            counts.append(sum(1 for k in plan if not planner.is_root(k)))
        print(f"  z{z}: {min(counts)}-{max(counts)} windows, at most {max(counts) / (z - root_zoom):.1f} per "
              f"generated level")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    pipe = TerraPipeline.from_pretrained(args.model, device="cpu")
    import torch  # after terradream, which sets how idle OpenMP workers wait before torch loads OpenMP

    print(f"model {pipe.version}, {sum(p.numel() for p in pipe.denoiser.parameters()):,} parameters, "
          f"window {pipe.window_px} px ({pipe.metatile}x{pipe.metatile} tiles), {pipe.num_inference_steps} steps, "
          f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY') or 'unset'}")
    for place in NEW_TILE_PLACES:
        new_tiles(pipe, args.blocks, place)
    if not args.skip_cold:
        cold(pipe)


if __name__ == "__main__":
    main()
