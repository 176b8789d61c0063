"""Procedural planets: an equirectangular colour map grown from a world seed (continents, oceans, ice, deserts).

The terrain is fractal value noise sampled on the unit sphere, so it is seamless at the antimeridian and sane at the
poles. Every random number comes from the coordinate hash in noise.py, so a world name always gives the same planet.
"""

from __future__ import annotations

import numpy as np

from terradream.model.noise import STREAM_PROCEDURAL, splitmix64, stream_key

PLANET_WIDTH_PX = 2048  # equirectangular width; height is half. 2048 px gives root zoom 3 (~19.6 km/px)
_BASE_GRID_PX = 1024  # noise is evaluated at this width, then upsampled


def _lattice_values(key: np.uint64, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
    """Uniform values in [-1, 1) at integer 3-D lattice points."""
    h = splitmix64(ix.astype(np.uint64) ^ key)
    h = splitmix64(h ^ iy.astype(np.uint64))
    h = splitmix64(h ^ iz.astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * (2.0**-52) - 1.0


def value_noise_3d(key: np.uint64, p: np.ndarray) -> np.ndarray:
    """Smooth (quintic-faded trilinear) value noise at 3-D points p of shape (..., 3)."""
    cell = np.floor(p)
    f = p - cell
    f = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)
    i = cell.astype(np.int64)
    out = np.zeros(p.shape[:-1])
    for dx in (0, 1):
        wx = f[..., 0] if dx else 1.0 - f[..., 0]
        for dy in (0, 1):
            wy = f[..., 1] if dy else 1.0 - f[..., 1]
            for dz in (0, 1):
                wz = f[..., 2] if dz else 1.0 - f[..., 2]
                out += wx * wy * wz * _lattice_values(key, i[..., 0] + dx, i[..., 1] + dy, i[..., 2] + dz)
    return out


def fbm_sphere(seed: int, field: int, xyz: np.ndarray, base_freq: float, octaves: int) -> np.ndarray:
    """Fractal Brownian motion of value noise on sphere points xyz (..., 3), roughly in [-1, 1]."""
    total = np.zeros(xyz.shape[:-1])
    amp, freq, norm = 1.0, base_freq, 0.0
    for octave in range(octaves):
        key = stream_key(seed, STREAM_PROCEDURAL, field, octave)
        total += amp * value_noise_3d(key, xyz * freq + 17.0 * octave)
        norm += amp
        amp *= 0.5
        freq *= 2.0
    return total / norm


def _sphere_grid(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere points and latitudes (degrees) of an equirectangular grid of the given width."""
    height = width // 2
    lon = (np.arange(width) + 0.5) / width * 2 * np.pi - np.pi
    lat = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
    lon_g, lat_g = np.meshgrid(lon, lat)
    xyz = np.stack([np.cos(lat_g) * np.cos(lon_g), np.cos(lat_g) * np.sin(lon_g), np.sin(lat_g)], axis=-1)
    return xyz, np.degrees(lat_g)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)[..., None]
    return a * (1.0 - t) + b * t


_DEEP, _SHALLOW = np.array([8.0, 22.0, 58.0]), np.array([30.0, 78.0, 118.0])
_FOREST, _GRASS, _DESERT = np.array([38.0, 72.0, 34.0]), np.array([96.0, 112.0, 62.0]), np.array([196.0, 170.0, 124.0])
_ROCK, _SNOW = np.array([118.0, 106.0, 92.0]), np.array([236.0, 238.0, 242.0])


def planet_equirect(seed: int, width: int = PLANET_WIDTH_PX) -> np.ndarray:
    """An Earth-like colour map for a seed: uint8 (width/2, width, 3), longitude -180..180, latitude 90..-90."""
    xyz, lat = _sphere_grid(_BASE_GRID_PX)
    elevation = fbm_sphere(seed, 0, xyz, 1.6, 7)
    moisture = fbm_sphere(seed, 1, xyz, 2.2, 4)
    sea = np.quantile(elevation, 0.66)
    land = elevation > sea
    depth = np.clip((sea - elevation) / 0.35, 0.0, 1.0)
    ocean = _lerp(_SHALLOW, _DEEP, np.sqrt(depth))
    height = np.clip((elevation - sea) / 0.4, 0.0, 1.0)
    wet = np.clip(moisture * 1.8 + 0.5 - np.abs(np.abs(lat) - 25.0) / 90.0, 0.0, 1.0)
    lowland = _lerp(_lerp(_DESERT, _GRASS, wet * 2.0), _FOREST, wet * 2.0 - 1.0)
    ground = _lerp(_lerp(lowland, _ROCK, (height - 0.35) / 0.35), _SNOW, (height - 0.75) / 0.2)
    rgb = np.where(land[..., None], ground, ocean)
    ice = np.clip((np.abs(lat) - 68.0 + 6.0 * moisture) / 6.0, 0.0, 1.0)
    rgb = _lerp(rgb, _SNOW, ice)
    small = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return _upsample_equirect(small, width)


def _upsample_equirect(img: np.ndarray, width: int) -> np.ndarray:
    """Bilinear resize of an equirectangular map to a new width, wrapping in longitude."""
    import torch
    import torch.nn.functional as F

    if img.shape[1] == width:
        return img
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    pad = F.pad(t, (1, 1, 0, 0), mode="circular")
    scale = width / img.shape[1]
    up = F.interpolate(pad, size=(width // 2, width + int(2 * scale)), mode="bilinear", align_corners=False)
    up = up[:, :, :, int(scale) : int(scale) + width]
    return up[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
