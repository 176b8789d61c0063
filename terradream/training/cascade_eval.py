"""Realism along the cascade: tiles generated from the root down (the path a user sees) against held-out real imagery.

For each zoom band, blocks of tiles at a few places are rendered by a cold cascade from the world's root, cut into
non-overlapping crops, and compared with crops of the held-out split of real imagery at the nearest ground resolution:
a classifier two-sample test on structure features (0.5 = indistinguishable), with a real-vs-real control (two groups
of held-out images) and the no-generation baseline (the root imagery upsampled bicubically to the band's zoom), and a
Frechet distance on an aerial-imagery ResNet's features. Nothing here trains or tunes anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mercantile
import numpy as np
import torch
from PIL import Image

from terradream.core.keys import TileKey
from terradream.core.tiles import TILE_SIZE_PX, meters_per_pixel
from terradream.model.cascade import Cascade, gather_px
from terradream.training.dataset import (
    MIN_IMAGES_FOR_IMAGE_SPLIT,
    area_downsample2_np,
    is_validation,
    iter_images,
    sources_from_args,
    split_east,
)
from terradream.training.evaluate import swd
from terradream.training.realism import MIN_CROP_PX, frechet_distance, structure_features, two_sample_accuracy

# Three kinds of land a user zooms into: a coast (real shorelines on earth), farmland, mountains.
PLACES: dict[str, tuple[float, float]] = {"coast": (-9.15, 38.69), "farmland": (0.60, 43.65),
                                          "mountains": (7.65, 45.95)}
BANDS = (9, 12, 15, 18)


@dataclass
class RealCrops:
    """Held-out real crops at one resolution, with the image each came from (for the real-vs-real control)."""

    m_per_px: float
    crops: list[np.ndarray] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Two real sets from different images (alternating images), or the two halves of one image's crops."""
        ids = sorted(set(self.image_ids))
        arr = np.stack(self.crops)
        if len(ids) >= 2:
            first = {i for k, i in enumerate(ids) if k % 2 == 0}
            mask = np.array([i in first for i in self.image_ids])
            return arr[mask], arr[~mask]
        half = len(arr) // 2
        return arr[:half], arr[half:]


def held_out_images(data: str, eval_only: tuple[str, ...] = ()) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, float]]:
    """(image id, RGB uint8, validity mask or None, m/px) of the held-out part of every source image: whole images
    in the validation hash split, or the eastern fifth of sources too small to split by image (as training does),
    plus every image of the eval_only sources (DIR:MPP folders never used in training; black is no-data)."""
    image_id = 0
    sources = [(root, spec, False) for root, spec in sources_from_args([data])]
    sources += [(root, spec, True) for root, spec in sources_from_args(list(eval_only))]
    for root, spec, whole in sources:
        paths = list(iter_images(root, spec))
        by_image = len(paths) >= MIN_IMAGES_FOR_IMAGE_SPLIT
        for path in paths:
            if not whole and by_image and not is_validation(path):
                continue
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB"))
            if not whole and not by_image:
                img = split_east(img)[1]
            valid = img.max(axis=2) > 0 if spec.nodata_black or whole else None
            yield image_id, img, valid, spec.m_per_px
            image_id += 1


def real_crops(data: str, target_mpp: float, crop_px: int, max_log2_off: float = 0.6,
               eval_only: tuple[str, ...] = ()) -> RealCrops:
    """Non-overlapping held-out crops at each source's power-of-two downsample nearest to target_mpp, from every
    source that gets within 2**max_log2_off of it; m_per_px is their geometric mean."""
    out, logs = RealCrops(target_mpp), []
    for image_id, img, valid, mpp in held_out_images(data, eval_only):
        k = max(0, round(math.log2(target_mpp / mpp)))
        if abs(math.log2(target_mpp / (mpp * 2**k))) > max_log2_off:
            continue
        if min(img.shape[:2]) >> k < crop_px:
            continue
        pixels, ok = img.astype(np.float32), None if valid is None else valid.astype(np.float32)[..., None]
        for _ in range(k):
            pixels = area_downsample2_np(pixels)
            ok = None if ok is None else area_downsample2_np(ok)
        h, w = pixels.shape[:2]
        for y in range(0, h - crop_px + 1, crop_px):
            for x in range(0, w - crop_px + 1, crop_px):
                if ok is not None and ok[y : y + crop_px, x : x + crop_px].mean() < 0.99:
                    continue
                out.crops.append(np.round(pixels[y : y + crop_px, x : x + crop_px]).astype(np.uint8))
                out.image_ids.append(image_id)
                logs.append(math.log2(mpp * 2**k))
    if logs:
        out.m_per_px = float(2 ** np.mean(logs))
    return out


