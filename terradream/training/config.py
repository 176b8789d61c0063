"""The recipe of a training run, apart from the trainer so the CLI can show its defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """The whole recipe of a training run; saved next to its outputs."""

    data: list[str] = field(default_factory=list)
    out: str = "runs/terradream"
    steps: int = 20000
    batch: int = 8
    crop_px: int = 128  # wide enough for the context path to see long structures (its reach is ~100 px)
    lr: float = 2e-3
    warmup_steps: int = 200
    ema_decay: float = 0.999
    width: int = 64
    num_blocks: int = 4
    expansion: int = 2
    embed_dim: int = 128
    context_width: int = 96
    context_blocks: int = 3
    inference_steps: int = 3
    inference_t_fraction: float = 0.75  # share of samples drawn at the sampler's own timesteps
    detail_gain: float = 1.5  # sampler settings written into the exported pipeline (see TerraPipeline)
    chroma_gain: float = 0.5
    structure: bool = True
    distill_from: str = ""  # a pipeline directory ("default") to distil into a student of half its steps
    init_from: str = ""  # a pipeline directory ("default": the shipped one) whose matching weights start the run
    max_minutes: float = 0.0  # stop (checkpoint and export) after this much training time; 0: run all steps
    threads: int = 2  # CPU intra-op threads
    seed: int = 0
    val_every: int = 500
    ckpt_every: int = 1000
    device: str = "auto"
