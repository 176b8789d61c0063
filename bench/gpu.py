"""GPU throughput: tiles/s of the default model against batch size in bf16, and the share of the GPU's peak.

FLOPs per tile come from torch's FlopCounterMode over one window (a window makes one metatile block of tiles),
counted on the CPU, so they print on any machine. With a CUDA GPU, every batch size B runs TerraPipeline(micro_batch=B)
.sample() on synthetic windows for a fixed time: `sample` is end to end (noise field on the CPU, model, projection);
`model` is denoise() alone on precomputed latents, the part the peak share is about. Without a GPU it exits 0 after the
FLOP count. Usage: .venv/bin/python bench/gpu.py [--seconds 6] [--batches 1,2,4,8,16,32] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from terradream.model.cascade import block_row_log2_mpp
from terradream.model.pipeline import TerraPipeline, WindowSpec

# dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, matched in this order against the device name
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)
SYNTHETIC_ZOOM = 12
SYNTHETIC_SEED = 1234


def peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by name, or None when it is not in the table."""
    return next((peak for key, peak in PEAK_BF16_FLOPS if key.lower() in device_name.lower()), None)


def synthetic_specs(pipe: TerraPipeline, count: int, rng: np.random.Generator) -> list[WindowSpec]:
    """count windows on a row of z12 blocks with random parent imagery: the shapes and work of real windows."""
    w, patch = pipe.window_px, int(pipe.denoiser.config.patch_size)
    side = w // 2 + 2
    row0 = 1441 * 256 - pipe.margin_px
    specs = []
    for i in range(count):
        col0 = 2141 * 256 + i * pipe.core_px - pipe.margin_px
        parent = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        specs.append(WindowSpec(SYNTHETIC_SEED, SYNTHETIC_ZOOM, row0, col0, parent,
                                block_row_log2_mpp(SYNTHETIC_ZOOM, row0, w, patch)))
    return specs


def flops_per_tile(model_dir: str | None) -> int:
    """Floating-point operations of one window (all sampling steps) over the tiles it makes, counted on the CPU."""
    pipe = TerraPipeline.from_pretrained(model_dir, device="cpu", micro_batch=1)
    spec = synthetic_specs(pipe, 1, np.random.default_rng(0))
    with FlopCounterMode(display=False) as counter:
        pipe.sample(spec)
    return int(counter.get_total_flops()) // pipe.metatile**2


def timed_rate(call: Callable[[], object], items_per_call: int, seconds: float) -> float:
    """Items per second of call() repeated for at least `seconds` after one untimed warm-up call."""
    call()
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * items_per_call / elapsed


def measure_batch(model_dir: str | None, device: str, batch: int, seconds: float) -> tuple[float, float]:
    """(sample() tiles/s, denoise() tiles/s) at micro-batch `batch`."""
    pipe = TerraPipeline.from_pretrained(model_dir, device=device, micro_batch=batch)
    specs = synthetic_specs(pipe, batch, np.random.default_rng(batch))
    latents = np.stack([pipe.noise_for(s) for s in specs])
    parents = np.stack([s.parent_px for s in specs])
    mpp = np.stack([s.log2_mpp for s in specs])
    tiles = batch * pipe.metatile**2
    sample_rate = timed_rate(lambda: pipe.sample(specs), tiles, seconds)
    model_rate = timed_rate(lambda: pipe.denoise(latents, parents, mpp), tiles, seconds)
    return sample_rate, model_rate


def main(argv: Sequence[str] | None = None) -> None:
    """Print FLOPs per tile; with a GPU, tiles/s and share of peak per batch size (JSON to --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cuda", help="cuda (cpu only checks the harness)")
    parser.add_argument("--batches", default="1,2,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per batch size and mode")
    parser.add_argument("--budget-s", type=float, default=270.0, help="stop starting new batch sizes after this")
    parser.add_argument("--json", type=Path, default=Path("bench/out/gpu.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    flops = flops_per_tile(args.model)
    print(f"FLOPs per tile (one window, all steps, FlopCounterMode, over the tiles it makes): {flops / 1e9:.1f} GFLOP")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("GPU: skipped (no CUDA GPU on this machine)")
        return
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    peak = peak_flops(name) if args.device == "cuda" else None
    dtype = "bf16" if args.device == "cuda" else "fp32"
    print(f"device {name}, {dtype}, peak "
          f"{f'{peak / 1e12:.0f} TFLOP/s (dense bf16)' if peak else 'unknown peak'}, torch {torch.__version__}")
    print("| batch | sample() tiles/s | model tiles/s | model TFLOP/s | share of peak |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        if time.perf_counter() - started > args.budget_s:
            print(f"| {batch} | not run: past the {args.budget_s:.0f} s budget | | | |")
            continue
        sample_rate, model_rate = measure_batch(args.model, args.device, batch, args.seconds)
        achieved = model_rate * flops
        share = f"{100 * achieved / peak:.2f} %" if peak else "unknown peak"
        print(f"| {batch} | {sample_rate:.1f} | {model_rate:.1f} | {achieved / 1e12:.2f} | {share} |", flush=True)
        rows.append({"batch": batch, "sample_tiles_per_s": sample_rate, "model_tiles_per_s": model_rate,
                     "model_tflops": achieved / 1e12, "peak_share": achieved / peak if peak else None})
        if args.device == "cuda":
            torch.cuda.empty_cache()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"device": name, "dtype": dtype, "flops_per_tile": flops, "peak_flops": peak,
                                     "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
