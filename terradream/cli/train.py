"""`terradream train`: train the cascade denoiser on folders of real imagery (see terradream.training.train).

Torch loads when the command runs; the help reads its defaults from TrainConfig, which does not import it.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import click

from terradream.training.config import TrainConfig

_DEFAULTS = TrainConfig()


def recipe_help(name: str, text: str) -> str:
    """`text` and the TrainConfig default of `name` (options default to None so a --recipe value is not overridden)."""
    return f"{text} [default: {getattr(_DEFAULTS, name)}]"


@click.command("train")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file of training settings (TrainConfig's fields); options given here override it.")
@click.option("--data", "data", multiple=True, metavar="DIR[:MPP]",
              help="Imagery: DIR:MPP for a folder of images at MPP metres per pixel, or a folder holding any of the "
                   "known sources (see docs/model-card.md). Repeatable.")
@click.option("--out", required=True, help="Run directory: recipe, metrics, checkpoint.pt and the exported pipeline/.")
@click.option("--steps", type=int, default=None, help=recipe_help("steps", "Optimiser steps."))
@click.option("--batch", type=int, default=None, help=recipe_help("batch", "Crops per step."))
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt if present.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help=recipe_help("device", "Where training runs."))
@click.option("--width", type=int, default=None, help=recipe_help("width", "Channels of the denoiser."))
@click.option("--init-from", default=None,
              help="Start from the matching weights of a pipeline directory ('default': the shipped one).")
@click.option("--max-minutes", type=float, default=None,
              help=recipe_help("max_minutes", "Stop, checkpoint and export after this long (0: run all steps)."))
@click.option("--seed", type=int, default=None, help=recipe_help("seed", "Random seed."))
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
    from terradream.training.runs import train  # torch loads only when training runs

    exported = train(cfg, resume=resume)
    click.echo(f"exported pipeline: {exported}  (serve it with: terradream serve --model {exported})")
