"""Realism without a pretrained network: Laplacian-pyramid sliced Wasserstein distance and power-spectrum slope.

For each resolution band, held-out real images at ground resolution r are area-downsampled to 2r; the model generates
the r image back from that parent (its real job, one cascade level), and so does the baseline "bicubic upsample of the
parent". SWD (Karras et al. 2018: 7x7 neighbourhoods of every Laplacian level, normalised, compared along random
directions) and the radially averaged power-spectrum slope of each set are compared against the real images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from terradream.core.tiles import EARTH_EQUATOR_M_PER_PX_Z0
from terradream.model.noise import STREAM_INIT, noise_window
from terradream.model.pipeline import TerraPipeline
from terradream.training.dataset import TripleDataset


def gaussian_pyramid_down(img: torch.Tensor) -> torch.Tensor:
    """Blur with the 5-tap binomial kernel and halve (B, C, H, W)."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    k = (k1[:, None] * k1[None, :]).expand(img.shape[1], 1, 5, 5).contiguous()
    return F.conv2d(F.pad(img, (2, 2, 2, 2), mode="reflect"), k, groups=img.shape[1])[:, :, ::2, ::2]


def laplacian_pyramid(img: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels (finest first) and the coarse residual last."""
    out, cur = [], img
    for _ in range(levels - 1):
        small = gaussian_pyramid_down(cur)
        up = F.interpolate(small, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        out.append(cur - up)
        cur = small
    out.append(cur)
    return out


def patch_descriptors(level: torch.Tensor, per_image: int, rng: np.random.Generator, size: int = 7) -> torch.Tensor:
    """Random size x size neighbourhoods of a pyramid level, flattened: (B * per_image, C * size^2)."""
    b, _, h, w = level.shape
    patches = []
    for i in range(b):
        ys = rng.integers(0, h - size + 1, per_image)
        xs = rng.integers(0, w - size + 1, per_image)
        patches += [level[i, :, y : y + size, x : x + size].reshape(-1) for y, x in zip(ys, xs, strict=True)]
    return torch.stack(patches)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, rng: np.random.Generator, directions: int = 256) -> float:
    """Mean 1-D Wasserstein distance of two descriptor sets along random unit directions (equal set sizes)."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    proj = torch.from_numpy(rng.normal(size=(a.shape[1], directions)).astype(np.float32))
    proj /= proj.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ proj, dim=0)
    pb, _ = torch.sort(b @ proj, dim=0)
    return float((pa - pb).abs().mean())


def swd(real: torch.Tensor, fake: torch.Tensor, seed: int = 0, levels: int = 3, per_image: int = 64) -> float:
    """Laplacian SWD x 1e3 between two image sets in [-1, 1] (B, 3, H, W), averaged over pyramid levels."""
    rng = np.random.default_rng(seed)
    dists = []
    for lr, lf in zip(laplacian_pyramid(real, levels), laplacian_pyramid(fake, levels), strict=True):
        dr, df = patch_descriptors(lr, per_image, rng), patch_descriptors(lf, per_image, rng)
        mean, std = dr.mean(dim=0, keepdim=True), dr.std(dim=0, keepdim=True) + 1e-6
        dists.append(sliced_wasserstein((dr - mean) / std, (df - mean) / std, rng))
    return 1e3 * float(np.mean(dists))


