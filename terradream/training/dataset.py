"""Training triples (parent, child, child m/px) from folders of real imagery with known ground resolution.

Every source image becomes a pyramid of 2x area downsamples, each level tagged with its resolution, so one image covers
several rungs of the ladder. A sample is a random child crop at resolution r and its parent: the same ground at 2r (an
exact 2x area downsample, lightly degraded as in MetaEarth: blur, noise, JPEG). Bands of resolution (octaves) are drawn
evenly so coarse Blue Marble and 0.1 m orthophotos weigh the same. Validation holds out whole source images (or, for sources of
fewer than five images, the eastern fifth of each image).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from terradream.core.tiles import area_mean2 as area_downsample2_np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
MIN_IMAGES_FOR_IMAGE_SPLIT = 5  # sources with fewer images are split spatially instead


@dataclass(frozen=True)
class SourceSpec:
    """A set of images sharing one approximate ground resolution; nodata_black masks pure black pixels (Landsat)."""

    pattern: str
    m_per_px: float
    nodata_black: bool = False
    max_images: int | None = None


# How the folders of ../shared/data (see its README) map to resolutions; a user's own folder is given as DIR:MPP.
KNOWN_LAYOUT: dict[str, SourceSpec] = {
    "aid": SourceSpec("aid/*/*.jpg", 8.0, max_images=1500),
    "landsat": SourceSpec("landsat/*.png", 30.0, nodata_black=True),
    "sentinel2": SourceSpec("sentinel2/*.png", 10.0),
    "neon": SourceSpec("neon/*.png", 0.1),
    "basemaps": SourceSpec("basemaps/*.jpg", 7420.0),
}


def sources_from_args(data: list[str]) -> list[tuple[Path, SourceSpec]]:
    """Resolve --data arguments: DIR:MPP for a folder of images at MPP m/px, or a folder laid out like KNOWN_LAYOUT."""
    out: list[tuple[Path, SourceSpec]] = []
    for arg in data:
        head, _, mpp = arg.rpartition(":")
        if head and _is_float(mpp):
            out.append((Path(head), SourceSpec("**/*", float(mpp))))
            continue
        root = Path(arg)
        found = [(root, spec) for name, spec in KNOWN_LAYOUT.items() if (root / name).is_dir()]
        if not found:
            raise ValueError(f"{arg}: give DIR:MPP, or a folder with any of {sorted(KNOWN_LAYOUT)} inside")
        out.extend(found)
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_validation(path: Path, fraction: float = 0.1) -> bool:
    """Hold out a stable fraction of source images (by path hash), never crops of a training image."""
    digest = hashlib.sha256(path.name.encode() + path.parent.name.encode()).digest()
    return int.from_bytes(digest[:4], "little") / 2**32 < fraction


@dataclass
class Level:
    """One pyramid level of one source image: pixels in [0, 1], an optional validity mask, its resolution."""

    pixels: np.ndarray
    valid: np.ndarray | None
    m_per_px: float


@dataclass
class TripleDataset:
    """All pyramid levels of a split, grouped in octave bands, sampled as fixed-size (child, parent, log2 mpp) batches."""

    crop_px: int
    levels: list[Level] = field(default_factory=list)

    def add_image(self, img: np.ndarray, m_per_px: float, nodata_black: bool) -> None:
        """Add an image and its 2x downsamples while they still fit a crop."""
        pixels = img.astype(np.float32) / 255.0
        valid = (img.max(axis=2) > 0).astype(np.float32) if nodata_black else None
        mpp = m_per_px
        while min(pixels.shape[:2]) >= self.crop_px:
            self.levels.append(Level(pixels, valid, mpp))
            pixels = area_downsample2_np(pixels)
            valid = None if valid is None else (area_downsample2_np(valid[..., None])[..., 0] >= 1.0).astype(np.float32)
            mpp *= 2.0

    def bands(self) -> dict[int, list[int]]:
        """Level indices grouped by octave of resolution (floor(log2 m/px))."""
        out: dict[int, list[int]] = {}
        for i, level in enumerate(self.levels):
            out.setdefault(math.floor(math.log2(level.m_per_px)), []).append(i)
        return out

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """child (B, 3, S, S) and parent (B, 3, S/2, S/2) in [-1, 1], and log2 m/px of the child (B,)."""
        bands = self.bands()
        keys = sorted(bands)
        s = self.crop_px
        children, mpps = [], []
        while len(children) < batch:
            members = bands[keys[rng.integers(len(keys))]]
            weights = np.array([self.levels[i].pixels.size for i in members], dtype=np.float64)
            level = self.levels[members[rng.choice(len(members), p=weights / weights.sum())]]
            h, w = level.pixels.shape[:2]
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            if level.valid is not None and level.valid[y : y + s, x : x + s].mean() < 0.99:
                continue
            crop = level.pixels[y : y + s, x : x + s]
            k = int(rng.integers(4))
            crop = np.rot90(crop, k) if rng.random() < 0.5 else np.rot90(crop[:, ::-1], k)
            children.append(np.ascontiguousarray(crop))
            mpps.append(math.log2(level.m_per_px))
        child = torch.from_numpy(np.stack(children)).permute(0, 3, 1, 2) * 2.0 - 1.0
        parent = degrade(F.avg_pool2d(child, 2), rng)
        return child, parent, torch.tensor(mpps, dtype=torch.float32)


def degrade(parent: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """MetaEarth-style light degradations of parents: Gaussian blur, additive noise, JPEG (each per sample, at random)."""
    out = parent.clone()
    for i in range(out.shape[0]):
        if rng.random() < 0.4:
            sigma = float(rng.uniform(0.3, 1.0))
            r = np.arange(-2, 3)
            k = torch.tensor(np.exp(-(r**2) / (2 * sigma**2)), dtype=torch.float32)
            k = (k[:, None] * k[None, :]) / k.sum() ** 2
            img = F.pad(out[i : i + 1], (2, 2, 2, 2), mode="replicate")
            out[i] = F.conv2d(img, k.expand(3, 1, 5, 5).contiguous(), groups=3)[0]
        if rng.random() < 0.2:
            out[i] = _jpeg(out[i], int(rng.integers(60, 95)))
        if rng.random() < 0.5:  # generated parents carry grain; teach the model not to amplify it
            out[i] += torch.from_numpy(rng.normal(0, rng.uniform(0.005, 0.04), out[i].shape).astype(np.float32))
    return out.clamp(-1.0, 1.0)


def _jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    arr = ((img.permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(back).permute(2, 0, 1) / 127.5 - 1.0


def iter_images(root: Path, spec: SourceSpec) -> Iterator[Path]:
    """Image files of a source in a stable order, at most spec.max_images (evenly spread)."""
    paths = sorted(p for p in root.glob(spec.pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
    if spec.max_images and len(paths) > spec.max_images:
        step = len(paths) / spec.max_images
        paths = [paths[int(i * step)] for i in range(spec.max_images)]
    yield from paths


def split_east(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training part, held-out eastern fifth) of an image from a source too small to hold out whole images."""
    cut = int(img.shape[1] * 0.8)
    return img[:, :cut], img[:, cut:]


def build_datasets(data: list[str], crop_px: int, progress: bool = True) -> tuple[TripleDataset, TripleDataset]:
    """Training and validation datasets from --data arguments, split by source image."""
    train, val = TripleDataset(crop_px), TripleDataset(crop_px)
    jobs = []
    for root, spec in sources_from_args(data):
        paths = list(iter_images(root, spec))
        jobs += [(p, spec, len(paths) >= MIN_IMAGES_FOR_IMAGE_SPLIT) for p in paths]
    for path, spec, by_image in tqdm(jobs, desc="loading imagery", disable=not progress, unit="img"):
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB"))
        if by_image:
            (val if is_validation(path) else train).add_image(img, spec.m_per_px, spec.nodata_black)
        else:  # too few images to hold some out: hold out the eastern fifth of each instead
            west, east = split_east(img)
            train.add_image(west, spec.m_per_px, spec.nodata_black)
            val.add_image(east, spec.m_per_px, spec.nodata_black)
    if not train.levels:
        raise ValueError("no training imagery found")
    return train, val
