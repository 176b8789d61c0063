"""The sampler's scheduler: DDIM (eta = 0, v-prediction, zero terminal SNR) whose predicted clean image is corrected
inside each step, as the cascade pulls every step's prediction towards the parent imagery."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler


class ParentProjectedDDIMScheduler(DDIMScheduler):
    """diffusers' DDIMScheduler plus `step_corrected`: one deterministic step with x0 replaced by correct(x0)."""

    def step_corrected(self, model_output: torch.Tensor, timestep: int | torch.Tensor, sample: torch.Tensor,
                       correct: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """x_{t-1} from x_t and the model's v prediction, with the predicted clean image corrected.

        DDIM's update with eta = 0 (Song et al. 2021, eq. 12) is
            x_{t-1} = sqrt(a_{t-1}) x0 + sqrt(1 - a_{t-1}) eps,
        linear in x0 for a fixed eps, so correcting x0 moves the plain step by sqrt(a_{t-1}) (correct(x0) - x0)."""
        # 1. the plain DDIM step: x_{t-1} and the predicted clean image x0 (from v: x0 = sqrt(a_t) x_t - sqrt(1-a_t) v)
        out = self.step(model_output, timestep, sample, eta=0.0)
        x0 = out.pred_original_sample
        # 2. the previous timestep (trailing spacing: one stride earlier) and its cumulative alpha a_{t-1}
        alpha_prev = self.alpha_cumprod_at(self.prev_timestep(int(timestep)))
        # 3. eq. 12 with the corrected x0, eps unchanged
        return out.prev_sample + alpha_prev.to(sample.device).sqrt() * (correct(x0) - x0)


    def prev_timestep(self, timestep: int) -> int:
        """The timestep one sampler stride before timestep (trailing spacing); negative after the last step."""
        return timestep - self.config.num_train_timesteps // self.num_inference_steps

    def alpha_cumprod_at(self, timestep: int) -> torch.Tensor:
        """The cumulative alpha at timestep, or the final one (the clean image) before 0."""
        return self.alphas_cumprod[timestep] if timestep >= 0 else self.final_alpha_cumprod


def default_scheduler() -> ParentProjectedDDIMScheduler:
    """DDIM with eta = 0 over trailing timesteps and a zero-terminal-SNR schedule, v-prediction."""
    return ParentProjectedDDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=True,
    )
