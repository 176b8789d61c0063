"""Realism of the default model along the cascade (the path a user sees), then the one-level SWD table.

Needs held-out real imagery: --data points at a folder of the known sources (see terradream.training.dataset).
Primary table: tiles rendered from the root down at three places (coast, farmland, mountains) per zoom band, against
held-out real crops at the nearest ground resolution: classifier two-sample accuracy on structure features (0.5 =
indistinguishable) with a real-vs-real control and the no-generation baseline (root imagery upsampled bicubically),
Frechet distance on geoembed's aerial ResNet-18 features, and SWD relative to that baseline. Secondary table: SWD
and spectrum slope of one cascade level from a real parent. Writes sample sheets to bench/out/.
Usage: .venv/bin/python bench/eval_realism.py --data ../shared/data [--model DIR] [--count 64] [--side 2]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry
from terradream.training.cascade_eval import BANDS, evaluate_cascade, format_reports, sample_sheet
from terradream.training.dataset import KNOWN_LAYOUT, SourceSpec, TripleDataset, build_datasets
from terradream.training.evaluate import BandResult, evaluate_band, format_table, zoom_for_mpp
from terradream.training.realism import AerialFeatures

# band label -> (source folder, target m/px); the nearest held-out pyramid level of that source is used.
ONE_LEVEL_BANDS = {"z8": ("landsat", 480.0), "z12": ("landsat", 30.0), "z16": ("aid", 2.4), "z19": ("neon", 0.3)}


def band_dataset(val: TripleDataset, target_mpp: float, source_mpp: float) -> TripleDataset:
    """The held-out levels of one source nearest to the target resolution (log distance)."""
    levels = [lv for lv in val.levels if _from_source(lv.m_per_px, source_mpp)]
    if not levels:
        return TripleDataset(val.crop_px)
    best = min(levels, key=lambda lv: abs(math.log2(lv.m_per_px / target_mpp))).m_per_px
    return TripleDataset(val.crop_px, [lv for lv in levels if lv.m_per_px == best])


def _from_source(mpp: float, source_mpp: float) -> bool:
    ratio = math.log2(mpp / source_mpp)
    return ratio >= -1e-6 and abs(ratio - round(ratio)) < 1e-6


def save_grid(path: Path, result_images: list[torch.Tensor]) -> None:
    """Save rows of (real | bicubic | model) images."""
    rows = [torch.cat(list(t[:8]), dim=2) for t in result_images]
    grid = torch.cat(rows, dim=1)
    arr = ((grid.permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    Image.fromarray(arr).resize((arr.shape[1] * 2, arr.shape[0] * 2), Image.Resampling.NEAREST).save(path)


def one_level_table(pipe: TerraPipeline, data: str, count: int, out: Path) -> str:
    """SWD and spectrum slope of one cascade level from real held-out parents, per band."""
    _, val = build_datasets([data], crop_px=64, progress=False)
    rows: list[BandResult] = []
    for band, (source, target) in ONE_LEVEL_BANDS.items():
        spec: SourceSpec = KNOWN_LAYOUT[source]
        result = evaluate_band(pipe, band_dataset(val, target, spec.m_per_px), band, count)
        if result is None:
            print(f"{band}: no held-out imagery near {target} m/px")
            continue
        result.band = f"{band} ({source}, ~z{zoom_for_mpp(result.m_per_px):.1f} at the equator)"
        rows.append(result)
        save_grid(out / f"realism_{band}.png", list(result.samples))
    return format_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--count", type=int, default=64, help="images per band of the one-level table")
    parser.add_argument("--side", type=int, default=2, help="tiles per side rendered per place and band")
    parser.add_argument("--bands", default=",".join(str(z) for z in BANDS))
    parser.add_argument("--eval-only", action="append", default=[], metavar="DIR:MPP",
                        help="real imagery never used in training, used whole (repeatable)")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = TerraPipeline.from_pretrained(args.model, device="cpu")
    started = time.time()
    cascade = Cascade(pipe, WorldRegistry(), MemoryTileStore())
    reports = evaluate_cascade(cascade, args.data, AerialFeatures(), side=args.side,
                               bands=tuple(int(b) for b in args.bands.split(",")), eval_only=tuple(args.eval_only),
                               progress=lambda line: print(line, flush=True))
    sample_sheet(reports, out / "realism_cascade.png")
    print(f"\n## Along the cascade (model {pipe.version}, {time.time() - started:.0f} s, "
          f"{cascade.stats.windows} windows)\n")
    print(format_reports(reports))
    print("\n## One level from a real parent (secondary)\n")
    print(one_level_table(pipe, args.data, args.count, out))


if __name__ == "__main__":
    main()
