"""Progressive distillation (Salimans & Ho, ICLR 2022): a student that samples in a whole fraction of the teacher's
steps (half in the paper; a three-step teacher can also go straight to one).

One student DDIM step from t must land where k of the teacher's serving steps land, corrections included (the
teacher's detail gain, colour damping and pull onto the parent), so the student needs no gain of its own. For a
student step t -> t'' with teacher endpoint x'' the target clean image solves the DDIM update (eta = 0)
    x'' = a'' x0 + s'' (x_t - a_t x0) / s_t,   a = sqrt(alpha_cumprod), s = sqrt(1 - alpha_cumprod),
and the loss is the v-prediction MSE against that x0, which weighs the x0 error by SNR + 1 (the paper's choice).
Halving the steps halves the model's work and the window's margin (steps x receptive radius).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from terradream.model.denoiser import TerraDenoiser
from terradream.model.pipeline import TerraPipeline, model_dir
from terradream.training.config import TrainConfig
from terradream.training.dataset import TripleDataset
from terradream.training.train import Trainer, condition_from_parent


def distill_target(x_t: torch.Tensor, x_end: torch.Tensor, alpha_t: torch.Tensor,
                   alpha_end: torch.Tensor) -> torch.Tensor:
    """The clean image whose single DDIM step (eta = 0) from x_t at alpha_t lands on x_end at alpha_end.

    >>> x = torch.tensor([0.3]); distill_target(x, torch.tensor([0.7]), torch.tensor(0.0), torch.tensor(1.0))
    tensor([0.7000])
    """
    a_t, s_t = alpha_t.sqrt(), (1.0 - alpha_t).sqrt()
    a_e, s_e = alpha_end.sqrt(), (1.0 - alpha_end).sqrt()
    ratio = s_e / s_t
    return (x_end - ratio * x_t) / (a_e - ratio * a_t)


class DistillTrainer(Trainer):
    """A Trainer whose targets are the teacher's multi-step jumps instead of the noise."""

    def __init__(self, cfg: TrainConfig, train: TripleDataset, val: TripleDataset) -> None:
        self.teacher = TerraPipeline.from_pretrained(model_dir(cfg.distill_from), device="cpu")
        teacher_steps = self.teacher.num_inference_steps
        if teacher_steps <= cfg.inference_steps or teacher_steps % cfg.inference_steps:
            raise ValueError(f"a student takes a whole fraction of the teacher's {teacher_steps} steps, "
                             f"not {cfg.inference_steps}")
        self.steps_per_jump = teacher_steps // cfg.inference_steps
        super().__init__(cfg, train, val)
        self.teacher.denoiser.to(self.device).requires_grad_(False)
        self.teacher.scheduler.set_timesteps(self.teacher.num_inference_steps, device=self.device)
        self.teacher_timesteps = [int(tk) for tk in self.teacher.scheduler.timesteps]

    def build_model(self, cfg: TrainConfig) -> TerraDenoiser:
        """The student is the teacher's architecture, started from its weights."""
        config = {k: v for k, v in dict(self.teacher.denoiser.config).items() if not k.startswith("_")}
        student = TerraDenoiser(**config)
        student.load_state_dict(self.teacher.denoiser.state_dict())
        return student

    @torch.no_grad()
    def teacher_jump(self, x: torch.Tensor, t: int, cond: torch.Tensor, parent: torch.Tensor,
                     log2_mpp: torch.Tensor) -> torch.Tensor:
        """The teacher's serving steps from x at t to the student's next timestep (its detail gain and pull onto the
        parent included)."""
        first = self.teacher_timesteps.index(t)
        for tk in self.teacher_timesteps[first : first + self.steps_per_jump]:
            x = self.teacher.serving_step(x, tk, cond, parent, log2_mpp)
        return x

    def loss(self, model: TerraDenoiser, batch: tuple[torch.Tensor, ...], gen: torch.Generator | None) -> torch.Tensor:
        """v-prediction MSE against the teacher's jump, at one of the student's own timesteps per batch."""
        child, parent, log2_mpp = (t.to(self.device) for t in batch)
        t = int(self.sampler_t[int(torch.randint(0, len(self.sampler_t), (1,), generator=gen))])
        noise = torch.randn(child.shape, generator=gen, device="cpu").to(self.device)
        alpha_t, alpha_end = (self.scheduler.alpha_cumprod_at(s).to(self.device)
                              for s in (t, self.scheduler.prev_timestep(t)))
        x_t = alpha_t.sqrt() * child + (1 - alpha_t).sqrt() * noise
        cond = condition_from_parent(parent)
        x0 = distill_target(x_t, self.teacher_jump(x_t, t, cond, parent, log2_mpp), alpha_t, alpha_end)
        target = (alpha_t.sqrt() * x_t - x0) / (1 - alpha_t).sqrt()
        pred = model(x_t, cond, torch.full((child.shape[0],), t, device=self.device, dtype=torch.long), log2_mpp)
        return F.mse_loss(pred.float(), target)

