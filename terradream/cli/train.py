"""`terradream train`: train the cascade denoiser on folders of real imagery (see terradream.training.train)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import click

from terradream.training.train import TrainConfig, train

_DEFAULTS = TrainConfig()


@click.command("train")
@click.option("--data", "data", multiple=True, required=True, metavar="DIR[:MPP]",
              help="Imagery folder: DIR:MPP for images at MPP m/px, or a folder holding any of the known sources "
                   "(aid/, landsat/, neon/, basemaps/). Repeatable.")
@click.option("--out", required=True, help="Run directory: recipe, metrics, checkpoint.pt and the exported pipeline/.")
@click.option("--steps", type=int, default=_DEFAULTS.steps, show_default=True)
@click.option("--batch", type=int, default=_DEFAULTS.batch, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt if present.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--width", type=int, default=_DEFAULTS.width, show_default=True, help="Channels of the denoiser.")
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True)
def train_command(data: tuple[str, ...], out: str, steps: int, batch: int, resume: bool, device: str, width: int,
                  seed: int) -> None:
    """Train a denoiser (EMA, validation, resumable checkpoints) and export it for `terradream serve --model`."""
    known = {f.name for f in fields(TrainConfig)}
    options: dict[str, Any] = {"data": list(data), "out": out, "steps": steps, "batch": batch, "device": device,
                               "width": width, "seed": seed}
    cfg = TrainConfig(**{k: v for k, v in options.items() if k in known})
    exported = train(cfg, resume=resume)
    click.echo(f"exported pipeline: {exported}  (serve it with: terradream serve --model {exported})")
