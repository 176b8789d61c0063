"""TerraPipeline: the denoiser and a deterministic DDIM scheduler composed into a window sampler (diffusers style).

A window is a metatile (a square block of tiles, 2x2 by default) plus a margin on every side, cut from the global
fields: the noise (a pure function of world seed and global pixel position) and the parent imagery. With DDIM at
eta = 0 there is no per-step noise, and the margin covers the receptive field of every step (steps x radius), so the
core in the centre is what an infinite canvas would hold: neighbours agree at their borders by construction.
Metatiles keep a cold cascade at about four windows per level (a tile-sized window's margin spills into 3x3 parent
tiles, a 2x2 block's into 2x2 parent blocks) and make a new tile cost about 0.6 of a tile-sized window. After every
step the predicted clean image is pulled towards the parent (smooth bilinear corrections), and the output is finally
projected so that its 2x2 area means equal the parent exactly, which pins colours down the cascade.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from terradream.core.tiles import TILE_SIZE_PX
from terradream.model.denoiser import TerraDenoiser
from terradream.model.metatiles import MetatileGrid
from terradream.model.noise import STREAM_INIT, noise_window
from terradream.model.painting import StructurePainter, WindowSpec, upsample2_bilinear
from terradream.model.places import PlaceAtlas
from terradream.model.scheduler import ParentProjectedDDIMScheduler
from terradream.model.worlds import ROOT_LAND_MASK, ROOT_SHADOW_LIFT, ROOT_TOWN_ALPHA

DEFAULT_WEIGHTS_DIR = Path(__file__).parent / "weights"
PIPELINE_CONFIG = "pipeline.json"
SAMPLER_REVISION = 9  # bump whenever the sampling arithmetic changes: it is part of the version, hence of cache keys
SMOOTH_PROJECTION_ITERS = 8  # final smooth pull of the output onto the parent, before the exact 2x2 projection
FINAL_PROJECTION_REACH_PX = 2 * SMOOTH_PROJECTION_ITERS + 2  # how far a pixel's final projection reads around it
# Open water is calm at every zoom: the model's detail there is damped to this fraction (brightness and colour alike)
CALM_WATER_GAIN = 0.25
STEP_PROJECTION_ITERS = 1  # smooth pull of each step's predicted clean image onto the parent
DETAIL_LIMIT = 0.1  # most extra brightness detail boost_detail adds, in [-1, 1] units (~13/255)
# CPU kernels split their sums differently for other thread counts and change last bits (and so, rarely, a pixel):
# every CPU model call runs with exactly this many intra-op threads, whatever the process is configured with.
CPU_THREADS = 2


@dataclass(frozen=True)
class PreparedWindow:
    """A window made ready for sampling: its calm share (1, W, W) and its structure detail, being painted."""

    calm: np.ndarray
    detail: Future[np.ndarray]


def model_dir(path: str | Path | None) -> Path:
    """The directory of a saved pipeline: the shipped weights for None or "default", else path."""
    return DEFAULT_WEIGHTS_DIR if path is None or str(path) == "default" else Path(path)


def resolve_device(device: str = "auto") -> torch.device:
    """CUDA when asked for or available under 'auto', else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def boost_detail(x0: torch.Tensor, cond: torch.Tensor, gain: float, chroma_gain: float = 1.0) -> torch.Tensor:
    """Scale the brightness part of the predicted detail (x0 minus the upsampled parent) by about gain, and its
    colour part by chroma_gain.

    Real fine detail is mostly brightness: boosting colour detail too turns into chromatic speckle down a cascade, and
    a small model's colour detail compounds into green and magenta blotches, so it may be damped (chroma_gain < 1).
    The extra brightness saturates at DETAIL_LIMIT (tanh), so faint texture is amplified but strong strokes are not,
    and they cannot grow level after level into white dashes."""
    detail = x0 - cond
    luma_detail = detail.mean(dim=1, keepdim=True)
    out = x0 + (gain - 1.0) * DETAIL_LIMIT * torch.tanh(luma_detail / DETAIL_LIMIT)
    return out if chroma_gain == 1.0 else out + (chroma_gain - 1.0) * (detail - luma_detail)


