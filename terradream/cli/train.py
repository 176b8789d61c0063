"""`terradream train`: train the cascade denoiser on folders of real imagery (see terradream.training.train)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import click

from terradream.training.train import TrainConfig, train

_DEFAULTS = TrainConfig()


@click.command("train")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file of training settings (the fields of TrainConfig); options given here override it.")
@click.option("--data", "data", multiple=True, metavar="DIR[:MPP]",
              help="Imagery folder: DIR:MPP for images at MPP m/px, or a folder holding any of the known sources "
                   "(aid/, landsat/, neon/, basemaps/). Repeatable.")
@click.option("--out", required=True, help="Run directory: recipe, metrics, checkpoint.pt and the exported pipeline/.")
@click.option("--steps", type=int, default=None, help=f"Optimiser steps [default: {_DEFAULTS.steps}].")
@click.option("--batch", type=int, default=None, help=f"Crops per step [default: {_DEFAULTS.batch}].")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt if present.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="[default: auto]")
@click.option("--width", type=int, default=None, help=f"Channels of the denoiser [default: {_DEFAULTS.width}].")
@click.option("--init-from", default=None, help="Start from the matching weights of a pipeline dir ('default').")
@click.option("--max-minutes", type=float, default=None, help="Stop, checkpoint and export after this long.")
@click.option("--seed", type=int, default=None, help=f"[default: {_DEFAULTS.seed}]")
def train_command(recipe: str | None, data: tuple[str, ...], out: str, resume: bool, **given: object) -> None:
    """Train a denoiser (EMA, validation, resumable checkpoints) and export it for `terradream serve --model`."""
    known = {f.name for f in fields(TrainConfig)}
    settings = json.loads(Path(recipe).read_text()) if recipe else {}
    unknown = set(settings) - known
    if unknown:
        raise click.BadParameter(f"unknown settings {sorted(unknown)}", param_hint="--recipe")
    settings.update({k: v for k, v in given.items() if v is not None})
    if data:
        settings["data"] = list(data)
    if not settings.get("data"):
        raise click.UsageError("give --data (or data in the recipe)")
    settings["out"] = out
    cfg = TrainConfig(**settings)
    exported = train(cfg, resume=resume)
    click.echo(f"exported pipeline: {exported}  (serve it with: terradream serve --model {exported})")
