"""Tiny random-init models for fast tests and examples (no training, no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch

from terradream.model.denoiser import TerraDenoiser
from terradream.model.pipeline import TerraPipeline
from terradream.model.scheduler import default_scheduler


def make_tiny_model(path: Path, width: int = 8, num_blocks: int = 2, steps: int = 2, seed: int = 0,
                    head_scale: float = 0.05, context_width: int = 0, structure: bool = False) -> Path:
    """Save a small random-init pipeline under path and return path (weights seeded, so identical every time).

    context_width > 0 adds the context path (its zero-initialised output made random too, so it matters)."""
    torch.manual_seed(seed)  # weight init only; sampling never uses torch's RNG
    denoiser = TerraDenoiser(width=width, num_blocks=num_blocks, embed_dim=32, context_width=context_width)
    with torch.no_grad():  # a quiet head: random but small outputs, like a model early in training
        denoiser.head.weight.mul_(head_scale)
        denoiser.head.bias.zero_()
        if denoiser.context is not None:
            torch.nn.init.normal_(denoiser.context.out.weight, std=0.05)
    TerraPipeline(denoiser, default_scheduler(), num_inference_steps=steps, device="cpu",
                  structure=structure).save_pretrained(path)
    return Path(path)
