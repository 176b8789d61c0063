"""Training the cascade denoiser: v-prediction on (parent, child, m/px) triples, EMA, validation, resumable checkpoints.

Seeded and reproducible on one device. The run directory holds the recipe (train_config.json), a metrics log
(metrics.jsonl), a resumable checkpoint (checkpoint.pt) and the exported pipeline (pipeline/, diffusers layout) built
from the EMA weights, which is what the server loads.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from terradream.model.denoiser import TerraDenoiser
from terradream.model.pipeline import (
    TerraPipeline,
    model_dir,
    resolve_device,
    upsample2_bilinear,
)
from terradream.model.scheduler import default_scheduler
from terradream.training.config import TrainConfig
from terradream.training.dataset import TripleDataset


def condition_from_parent(parent: torch.Tensor) -> torch.Tensor:
    """The upsampled-parent input channels, made exactly as the sampler makes them (edge-replicated apron)."""
    return upsample2_bilinear(F.pad(parent, (1, 1, 1, 1), mode="replicate"))


class Trainer:
    """Owns model, EMA, optimiser and data for one run directory."""

    def __init__(self, cfg: TrainConfig, train: TripleDataset, val: TripleDataset) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.train_data, self.val_data = train, val
        if self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        self.model = self.build_model(cfg).to(self.device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.01)
        self.scheduler = default_scheduler()
        self.alphas = self.scheduler.alphas_cumprod.to(self.device)
        self.scheduler.set_timesteps(cfg.inference_steps)
        self.sampler_t = self.scheduler.timesteps.clone().to(self.device)
        self.step = 0
        val_rng = np.random.default_rng(cfg.seed + 1)
        self.val_batches = [val.sample(cfg.batch, val_rng) for _ in range(8)] if val.levels else []

    def build_model(self, cfg: TrainConfig) -> TerraDenoiser:
        """A denoiser of the recipe's shape, warm-started from cfg.init_from when given."""
        model = TerraDenoiser(
            width=cfg.width, num_blocks=cfg.num_blocks, expansion=cfg.expansion, embed_dim=cfg.embed_dim,
            context_width=cfg.context_width, context_blocks=cfg.context_blocks,
        )
        if cfg.init_from:
            self.warm_start(model, cfg.init_from)
        return model

    @staticmethod
    def warm_start(model: TerraDenoiser, path: str) -> None:
        """Copy every weight whose name and shape match from a saved pipeline (new parts keep their init)."""
        source = TerraDenoiser.from_pretrained(model_dir(path) / "denoiser", low_cpu_mem_usage=False)
        own = model.state_dict()
        matched = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
        own.update(matched)
        model.load_state_dict(own)
        tqdm.write(f"warm start: {len(matched)}/{len(own)} tensors from {path}")

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 5 % of the peak."""
        if step < self.cfg.warmup_steps:
            return self.cfg.lr * (step + 1) / self.cfg.warmup_steps
        frac = (step - self.cfg.warmup_steps) / max(1, self.cfg.steps - self.cfg.warmup_steps)
        return self.cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def loss(self, model: TerraDenoiser, batch: tuple[torch.Tensor, ...], gen: torch.Generator | None) -> torch.Tensor:
        """v-prediction MSE on one batch."""
        child, parent, log2_mpp = (t.to(self.device) for t in batch)
        b = child.shape[0]
        uniform_t = torch.randint(0, 1000, (b,), generator=gen, device="cpu").to(self.device)
        pick = torch.randint(0, len(self.sampler_t), (b,), generator=gen, device="cpu").to(self.device)
        use_sampler = torch.rand(b, generator=gen, device="cpu").to(self.device) < self.cfg.inference_t_fraction
        t = torch.where(use_sampler, self.sampler_t[pick], uniform_t)
        noise = torch.randn(child.shape, generator=gen, device="cpu").to(self.device)
        a = self.alphas[t].view(b, 1, 1, 1)
        x_t = a.sqrt() * child + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * child
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            pred = model(x_t, condition_from_parent(parent), t, log2_mpp)
        return F.mse_loss(pred.float(), target)

    @torch.no_grad()
    def validate(self) -> float:
        """Mean EMA loss over fixed held-out batches (fixed noise too), comparable across runs."""
        if not self.val_batches:
            return float("nan")
        gen = torch.Generator().manual_seed(self.cfg.seed + 2)
        return float(np.mean([self.loss(self.ema, b, gen).item() for b in self.val_batches]))

    def save_checkpoint(self) -> None:
        """Everything needed to resume bit-for-bit, written atomically."""
        state = {
            "model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
            "step": self.step, "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
        }
        tmp = self.out / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.out / "checkpoint.pt")

    def load_checkpoint(self) -> bool:
        """Resume from checkpoint.pt if there is one."""
        path = self.out / "checkpoint.pt"
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        return True

    def export(self) -> Path:
        """The EMA weights as a pipeline the server can load (diffusers layout)."""
        target = self.out / "pipeline"
        ema_cpu = copy.deepcopy(self.ema).to("cpu")
        TerraPipeline(ema_cpu, default_scheduler(), self.cfg.inference_steps, device="cpu",
                      detail_gain=self.cfg.detail_gain, chroma_gain=self.cfg.chroma_gain,
                      structure=self.cfg.structure).save_pretrained(target)
        return target

    def run(self, progress: bool = True) -> Path:
        """Train to cfg.steps, validating, checkpointing and exporting on the way."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "train_config.json").write_text(json.dumps(asdict(self.cfg), indent=2))
        log = (self.out / "metrics.jsonl").open("a")
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not progress, desc="training", unit="step")
        started, running = time.time(), 0.0
        exported: Path | None = None
        deadline = started + 60.0 * self.cfg.max_minutes if self.cfg.max_minutes > 0 else math.inf
        while self.step < self.cfg.steps:
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.step)
            loss = self.loss(self.model, self.train_data.sample(self.cfg.batch, self.rng), None)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            with torch.no_grad():
                for pe, pm in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                    pe.lerp_(pm, 1.0 - self.cfg.ema_decay)
            self.step += 1
            running = 0.98 * running + 0.02 * loss.item() if self.step > 1 else loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}")
            last = self.step == self.cfg.steps or time.time() >= deadline
            if self.step % self.cfg.val_every == 0 or last:
                record = {"step": self.step, "train_loss": running, "val_loss": self.validate(),
                          "elapsed_s": round(time.time() - started, 1)}
                log.write(json.dumps(record) + "\n")
                log.flush()
            if self.step % self.cfg.ckpt_every == 0 or last:
                self.save_checkpoint()
                exported = self.export()
            if last:
                break
        bar.close()
        log.close()
        return exported if exported is not None else self.export()  # a resumed, finished run exports once here