def block_keys(world: str, z: int, lon: float, lat: float, side: int) -> list[TileKey]:
    """side x side tiles around a place (the place's tile in the middle)."""
    t = mercantile.tile(lon, lat, z)
    x0, y0 = t.x - side // 2, t.y - side // 2
    return [TileKey(world, z, (x0 + i) % (1 << z), y0 + j) for j in range(side) for i in range(side)]


def cut_crops(tiles: list[np.ndarray], side: int, crop_px: int) -> list[np.ndarray]:
    """Non-overlapping crops of a side x side mosaic of tiles (row-major keys)."""
    rows = [np.concatenate(tiles[j * side : (j + 1) * side], axis=1) for j in range(side)]
    mosaic = np.concatenate(rows, axis=0)
    n = mosaic.shape[0] // crop_px
    return [mosaic[y * crop_px : (y + 1) * crop_px, x * crop_px : (x + 1) * crop_px]
            for y in range(n) for x in range(n)]


def bicubic_from_root(cascade: Cascade, key: TileKey) -> np.ndarray:
    """The no-generation baseline: the world's root imagery under a tile, upsampled bicubically to its zoom."""
    world = cascade.worlds.get(key.world)
    rz = world.root_zoom
    scale = 1 << (key.z - rz)
    px0, py0 = key.x * TILE_SIZE_PX / scale, key.y * TILE_SIZE_PX / scale  # tile origin in root pixels
    pad = 3
    c0, r0 = int(math.floor(px0)) - pad, int(math.floor(py0)) - pad
    n = int(math.ceil(TILE_SIZE_PX / scale)) + 2 * pad + 1
    world_px = TILE_SIZE_PX << rz
    rows, cols = np.arange(r0, r0 + n), np.arange(c0, c0 + n)
    under = {TileKey(key.world, rz, int(tx), int(ty)): world.root_tile(rz, int(tx), int(ty))
             for ty in np.unique(np.clip(rows, 0, world_px - 1) // TILE_SIZE_PX)
             for tx in np.unique(np.mod(cols, world_px) // TILE_SIZE_PX)}
    patch = gather_px(under, key.world, rz, rows, cols)
    up_scale = min(scale, 64)  # beyond 64x a bicubic patch of one tile is flat anyway
    up = np.asarray(Image.fromarray(patch).resize((n * up_scale, n * up_scale), Image.Resampling.BICUBIC))
    off_x = (px0 - c0) * up_scale
    off_y = (py0 - r0) * up_scale
    span = TILE_SIZE_PX * up_scale / scale
    box = (off_x, off_y, off_x + span, off_y + span)
    return np.asarray(Image.fromarray(up).resize((TILE_SIZE_PX, TILE_SIZE_PX), Image.Resampling.BICUBIC, box=box))


@dataclass
class BandReport:
    """One zoom band of the cascade evaluation."""

    zoom: int
    crop_px: int
    m_per_px_generated: float
    m_per_px_real: float
    n: int
    acc_model: float
    acc_control: float
    acc_bicubic: float
    fd_model: float
    fd_control: float
    fd_bicubic: float
    swd_model: float
    swd_bicubic: float
    samples: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_cascade(cascade: Cascade, data: str, features: Callable[[np.ndarray], np.ndarray],
                     world: str = "earth", places: dict[str, tuple[float, float]] | None = None,
                     bands: tuple[int, ...] = BANDS, side: int = 2, crop_px: int = 64, min_crops: int = 16,
                     eval_only: tuple[str, ...] = (),
                     progress: Callable[[str], None] = print) -> list[BandReport]:
    """Render side x side tiles per place and band from the root down; compare with held-out real crops."""
    places = places or PLACES
    reports = []
    for z in bands:
        mpp = float(np.mean([meters_per_pixel(z, lat) for _, lat in places.values()]))
        size = crop_px
        real = real_crops(data, mpp, size, eval_only=eval_only)
        if len(real.crops) < 2 * min_crops:  # scarce real imagery at this resolution: smaller crops, as small as the
            size = max(crop_px * 3 // 4, MIN_CROP_PX)  # structure statistics' coarsest scale allows
            real = real_crops(data, mpp, size, eval_only=eval_only)
        if len(real.crops) < 2 * min_crops:
            progress(f"z{z}: only {len(real.crops)} held-out real crops near {mpp:.2f} m/px; skipped")
            continue
        fake, bicubic = [], []
        for name, (lon, lat) in places.items():
            keys = block_keys(world, z, lon, lat, side)
            tiles = cascade.render(keys)
            fake += cut_crops([tiles[k] for k in keys], side, size)
            bicubic += cut_crops([bicubic_from_root(cascade, k) for k in keys], side, size)
            progress(f"z{z} {name}: rendered {len(keys)} tiles ({cascade.stats.windows} windows so far)")
        real_a, real_b = real.groups()
        n = min(len(real_a), len(real_b), len(fake))
        rng = np.random.default_rng(z)  # equal set sizes for every test
        ra, rb, fk, bc = (np.stack(list(arr))[rng.permutation(len(arr))[:n]] for arr in (real_a, real_b, fake, bicubic))
        s = {k: structure_features(v) for k, v in (("a", ra), ("b", rb), ("f", fk), ("c", bc))}
        d = {k: features(v) for k, v in (("a", ra), ("b", rb), ("f", fk), ("c", bc))}
        reports.append(BandReport(
            z, size, mpp, real.m_per_px, n,
            two_sample_accuracy(s["a"], s["f"]), two_sample_accuracy(s["a"], s["b"]), two_sample_accuracy(s["a"], s["c"]),
            frechet_distance(d["a"], d["f"]), frechet_distance(d["a"], d["b"]), frechet_distance(d["a"], d["c"]),
            swd(_signed(ra), _signed(fk)), swd(_signed(ra), _signed(bc)),
            {"real": ra[:6], "model": fk[:6], "bicubic": bc[:6]},
        ))
    return reports


def _signed(crops: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S, 3) crops as [-1, 1] tensors (N, 3, S, S), as the SWD takes them."""
    return torch.from_numpy(crops.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0


def format_reports(reports: list[BandReport]) -> str:
    """A Markdown table of the cascade evaluation."""
    lines = ["| zoom | m/px generated | m/px real | crops per set (px) | accuracy model | accuracy real-vs-real | "
             "accuracy bicubic | FD model | FD real-vs-real | FD bicubic | FD model / bicubic | SWD model / bicubic |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| z{r.zoom} | {r.m_per_px_generated:.2f} | {r.m_per_px_real:.2f} | {r.n} ({r.crop_px}) | {r.acc_model:.2f} | "
                     f"{r.acc_control:.2f} | {r.acc_bicubic:.2f} | {r.fd_model:.1f} | {r.fd_control:.1f} | "
                     f"{r.fd_bicubic:.1f} | {r.fd_model / max(r.fd_bicubic, 1e-9):.2f} | "
                     f"{r.swd_model / max(r.swd_bicubic, 1e-9):.2f} |")
    return "\n".join(lines)


def sample_sheet(reports: list[BandReport], path: Path) -> None:
    """One row per band: real crops | model crops | bicubic crops."""
    rows = []
    for r in reports:
        cells = [np.concatenate(list(r.samples[k][:4]), axis=1) for k in ("real", "model", "bicubic")]
        gap = np.full((cells[0].shape[0], 8, 3), 255, np.uint8)
        rows.append(np.concatenate([cells[0], gap, cells[1], gap, cells[2]], axis=1))
    if rows:
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        Image.fromarray(np.concatenate(rows, axis=0)).save(path)
