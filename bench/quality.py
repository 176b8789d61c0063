"""Generator quality figures (issues 2 and 8): seam ratio at z6/z12/z17, cross-zoom PSNR, colour drift, determinism.

Usage: .venv/bin/python bench/quality.py [--model DIR] [--world earth]
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.keys import TileKey
from terradream.model.pipeline import TerraPipeline
from terradream.model.quality import cross_zoom_psnr_db, descendant_colour_error, seam_ratio
from terradream.model.worlds import WorldRegistry

# 4x4 blocks over land in Europe at three depths (x, y at each zoom)
SEAM_BLOCKS = {6: (33, 22), 12: (2140, 1440), 17: (68500, 46100)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--world", default="earth")
    args = parser.parse_args()
    pipe = TerraPipeline.from_pretrained(args.model, device="cpu")
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())

    def tile(k: TileKey) -> np.ndarray:
        return cascade.render([k])[k]

    print(f"model {pipe.version}: margin {pipe.margin_px} px, window {pipe.window_px} px, "
          f"{pipe.num_inference_steps} steps")
    for z, (x, y) in SEAM_BLOCKS.items():
        before = cascade.stats.windows
        start = time.perf_counter()
        keys = [TileKey(args.world, z, x + i, y + j) for j in range(4) for i in range(4)]
        tiles = cascade.render(keys)
        ratio = seam_ratio(tiles.__getitem__, args.world, z, x, y)
        print(f"seam ratio z{z} (4x4 tiles): {ratio:.3f}   "
              f"[{cascade.stats.windows - before} windows, {time.perf_counter() - start:.1f} s cold]")
    for z, (x, y) in SEAM_BLOCKS.items():
        parent = TileKey(args.world, z, x // 2, y // 2)
        print(f"cross-zoom PSNR z{z}->z{z + 1}: {cross_zoom_psnr_db(tile, parent):.1f} dB")
    ancestor = TileKey(args.world, 16, SEAM_BLOCKS[17][0] // 2, SEAM_BLOCKS[17][1] // 2)
    print(f"colour drift z16 -> 64 tiles at z19: {100 * descendant_colour_error(tile, ancestor, 3):.2f} %")
    key = TileKey(args.world, 12, 2141, 1441)
    again = Cascade(pipe, WorldRegistry(), MemoryTileStore()).render([key])[key]
    same = hashlib.sha256(again.tobytes()).digest() == hashlib.sha256(tile(key).tobytes()).digest()
    print(f"determinism (fresh cache, same tile): {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
