"""The conditional denoiser: a fixed-receptive-field conv net built from diffusers parts.

It sees the noisy window and the upsampled parent window as input channels, and the timestep plus the ground resolution
(log2 m/px, sinusoidal + MLP, summed with the timestep embedding) as conditions. There is no spatial normalisation and no
attention: an output block depends only on input blocks within a fixed radius, so a pixel's value does not depend on
where the window around it was cut. The resolution embedding is per block-row (it follows latitude), so it too is a pure
function of global position.

Two paths: a per-step body at 1/4 resolution that sees the noisy sample (a short reach, paid at every sampling step) and
a context path over the parent alone (stages at 1/8 and 1/16 with a skip, about 100 px of reach), computed once per
window because the parent does not change between steps. Long things in the parent (a river, a road, a field edge)
are seen whole by the context path, so the body can continue them instead of drawing short strokes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

# log2(m/px) spans about -3.3 (0.1 m) .. 14 (16 km); mapped onto the 0..1000 range the sinusoidal embedding is tuned for.
LOG2_MPP_OFFSET = 4.0
LOG2_MPP_SCALE = 50.0


class FiLMResBlock(nn.Module):
    """x + conv1x1(silu(FiLM(conv3x3(silu(x))))): one 3x3 conv, so it grows the receptive field by one block."""

    def __init__(self, width: int, embed_dim: int, expansion: int) -> None:
        super().__init__()
        hidden = width * expansion
        self.conv = nn.Conv2d(width, hidden, 3, padding=1)
        self.film = nn.Linear(embed_dim, 2 * hidden)
        self.out = nn.Conv2d(hidden, width, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); emb: (B, H, E) per block-row embedding."""
        h = self.conv(F.silu(x))
        scale, shift = self.film(emb).permute(0, 2, 1).unsqueeze(-1).chunk(2, dim=1)  # (B, hidden, H, 1) each
        h = h * (1.0 + scale) + shift
        return x + self.out(F.silu(h))


class ContextPath(nn.Module):
    """A small U-Net over the parent (no normalisation): 1/4 -> 1/8 -> 1/16 -> back to 1/4, zero-initialised output.

    Strided convs keep it translation-exact on a global grid of align_px = 4 * patch pixels, which is why windows start
    on that grid; its output is added to the body's features at every step."""

    def __init__(self, in_channels: int, width: int, out_width: int, embed_dim: int, blocks: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 1)
        self.down1 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.mid1 = nn.Conv2d(width, width, 3, padding=1)
        self.down2 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.deep = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(blocks))
        self.deep_film = nn.Linear(embed_dim, width)
        self.up1 = nn.Conv2d(width, width, 3, padding=1)
        self.out = nn.Conv2d(width, out_width, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]  # a Conv2d built with bias=True has one

    def forward(self, cond_patches: torch.Tensor, emb_rows: torch.Tensor) -> torch.Tensor:
        """cond_patches: (B, C, h, w) at 1/4 resolution; emb_rows: (B, h, E). Returns (B, out_width, h, w)."""
        h, w = cond_patches.shape[-2:]
        pad_h, pad_w = (-h) % 4, (-w) % 4  # past the window's far edge: inside the margin, like zero padding
        x0 = F.pad(self.stem(cond_patches), (0, pad_w, 0, pad_h))
        x1 = F.silu(self.down1(F.silu(x0)))
        x1 = x1 + self.mid1(x1)
        x2 = self.down2(F.silu(x1))
        rows = F.pad(emb_rows, (0, 0, 0, pad_h), mode="replicate") if pad_h else emb_rows
        bias = self.deep_film(rows.reshape(rows.shape[0], -1, 4, rows.shape[-1]).mean(2))  # (B, h/4, width)
        x2 = x2 + bias.permute(0, 2, 1).unsqueeze(-1)
        for conv in self.deep:
            x2 = x2 + conv(F.silu(x2))
        up = x1 + F.interpolate(x2, scale_factor=2, mode="nearest")
        up = self.up1(F.silu(up))
        up = x0 + F.interpolate(up, scale_factor=2, mode="nearest")
        return self.out(F.silu(up))[:, :, :h, :w]