def spectrum_slope(images: torch.Tensor) -> float:
    """Slope of log power against log spatial frequency (radially averaged, grey, mean over images)."""
    grey = images.mean(dim=1)
    grey = grey - grey.mean(dim=(-2, -1), keepdim=True)
    n = grey.shape[-1]
    power = (torch.fft.fftshift(torch.fft.fft2(grey), dim=(-2, -1)).abs() ** 2).mean(dim=0).numpy()
    yy, xx = np.indices(power.shape)
    radius = np.hypot(yy - n // 2, xx - n // 2).astype(int)
    radial = np.bincount(radius.ravel(), power.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    f = np.arange(2, n // 2)
    return float(np.polyfit(np.log(f), np.log(radial[f] + 1e-12), 1)[0])


@dataclass
class BandResult:
    """One row of the evaluation table."""

    band: str
    m_per_px: float
    images: int
    swd_model: float
    swd_bicubic: float
    slope_real: float
    slope_model: float
    slope_bicubic: float
    samples: tuple[torch.Tensor, ...] = ()  # (real, bicubic, model) images, for sample grids

    @property
    def improvement(self) -> float:
        """Relative SWD reduction of the model over the bicubic baseline (0.3 = 30 % lower)."""
        return 1.0 - self.swd_model / self.swd_bicubic


def bicubic_up2(parent: torch.Tensor) -> torch.Tensor:
    """The no-generation baseline: bicubic 2x upsampling of parents in [-1, 1] (PIL's bicubic filter)."""
    out = []
    for img in parent:
        arr = ((img.permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        up = Image.fromarray(arr).resize((arr.shape[1] * 2, arr.shape[0] * 2), Image.Resampling.BICUBIC)
        out.append(torch.from_numpy(np.asarray(up, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0)
    return torch.stack(out)


def generate_from_parents(pipe: TerraPipeline, parent: torch.Tensor, log2_mpp: torch.Tensor, seed: int) -> torch.Tensor:
    """The model's children of parents in [-1, 1] (B, 3, h, w): one cascade level, edge-replicated apron."""
    b, _, h, w = parent.shape
    apron = F.pad(parent, (1, 1, 1, 1), mode="replicate")
    parent_px = ((apron.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    latents = np.stack([noise_window(seed, 0, STREAM_INIT, 3, 4096 * i, 0, 2 * h, 2 * w, 1 << 40) for i in range(b)])
    rows = 2 * h // int(pipe.denoiser.config.patch_size)
    mpp = np.repeat(log2_mpp.numpy()[:, None], rows, axis=1)
    outs = [pipe.denoise(latents[i : i + 1], parent_px[i : i + 1], mpp[i : i + 1]) for i in range(b)]
    return torch.from_numpy(np.concatenate(outs).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0


def evaluate_band(pipe: TerraPipeline, data: TripleDataset, band: str, count: int, seed: int = 0) -> BandResult | None:
    """Compare model and bicubic children with real held-out children of one dataset (already one band)."""
    if not data.levels:
        return None
    rng = np.random.default_rng(seed)
    child, parent, log2_mpp = data.sample(count, rng)
    parent = F.avg_pool2d(child, 2)  # clean parents: evaluate the generator, not the degradation model
    model = generate_from_parents(pipe, parent, log2_mpp, seed)
    bicubic = bicubic_up2(parent)
    crop = slice(4, -4)  # leave out the edge-replicated apron's reach
    real, model, bicubic = (t[:, :, crop, crop] for t in (child, model, bicubic))
    return BandResult(
        band, float(2 ** log2_mpp.mean().item()), count, swd(real, model, seed), swd(real, bicubic, seed),
        spectrum_slope(real), spectrum_slope(model), spectrum_slope(bicubic), (real, bicubic, model),
    )


def format_table(rows: list[BandResult]) -> str:
    """A Markdown table of band results."""
    lines = ["| band | m/px | images | SWD model | SWD bicubic | SWD reduction | slope real | slope model | "
             "slope bicubic |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.band} | {r.m_per_px:.2f} | {r.images} | {r.swd_model:.1f} | {r.swd_bicubic:.1f} | "
                     f"{100 * r.improvement:.0f} % | {r.slope_real:.2f} | {r.slope_model:.2f} | {r.slope_bicubic:.2f} |")
    return "\n".join(lines)


def zoom_for_mpp(m_per_px: float, lat_deg: float = 0.0) -> float:
    """The (fractional) zoom whose ground resolution at lat_deg equals m_per_px."""
    return math.log2(EARTH_EQUATOR_M_PER_PX_Z0 * math.cos(math.radians(lat_deg)) / m_per_px)