def calm_detail(x0: torch.Tensor, cond: torch.Tensor, calm: torch.Tensor | None) -> torch.Tensor:
    """Damp the detail over open water to CALM_WATER_GAIN of itself, linearly (strong grain too): calm (B, 1, H, W)
    is each pixel's water share; None leaves x0 as it is."""
    return x0 if calm is None else x0 - (1.0 - CALM_WATER_GAIN) * calm * (x0 - cond)


def project_to_parent(x: torch.Tensor, parent: torch.Tensor) -> torch.Tensor:
    """Shift every 2x2 block of x so that its mean equals the matching parent pixel (same value scale)."""
    return x + F.interpolate(parent - F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")


def _mean_of_bilinear_px(padded: torch.Tensor) -> torch.Tensor:
    """The 2x2 means of a 2x bilinear upsample of (B, C, h+2, w+2), computed at the low resolution: (1/8, 3/4, 1/8)
    along each axis."""
    rows = 0.125 * (padded[:, :, :-2] + padded[:, :, 2:]) + 0.75 * padded[:, :, 1:-1]
    return 0.125 * (rows[..., :-2] + rows[..., 2:]) + 0.75 * rows[..., 1:-1]


def project_smooth(x: torch.Tensor, parent: torch.Tensor, iters: int) -> torch.Tensor:
    """Pull x onto the parent with bilinear (not blocky) corrections; each round reaches one parent pixel further.

    Each round adds the bilinear upsample of the parent's residual; upsampling is linear, so the rounds sum their
    corrections at the parent's resolution and x is upsampled into only once (about 4x cheaper than round by round
    at full resolution, and the same to float rounding)."""
    residual = parent - F.avg_pool2d(x, 2)
    total = torch.zeros_like(residual)
    for _ in range(iters):
        total = total + (residual - _mean_of_bilinear_px(F.pad(total, (1, 1, 1, 1), mode="replicate")))
    return x + upsample2_bilinear(F.pad(total, (1, 1, 1, 1), mode="replicate"))


def to_uint8_projected(x: torch.Tensor, parent: torch.Tensor, rounds: int = 4) -> np.ndarray:
    """Map [-1, 1] images to uint8 (B, H, W, 3): smooth pull, then exact 2x2 projection, re-applied after clamping."""
    v = (project_smooth(x.float(), parent.float(), SMOOTH_PROJECTION_ITERS) + 1.0) * 127.5
    target = (parent.float() + 1.0) * 127.5
    for _ in range(rounds):
        v = project_to_parent(v.clamp(0.0, 255.0), target)
    return v.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class TerraPipeline:
    """Composes a TerraDenoiser and a DDIMScheduler; turns WindowSpecs into their cores (metatiles)."""

    def __init__(
        self,
        denoiser: TerraDenoiser,
        scheduler: ParentProjectedDDIMScheduler,
        num_inference_steps: int = 4,
        device: str | torch.device = "auto",
        dtype: torch.dtype | None = None,
        micro_batch: int | None = None,
        metatile: int = 2,
        detail_gain: float = 1.0,
        structure: bool = False,
        chroma_gain: float = 1.0,
    ) -> None:
        if metatile < 1 or metatile & (metatile - 1):
            raise ValueError(f"metatile must be a power of two, got {metatile}")
        self.metatile = metatile
        # Each step's predicted detail (prediction minus upsampled parent) is scaled by this: a small model
        # under-predicts high frequencies, and down a cascade that loss compounds into blur (tuned on held-out SWD).
        self.detail_gain = detail_gain
        # Paint the procedural structure field (terradream.model.structure) into every window.
        self.structure = structure
        self.chroma_gain = chroma_gain
        self.device = resolve_device(device) if isinstance(device, str) else device
        # Every model call has exactly this many windows: kernels may pick other algorithms for other batch shapes
        # and change last bits, so a fixed shape is what makes a window's bytes independent of its batch-mates.
        self.micro_batch = micro_batch or (8 if self.device.type == "cuda" else 1)
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        # channels-last convolutions run about 1.6x faster on CPU (oneDNN) and suit tensor cores on GPUs
        self.denoiser = denoiser.to(self.device, memory_format=torch.channels_last).eval()
        self.scheduler = scheduler
        self.num_inference_steps = num_inference_steps
        self._version = ""

    # ---- geometry derived from the model ----
    @property
    def patch_px(self) -> int:
        """Windows start on one global grid of this pitch (the model's alignment: its coarsest stride, at least 2)."""
        return max(2, self.denoiser.align_px)

    @property
    def patch_offset_px(self) -> int:
        """Offset of that grid from tile borders: half a space-to-depth patch when that keeps windows on even pixels.

        Patch joints then fall inside tiles, so a tile border is an ordinary pixel pair, not always a joint."""
        half = max(2, int(self.denoiser.config.patch_size)) // 2
        return half if half % 2 == 0 else 0

    @property
    def margin_px(self) -> int:
        """Margin on each side of the core: the context path's reach into the parent, the receptive field of all
        sampling steps and of the final smooth projection (two pixels a round), rounded up onto the (offset) grid."""
        per_step = self.denoiser.receptive_radius_px + 2 * STEP_PROJECTION_ITERS
        radius = (self.denoiser.context_radius_px + self.num_inference_steps * per_step
                  + 2 * SMOOTH_PROJECTION_ITERS)
        off, patch = self.patch_offset_px, self.patch_px
        return -(-(radius - off) // patch) * patch + off

    @cached_property
    def grid(self) -> MetatileGrid:
        """The blocks of tiles this pipeline's windows make, with their margins."""
        return MetatileGrid(self.metatile, self.margin_px)

    @property
    def core_px(self) -> int:
        """Side of the block of tiles a window produces (metatile x 256 px)."""
        return self.grid.core_px

    @property
    def window_px(self) -> int:
        """Side of every window the model sees (fixed, so every call has the same shape)."""
        return self.grid.window_px

    @property
    def version(self) -> str:
        """Short id of the weights and sampler settings; part of every cache key and ETag."""
        return self._version or self._compute_version()

    def _compute_version(self) -> str:
        h = hashlib.sha256()
        for config in (self.denoiser.config, self.scheduler.config):  # without metadata such as _name_or_path
            settings = {k: v for k, v in dict(config).items() if not k.startswith("_")}
            if not settings.get("context_width", 1):  # no context path: hashed as before it existed
                settings = {k: v for k, v in settings.items() if k not in ("context_width", "context_blocks")}
            h.update(json.dumps(settings, sort_keys=True, default=str).encode())
        h.update(f"{self.num_inference_steps}/{self.metatile}/{self.detail_gain!r}/{SAMPLER_REVISION}/"
                 f"{SMOOTH_PROJECTION_ITERS}/{STEP_PROJECTION_ITERS}".encode())
        if self.chroma_gain != 1.0:  # settings added later hash only when used: older versions stay as they were
            h.update(f"chroma/{self.chroma_gain!r}/".encode())
        if self.structure:
            h.update(f"{self.painter.identity}/calm/{CALM_WATER_GAIN}".encode())
        # earth's root is greyed where towns are (model.worlds), so every model's earth tiles depend on it
        h.update(f"earth-root/{ROOT_TOWN_ALPHA}/{self.places.identity}/{ROOT_LAND_MASK}/{ROOT_SHADOW_LIFT}".encode())
        for name, tensor in sorted(self.denoiser.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().float().cpu().numpy().tobytes())
        self._version = h.hexdigest()[:12]
        return self._version

    # ---- persistence (diffusers layout) ----
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        device: str = "auto",
        dtype: torch.dtype | None = None,
        micro_batch: int | None = None,
    ) -> TerraPipeline:
        """Load denoiser/, scheduler/ and pipeline.json from a local directory (None or "default": the shipped
        weights)."""
        root = model_dir(path)
        denoiser = TerraDenoiser.from_pretrained(root / "denoiser", low_cpu_mem_usage=False)
        scheduler = ParentProjectedDDIMScheduler.from_pretrained(root / "scheduler")
        settings = json.loads((root / PIPELINE_CONFIG).read_text())
        return cls(denoiser, scheduler, settings.get("num_inference_steps", 4), device=device, dtype=dtype,
                   micro_batch=micro_batch, metatile=settings.get("metatile", 2),
                   detail_gain=settings.get("detail_gain", 1.0), structure=settings.get("structure", False),
                   chroma_gain=settings.get("chroma_gain", 1.0))

    def save_pretrained(self, path: str | Path) -> None:
        """Write the model in the layout from_pretrained reads (config.json + safetensors per part)."""
        root = Path(path)
        copy.deepcopy(self.denoiser).to(memory_format=torch.contiguous_format).save_pretrained(root / "denoiser")
        self.scheduler.save_pretrained(root / "scheduler")
        settings = {"num_inference_steps": self.num_inference_steps, "metatile": self.metatile,
                    "detail_gain": self.detail_gain, "structure": self.structure,
                    "chroma_gain": self.chroma_gain}
        (root / PIPELINE_CONFIG).write_text(json.dumps(settings, indent=2))

    # ---- sampling ----
    def noise_for(self, spec: WindowSpec) -> np.ndarray:
        """The initial latent of a window, read from the global noise field of its world and zoom."""
        w = self.window_px
        return noise_window(spec.seed, spec.z, STREAM_INIT, 3, spec.row0, spec.col0, w, w, TILE_SIZE_PX << spec.z)

    def sample(self, specs: Sequence[WindowSpec], prepared: Sequence[PreparedWindow] | None = None) -> np.ndarray:
        """Cores of any number of windows as uint8 (N, core, core, 3), in fixed-shape model calls.

        prepared: prepare(specs), when the caller started the windows' structure earlier (say, while the windows
        before them were sampled)."""
        n, mb = len(specs), self.micro_batch
        ready = list(self.prepare(specs) if prepared is None else prepared)
        out = []
        for start in range(0, n, mb):
            chunk, made = list(specs[start : start + mb]), ready[start : start + mb]
            pad = mb - len(chunk)  # every call has the same shape: the first window fills the rest
            out.append(self._sample_fixed(chunk + [chunk[0]] * pad, made + [made[0]] * pad if made else [])
                       [: len(chunk)])
        return np.concatenate(out) if out else np.zeros((0, self.core_px, self.core_px, 3), np.uint8)

    def prepare(self, specs: Sequence[WindowSpec]) -> list[PreparedWindow]:
        """The windows' calm shares, and their structure detail started on the side thread (nothing without a
        structure field): a window's model steps then run while it is painted, and so may those of the windows
        before it. The water (and shore) read for the calm share is handed on to the painter."""
        if not self.structure:
            return []
        ready = []
        for spec in specs:
            water = self.painter.window_water(spec, self.window_px)
            detail = self._side_work.submit(self.painter.detail, spec, self.window_px, self.margin_px, water)
            ready.append(PreparedWindow(self.painter.calm_share(spec, water), detail))
        return ready

    def _sample_fixed(self, specs: Sequence[WindowSpec], prepared: Sequence[PreparedWindow]) -> np.ndarray:
        """Sample exactly micro_batch windows (one model call per step) and cut out their cores."""
        latents = np.stack([self.noise_for(s) for s in specs])
        calm = np.stack([p.calm for p in prepared]) if prepared else None
        m, core = self.margin_px, self.core_px
        crop = max(0, (m - FINAL_PROJECTION_REACH_PX) // 2 * 2)  # even: 2x2 blocks stay on the parent's grid
        kept = self.denoise(latents, np.stack([s.parent_px for s in specs]), np.stack([s.log2_mpp for s in specs]),
                            (lambda: np.stack([p.detail.result() for p in prepared])) if prepared else None, calm,
                            crop)
        return kept[:, m - crop : m - crop + core, m - crop : m - crop + core]

    @cached_property
    def _side_work(self) -> ThreadPoolExecutor:
        """One thread that computes a window's structure detail while the model runs its steps (the detail is added
        only after them)."""
        return ThreadPoolExecutor(1, thread_name_prefix="terradream-structure")

    @cached_property
    def painter(self) -> StructurePainter:
        """Paints the structure field into windows, reaching as far out as the final projection does."""
        return StructurePainter(reach_px=2 * SMOOTH_PROJECTION_ITERS)

    @property
    def places(self) -> PlaceAtlas:
        """Real settlements (GeoNames), loaded on first use."""
        return self.painter.places

    def warm(self) -> None:
        """Load the real data earth's windows read (water, places, relief) now rather than in the first windows."""
        self.places.warm()  # earth's root is greyed where towns are, whatever the model
        if self.structure:
            self.painter.warm()

    def denoise(self, latents: np.ndarray, parent_px: np.ndarray, log2_mpp: np.ndarray,
                detail: np.ndarray | Callable[[], np.ndarray] | None = None, calm: np.ndarray | None = None,
                crop_px: int = 0) -> np.ndarray:
        """Whole windows of any patch-aligned size: latents (B, 3, H, W) float32, parent_px (B, H/2+2, W/2+2, 3)
        uint8 with a one-pixel apron, log2_mpp (B, H/patch) or (B,), optional structure detail (B, 3, H, W), or a
        function returning it (called after the model's steps), added before the final projection, optional calm
        share (B, 1, H, W) where detail is damped to CALM_WATER_GAIN; returns uint8 (B, H, W, 3) less crop_px (even)
        on every side, which the final projection then skips (pixels further than FINAL_PROJECTION_REACH_PX inside
        get the same values)."""
        if self.device.type != "cpu":
            return self._denoise(latents, parent_px, log2_mpp, detail, calm, crop_px)
        before = torch.get_num_threads()
        torch.set_num_threads(CPU_THREADS)
        try:
            return self._denoise(latents, parent_px, log2_mpp, detail, calm, crop_px)
        finally:
            torch.set_num_threads(before)

    def serving_step(self, x: torch.Tensor, t: int | torch.Tensor, cond: torch.Tensor, parent_core: torch.Tensor,
                     log2_mpp: torch.Tensor, context: torch.Tensor | None = None,
                     calm: torch.Tensor | None = None) -> torch.Tensor:
        """One sampler step as served, with set_timesteps done: the model's v at t, then DDIM with the predicted clean
        image corrected (detail gain, calm water and snow, one pull onto the parent core)."""
        dt = self.dtype
        tt = torch.as_tensor(t, device=x.device).expand(x.shape[0])
        with torch.autocast(x.device.type, dtype=dt, enabled=dt != torch.float32):
            v = self.denoiser(x.to(dt), cond.to(dt), tt, log2_mpp, context).float()
        return self.scheduler.step_corrected(v, t, x, lambda x0: project_smooth(calm_detail(
            boost_detail(x0, cond, self.detail_gain, self.chroma_gain), cond, calm), parent_core,
            STEP_PROJECTION_ITERS))

    @torch.no_grad()
    def _denoise(self, latents: np.ndarray, parent_px: np.ndarray, log2_mpp: np.ndarray,
                 detail: np.ndarray | Callable[[], np.ndarray] | None, calm: np.ndarray | None,
                 crop_px: int) -> np.ndarray:
        """denoise() at whatever thread count is set."""
        dev, dt = self.device, self.dtype
        parent = torch.from_numpy(parent_px).to(dev).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        parent_core = parent[:, :, 1:-1, 1:-1]
        cond = upsample2_bilinear(parent)
        mpp = torch.from_numpy(np.asarray(log2_mpp, dtype=np.float32)).to(dev)
        self.scheduler.set_timesteps(self.num_inference_steps, device=dev)
        x = torch.from_numpy(latents).to(dev) * self.scheduler.init_noise_sigma
        share = None if calm is None else torch.from_numpy(calm).to(dev)
        with torch.autocast(dev.type, dtype=dt, enabled=dt != torch.float32):
            context = self.denoiser.context_features(cond.to(dt), mpp)  # the parent does not change between steps
        for t in self.scheduler.timesteps:
            x = self.serving_step(x, t, cond, parent_core, mpp, context, share)
        if detail is not None:
            x = x + torch.from_numpy(detail() if callable(detail) else detail).to(dev)
        if crop_px:
            half = crop_px // 2
            x, parent_core = x[:, :, crop_px:-crop_px, crop_px:-crop_px], parent_core[:, :, half:-half, half:-half]
        return to_uint8_projected(x, parent_core)
