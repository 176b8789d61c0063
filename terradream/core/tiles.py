"""Web Mercator tile geometry for 256 px XYZ tiles: the one set of constants, and small pure functions.

Units are in the names. Every module that needs the tile size, the latitude limit or the extent of EPSG:3857 reads
them here.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import ArrayLike

from terradream.core.errors import TileOutOfRange

TILE_SIZE_PX = 256
EARTH_EQUATOR_M_PER_PX_Z0 = 156543.034  # 2*pi*6378137 / 256: ground metres per pixel at z=0 on the equator
WEB_MERCATOR_HALF_WORLD_M = 20037508.342789244  # pi * 6378137: half the side of the EPSG:3857 square
WEB_MERCATOR_MAX_LAT_DEG = 85.0511287798066  # atan(sinh(pi)): the latitude of the square's top edge
UV_LAT_CLAMP_DEG = 89.9  # lonlat_to_uv's clamp
MAX_SUPPORTED_ZOOM = 30  # global pixel indices stay well inside int64 up to here
WORLD_NAME_PATTERN = r"[a-z0-9-]{1,32}"  # world names: safe in URLs, file names and Redis keys
WORLD_NAME_RE = re.compile(rf"^{WORLD_NAME_PATTERN}$")


def world_size_px(z: int) -> int:
    """Width (and height) of the whole Web Mercator world at zoom z, in pixels."""
    return TILE_SIZE_PX << z


def latitude_of_rows_deg(z: int, rows: np.ndarray) -> np.ndarray:
    """Latitude in degrees of the centres of global pixel rows at zoom z (rows may lie beyond the poles' edge)."""
    size = float(world_size_px(z))
    return uv_to_lonlat(0.0, np.clip(rows.astype(np.float64) + 0.5, 0.0, size) / size)[1]


def lonlat_to_uv(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Web Mercator (u right, v down, the world in [0, 1]) of lon/lat degrees, as float64.

    Latitudes are clamped to 89.9 degrees, beyond the square's edge, so polar coastlines keep finite coordinates.

    >>> [float(a) for a in lonlat_to_uv(90.0, 0.0)]
    [0.75, 0.5]
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -UV_LAT_CLAMP_DEG, UV_LAT_CLAMP_DEG)
    return (lon + 180.0) / 360.0, 0.5 - np.arcsinh(np.tan(np.radians(lat))) / (2.0 * np.pi)


def uv_to_lonlat(u: ArrayLike, v: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat degrees of normalised Web Mercator coordinates: the inverse of lonlat_to_uv.

    >>> [round(float(a), 6) for a in uv_to_lonlat(0.75, 0.5)]
    [90.0, 0.0]
    """
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    return u * 360.0 - 180.0, np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * v))))


def meters_per_pixel(z: int, lat_deg: float | np.ndarray) -> float | np.ndarray:
    """Ground resolution in m/px at zoom z and latitude lat_deg: 156543.034 * cos(lat) / 2^z."""
    return EARTH_EQUATOR_M_PER_PX_Z0 * np.cos(np.radians(lat_deg)) / (1 << z)


def validate_tile(z: int, x: int, y: int, maxzoom: int) -> None:
    """Raise TileOutOfRange unless 0 <= z <= maxzoom and 0 <= x, y < 2^z."""
    if not 0 <= z <= min(maxzoom, MAX_SUPPORTED_ZOOM):
        raise TileOutOfRange(f"zoom {z} is outside 0..{min(maxzoom, MAX_SUPPORTED_ZOOM)}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"tile x={x}, y={y} is outside 0..{n - 1} at zoom {z}")


def area_mean2(img: np.ndarray) -> np.ndarray:
    """Exact 2x2 means of an (H, W, C) image, as floats (odd edges dropped): one level of an area pyramid."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    return img[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
