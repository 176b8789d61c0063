"""`train`: one training run from a recipe: the data, the trainer it asks for (plain, or distillation when it
names a teacher), an optional resume, then the run."""

from __future__ import annotations

from pathlib import Path

from terradream.training.config import TrainConfig
from terradream.training.dataset import build_datasets
from terradream.training.distill import DistillTrainer
from terradream.training.train import Trainer


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Build the datasets, (optionally) resume, train; returns the exported pipeline directory."""
    train_data, val_data = build_datasets(cfg.data, cfg.crop_px, progress=progress)
    trainer = (DistillTrainer if cfg.distill_from else Trainer)(cfg, train_data, val_data)
    if resume:
        trainer.load_checkpoint()
    return trainer.run(progress=progress)
