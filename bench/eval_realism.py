"""Realism of the default model per zoom band: SWD and spectrum slope against the bicubic baseline (issue 5).

Needs held-out real imagery: --data points at a folder laid out like ../shared/data (see terradream.training.dataset).
Prints a Markdown table and writes sample grids (real | bicubic | model) to bench/out/.
Usage: .venv/bin/python bench/eval_realism.py --data ../shared/data [--model DIR] [--count 64]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from terradream.model.pipeline import TerraPipeline
from terradream.training.dataset import KNOWN_LAYOUT, SourceSpec, TripleDataset, build_datasets
from terradream.training.evaluate import BandResult, evaluate_band, format_table, zoom_for_mpp

# band label -> (source folder, target m/px); the nearest held-out pyramid level of that source is used.
BANDS = {"z8": ("landsat", 480.0), "z12": ("landsat", 30.0), "z16": ("aid", 2.4), "z19": ("neon", 0.3)}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    pipe = TerraPipeline.from_pretrained(args.model, device="cpu")
    _, val = build_datasets([args.data], crop_px=64, progress=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[BandResult] = []
    for band, (source, target) in BANDS.items():
        spec: SourceSpec = KNOWN_LAYOUT[source]
        data = band_dataset(val, target, spec.m_per_px)
        result = evaluate_band(pipe, data, band, args.count)
        if result is None:
            print(f"{band}: no held-out imagery near {target} m/px")
            continue
        result.band = f"{band} ({source}, ~z{zoom_for_mpp(result.m_per_px):.1f} at the equator)"
        rows.append(result)
        save_grid(out / f"realism_{band}.png", list(result.samples))
    print(format_table(rows))


if __name__ == "__main__":
    main()
