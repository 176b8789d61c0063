"""Web Mercator tile geometry for 256 px XYZ tiles: small pure functions with units in their names."""

from __future__ import annotations

import math

import mercantile
import numpy as np

from terradream.core.errors import TileOutOfRange

TILE_SIZE_PX = 256
EARTH_EQUATOR_M_PER_PX_Z0 = 156543.034  # 2*pi*6378137 / 256: ground metres per pixel at z=0 on the equator
MAX_SUPPORTED_ZOOM = 30  # global pixel indices stay well inside int64 up to here


def world_size_px(z: int) -> int:
    """Width (and height) of the whole Web Mercator world at zoom z, in pixels."""
    return TILE_SIZE_PX << z


def tile_center_lnglat(z: int, x: int, y: int) -> tuple[float, float]:
    """(longitude, latitude) in degrees of the centre of tile (z, x, y)."""
    return global_px_to_lnglat(z, (x + 0.5) * TILE_SIZE_PX, (y + 0.5) * TILE_SIZE_PX)


def tile_bounds_lnglat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of tile (z, x, y) in degrees."""
    b = mercantile.bounds(x, y, z)
    return (b.west, b.south, b.east, b.north)


def tile_bounds_mercator_m(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of tile (z, x, y) in EPSG:3857 metres."""
    b = mercantile.xy_bounds(x, y, z)
    return (b.left, b.bottom, b.right, b.top)


def global_px_to_lnglat(z: int, px: float, py: float) -> tuple[float, float]:
    """(longitude, latitude) in degrees of global pixel coordinates (px, py) at zoom z."""
    size = world_size_px(z)
    lon = px / size * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * py / size))))
    return lon, lat


def latitude_of_rows_deg(z: int, rows: np.ndarray) -> np.ndarray:
    """Latitude in degrees of the centres of global pixel rows at zoom z (rows may lie beyond the poles' edge)."""
    size = float(world_size_px(z))
    rows_clamped = np.clip(rows.astype(np.float64) + 0.5, 0.0, size)
    return np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * rows_clamped / size))))


def meters_per_pixel(z: int, lat_deg: float | np.ndarray) -> float | np.ndarray:
    """Ground resolution in m/px at zoom z and latitude lat_deg: 156543.034 * cos(lat) / 2^z."""
    return EARTH_EQUATOR_M_PER_PX_Z0 * np.cos(np.radians(lat_deg)) / (1 << z)


def tile_meters_per_pixel(z: int, x: int, y: int) -> float:
    """Ground resolution in m/px of tile (z, x, y), taken at its centre's latitude."""
    return float(meters_per_pixel(z, tile_center_lnglat(z, x, y)[1]))


def validate_tile(z: int, x: int, y: int, maxzoom: int) -> None:
    """Raise TileOutOfRange unless 0 <= z <= maxzoom and 0 <= x, y < 2^z."""
    if not 0 <= z <= min(maxzoom, MAX_SUPPORTED_ZOOM):
        raise TileOutOfRange(f"zoom {z} is outside 0..{min(maxzoom, MAX_SUPPORTED_ZOOM)}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"tile x={x}, y={y} is outside 0..{n - 1} at zoom {z}")


def wrap_tile_x(z: int, x: int) -> int:
    """x wrapped at the antimeridian into [0, 2^z)."""
    return x % (1 << z)
