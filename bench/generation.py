"""Generation cost on this machine (issues 2, 5 and 8): seconds per new tile with parents cached, cold viewport time,
and model windows per tile against zoom (it must grow linearly).

Usage: .venv/bin/python bench/generation.py [--model DIR] [--tiles 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from terradream.model.cascade import Cascade, MemoryTileStore, parent_keys_for, plan_missing
from terradream.model.keys import TileKey
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tiles", type=int, default=20)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    pipe = TerraPipeline.from_pretrained(args.model, device="cpu")
    print(f"model {pipe.version}, {sum(p.numel() for p in pipe.denoiser.parameters()):,} parameters, "
          f"window {pipe.window_px} px, {pipe.num_inference_steps} steps, torch threads {torch.get_num_threads()}")

    # warm parents: render the z13 parents of a row of z14 tiles, then time each new z14 tile alone
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    keys = [TileKey("earth", 14, 8560 + 2 * i, 5760) for i in range(args.tiles)]
    parents = sorted({p for k in keys for p in parent_keys_for(k, pipe.margin_px, pipe.window_px)})
    cascade.render(parents)
    times = []
    for k in keys:
        start = time.perf_counter()
        cascade.render([k])
        times.append(time.perf_counter() - start)
    print(f"new tile with parents cached: median {statistics.median(times):.3f} s, "
          f"p90 {sorted(times)[int(0.9 * len(times))]:.3f} s over {len(times)} tiles")

    if args.skip_cold:
        return
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    viewport = [TileKey("earth", 12, 2140 + i, 1440 + j) for j in range(4) for i in range(5)]
    start = time.perf_counter()
    cascade.render(viewport)
    print(f"cold viewport (20 tiles at z12, nothing cached below the root): {time.perf_counter() - start:.1f} s, "
          f"{cascade.stats.windows} windows")
    print("windows for one cold tile against zoom (planned by the cascade, nothing cached below the root):")
    planner = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    for z in (6, 8, 10, 12, 14, 16, 18, 20):
        key = TileKey("earth", z, (33 << (z - 6)) + 1, (22 << (z - 6)) + 1)
        plan = plan_missing([key], planner.parents_of, planner.is_root, lambda keys: [])
        windows = sum(1 for k in plan if not planner.is_root(k))
        print(f"  z{z}: {windows} windows, {windows / (z - 4):.1f} per generated level")

if __name__ == "__main__":
    main()
