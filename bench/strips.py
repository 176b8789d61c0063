"""Cascade strips for the model card: one tile per zoom from z6 to z19 at a coast, farmland and mountains.

Each row is the tile under one place at every zoom, rendered cold from the world's root (the path a user zooming in
sees). Writes a PNG whose rows are places and whose columns are zooms (labelled in the model card).
Usage: .venv/bin/python bench/strips.py --out docs/images/cascade-strips.png [--model DIR] [--zooms 6,8,...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry
from terradream.training.cascade_eval import PLACES, block_keys

ZOOMS = (6, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
# the coast row follows Caparica's shore, so beach, surf and town stay in view at every zoom (the evaluation's coast
# place lies out on the Tagus, all water from z13 on)
STRIP_PLACES = {"coast": (-9.2417, 38.6405), "farmland": PLACES["farmland"], "mountains": PLACES["mountains"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--zooms", default=",".join(str(z) for z in ZOOMS))
    parser.add_argument("--scale", type=float, default=0.5, help="tile size in the sheet, relative to 256 px")
    args = parser.parse_args()
    zooms = [int(z) for z in args.zooms.split(",")]
    pipe = TerraPipeline.from_pretrained(args.model, device="cpu")
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    size = round(256 * args.scale)
    rows = []
    started = time.time()
    for name, (lon, lat) in STRIP_PLACES.items():
        tiles = []
        for z in zooms:
            key = block_keys("earth", z, lon, lat, 1)[0]
            tile = cascade.render([key])[key]
            tiles.append(np.asarray(Image.fromarray(tile).resize((size, size), Image.Resampling.LANCZOS)))
        rows.append(np.concatenate(tiles, axis=1))
        print(f"{name}: {len(zooms)} zooms, {cascade.stats.windows} windows, {time.time() - started:.0f} s", flush=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"model {pipe.version}: {args.out}")


if __name__ == "__main__":
    main()
