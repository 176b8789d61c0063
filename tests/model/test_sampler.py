"""Sampler settings: the detail boost acts on brightness detail only, and pipeline.json round-trips every setting."""

from pathlib import Path

import torch
import torch.nn.functional as F

from terradream.model.painting import upsample2_bilinear
from terradream.model.pipeline import (
    DETAIL_LIMIT,
    FINAL_PROJECTION_REACH_PX,
    TerraPipeline,
    boost_detail,
    project_smooth,
    project_to_parent,
)


def test_detail_boost_scales_brightness_detail_and_keeps_colour_detail() -> None:
    gen = torch.Generator().manual_seed(0)  # test data only
    cond = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    x0 = cond + 0.1 * torch.randn(2, 3, 16, 16, generator=gen)
    x0[:, :, :2] = cond[:, :, :2] + 0.8  # two rows of strong strokes
    assert torch.allclose(boost_detail(x0, cond, 1.0), x0)
    boosted = boost_detail(x0, cond, 2.0)
    detail, new_detail = x0 - cond, boosted - cond
    luma, new_luma = detail.mean(1, keepdim=True), new_detail.mean(1, keepdim=True)
    faint = luma.abs() < 0.01
    assert torch.allclose(new_luma[faint], 2.0 * luma[faint], rtol=1e-2, atol=1e-6)  # faint texture doubled
    extra = new_luma - luma
    assert extra.abs().max() <= DETAIL_LIMIT + 1e-6  # strong strokes gain at most the limit
    assert torch.allclose(extra[:, :, :2], torch.full_like(extra[:, :, :2], DETAIL_LIMIT), atol=1e-4)
    assert torch.allclose(new_detail - new_luma, detail - luma, atol=1e-6)  # colour detail untouched


def test_smooth_projection_sums_its_rounds_at_the_parents_resolution() -> None:
    """The same as pulling round by round at full resolution, to float rounding, and it lands on the parent."""
    gen = torch.Generator().manual_seed(1)  # test data only
    x, parent = torch.rand(2, 3, 40, 48, generator=gen), torch.rand(2, 3, 20, 24, generator=gen)
    slow = x
    for _ in range(5):
        slow = slow + upsample2_bilinear(F.pad(parent - F.avg_pool2d(slow, 2), (1, 1, 1, 1), mode="replicate"))
    assert torch.allclose(project_smooth(x, parent, 5), slow, atol=1e-5)
    assert torch.allclose(F.avg_pool2d(project_to_parent(x, parent), 2), parent, atol=1e-6)


def test_settings_round_trip_and_key_the_version(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = TerraPipeline.from_pretrained(tiny_model_dir, device="cpu")
    tuned = TerraPipeline(base.denoiser, base.scheduler, base.num_inference_steps, device="cpu", metatile=2,
                          detail_gain=1.5)
    tuned.save_pretrained(tmp_path / "tuned")
    loaded = TerraPipeline.from_pretrained(tmp_path / "tuned", device="cpu")
    assert (loaded.metatile, loaded.detail_gain, loaded.num_inference_steps) == (2, 1.5, base.num_inference_steps)
    assert loaded.version == tuned.version != base.version  # cache keys follow the sampler settings


def test_version_does_not_depend_on_where_the_model_lies(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Servers and workers that load the same model from different folders share cache keys."""
    here = TerraPipeline.from_pretrained(tiny_model_dir, device="cpu")
    here.save_pretrained(tmp_path / "elsewhere")
    assert TerraPipeline.from_pretrained(tmp_path / "elsewhere", device="cpu").version == here.version


def test_cropping_before_the_final_projection_keeps_the_inner_pixels(tiny_model_dir: Path) -> None:
    """The sampler skips the final projection near a window's edge: what it keeps has the same bytes."""
    pipe = TerraPipeline.from_pretrained(tiny_model_dir, device="cpu")
    gen = torch.Generator().manual_seed(1)  # test data only
    w, crop = 96, 2 * (FINAL_PROJECTION_REACH_PX // 2) + 4
    latents = torch.randn(1, 3, w, w, generator=gen).numpy()
    parent = (torch.rand(1, w // 2 + 2, w // 2 + 2, 3, generator=gen) * 255).to(torch.uint8).numpy()
    mpp = torch.full((1,), 3.0).numpy()
    full = pipe.denoise(latents, parent, mpp)
    kept = pipe.denoise(latents, parent, mpp, crop_px=crop)
    assert kept.shape == (1, w - 2 * crop, w - 2 * crop, 3)
    inner, edge = FINAL_PROJECTION_REACH_PX, crop + FINAL_PROJECTION_REACH_PX
    assert (kept[:, inner:-inner, inner:-inner] == full[:, edge:-edge, edge:-edge]).all()