class TerraDenoiser(ModelMixin, ConfigMixin):
    """Predicts the diffusion target (v) for a window, given the upsampled parent, timestep and ground resolution."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        cond_channels: int = 3,
        out_channels: int = 3,
        patch_size: int = 4,
        width: int = 64,
        num_blocks: int = 4,
        expansion: int = 1,
        embed_dim: int = 128,
        refine_channels: int = 16,
        context_width: int = 0,
        context_blocks: int = 3,
    ) -> None:
        super().__init__()
        p2 = patch_size * patch_size
        self.time_proj = Timesteps(embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(embed_dim, embed_dim)
        self.res_proj = Timesteps(embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.res_embedding = TimestepEmbedding(embed_dim, embed_dim)
        self.stem = nn.Conv2d((in_channels + cond_channels) * p2, width, 1)
        self.blocks = nn.ModuleList(FiLMResBlock(width, embed_dim, expansion) for _ in range(num_blocks))
        self.head = nn.Conv2d(width, out_channels * p2, 1)
        # 0 keeps the body alone (models trained before the context path load unchanged).
        self.context = (ContextPath(cond_channels * p2, context_width, width, embed_dim, context_blocks)
                        if context_width else None)
        # Two full-resolution 3x3 convs over (coarse output, noisy sample) smooth the joints between patch blocks.
        self.refine = nn.Sequential(
            nn.Conv2d(out_channels + in_channels, refine_channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(refine_channels, out_channels, 3, padding=1),
        )

    @property
    def receptive_radius_blocks(self) -> int:
        """How many patch blocks away an output block can see, per forward pass (one per 3x3 conv)."""
        return int(self.config.num_blocks)

    @property
    def receptive_radius_px(self) -> int:
        """The per-step radius in full-resolution pixels (windows aligned to the patch grid): blocks plus refine convs."""
        return self.receptive_radius_blocks * int(self.config.patch_size) + 2

    @property
    def context_radius_px(self) -> int:
        """How far the context path reaches into the parent, in full-resolution pixels (0 without one).

        A bound: per conv its stride-scaled reach (1/8: down1, mid1, up1 two cells each; 1/16: down2 and the deep convs
        four cells each) plus two cells for where a pixel lies in its 1/16 cell; tests check it against gradients."""
        if not self.config.context_width:
            return 0
        p = int(self.config.patch_size)
        return p * (2 * 3 + 4 * (1 + int(self.config.context_blocks)) + 2)

    @property
    def align_px(self) -> int:
        """Windows must start on a global grid of this pitch for the outputs to be translation-exact."""
        p = int(self.config.patch_size)
        return 4 * p if self.config.context_width else p

    def context_features(self, cond: torch.Tensor, log2_mpp: torch.Tensor) -> torch.Tensor | None:
        """The context path's output for a window's upsampled parent (computed once, reused at every step)."""
        if self.context is None:
            return None
        p = int(self.config.patch_size)
        emb = self._res_rows(log2_mpp, cond.shape[0], cond.shape[2] // p, cond.dtype)
        return self.context(F.pixel_unshuffle(cond, p), emb)

    def _res_rows(self, log2_mpp: torch.Tensor, b: int, rows: int, dtype: torch.dtype) -> torch.Tensor:
        """The resolution embedding of every block-row: (B, rows, E)."""
        if log2_mpp.dim() == 1:
            log2_mpp = log2_mpp[:, None].expand(b, rows)
        res_in = (log2_mpp.reshape(-1).float() + LOG2_MPP_OFFSET) * LOG2_MPP_SCALE
        return self.res_embedding(self.res_proj(res_in).to(dtype)).reshape(b, rows, -1)

    def forward(
        self, sample: torch.Tensor, cond: torch.Tensor, timestep: torch.Tensor, log2_mpp: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """sample, cond: (B, 3, H, W) with H, W multiples of patch_size; timestep: (B,); log2_mpp: (B,) or (B, H/patch);
        context: context_features(cond, log2_mpp) when the caller reuses it across steps (computed here if None)."""
        p = int(self.config.patch_size)
        b, _, height, _ = sample.shape
        x = self.stem(F.pixel_unshuffle(torch.cat([sample, cond], dim=1), p))
        if context is None:
            context = self.context_features(cond, log2_mpp)
        if context is not None:
            x = x + context.to(x.dtype)
        temb = self.time_embedding(self.time_proj(timestep.reshape(b)).to(x.dtype))  # (B, E)
        remb = self._res_rows(log2_mpp, b, height // p, x.dtype)  # (B, rows, E)
        emb = F.silu(temb[:, None, :] + remb)
        for block in self.blocks:
            x = block(x, emb)
        coarse = F.pixel_shuffle(self.head(F.silu(x)), p)
        return coarse + self.refine(torch.cat([coarse, sample], dim=1))
