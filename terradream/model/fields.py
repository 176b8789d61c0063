"""Field parcels of the structure field: rotated strips per district, parcels of their own length, farm blocks
growing one crop, and hedgerows or tracks on their edges.

A pixel about a parcel wide or wider shows what the next zoom's pixels average to (four samples at their centres),
not a point sample: the cascade's exact projection keeps every parent's 2x2 means, so a coarse zoom's error would
stay in every finer one. Everything is a pure function of (world seed, position), like the rest of the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from terradream.model.lattice import FIELD, Grid, coverage, hash2, merc, next_zoom_offsets, over, unit
from terradream.model.noise import splitmix64

_CROPS = np.array([[0.33, 0.42, 0.20], [0.45, 0.50, 0.26], [0.62, 0.56, 0.34], [0.52, 0.43, 0.30],
                   [0.40, 0.36, 0.27], [0.28, 0.37, 0.18], [0.70, 0.64, 0.42], [0.47, 0.47, 0.33]], np.float32)
BLOCK_CROP_SHARE = 0.6  # share of a farm block's parcels that grow the block's crop
FIELD_ALPHA = 0.9  # how much of the parent's colour a crop covers (the rest shows through)
TRACK = (0.63, 0.58, 0.50)  # a farm track, pale against the fields
# Field parcels from pixels this fine on (a parcel is half a pixel to a pixel): from there on every zoom holds what
# the parcels under its pixels average to, so the cascade's 2x2 means carry their colours on to finer zooms.
FIELDS_MAX_PX_M = 700.0
SUPERSAMPLED_PX_M = 100.0  # pixels coarser than this (about a parcel) average four samples, at the next zoom's pixels


# Random sizes drawn as (lowest, span above it): strip width per district (ground metres), parcel length over width
# per district, and a factor on that length per strip
PARCEL_WIDTH_M, PARCEL_ASPECT, STRIP_LENGTH_FACTOR = (150.0, 450.0), (1.0, 0.8), (0.6, 0.8)
SPLIT_SHARE = 0.4  # parcels split along their strip into two fields
FARM_BLOCK = (3, 2)  # strips by parcels (along each strip) of a farm block


@dataclass(frozen=True)
class ParcelDistricts:
    """Per-point district values the parcels read (N,): hash, its re-mix for farm blocks, strip width, and the
    cosine and sine of the strips' angle."""

    rb: np.ndarray
    block_key: np.ndarray
    width: np.ndarray
    cos: np.ndarray
    sin: np.ndarray


def _parcels_at(x: np.ndarray, y: np.ndarray, d: ParcelDistricts, edge_px_m: float | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop colour (N, 3) of the parcels at points x, y (N,), and their edge coverage for pixels edge_px_m wide
    (None: not asked for)."""
    rb, width = d.rb, d.width
    u, v = x * d.cos + y * d.sin, -x * d.sin + y * d.cos
    a = np.floor(u / width)
    ai = a.astype(np.int64)
    strip = hash2(rb, ai, 0)
    length = (width * (PARCEL_ASPECT[0] + PARCEL_ASPECT[1] * unit(rb, 1))
              * (STRIP_LENGTH_FACTOR[0] + STRIP_LENGTH_FACTOR[1] * unit(strip, 1)))
    shift = unit(strip, 0) * length
    b = np.floor((v + shift) / length)
    bi = b.astype(np.int64)
    pb = hash2(rb, ai, bi)
    fu = u - a * width
    split = unit(pb, 2) < SPLIT_SHARE
    far = split & (fu > width / 2)
    pb[far] = splitmix64(pb[far])  # the far half of a split parcel: a field of its own
    # Some parcels of a farm block grow the block's crop, so crops vary on two scales, as farms and rotations make
    # them, and the rest any crop: neighbouring fields mostly differ.
    block_a, block_b = np.floor(a / FARM_BLOCK[0]), np.floor(b / FARM_BLOCK[1])  # a, b are whole: exact
    block = (unit(hash2(d.block_key, block_a, block_b), 0) * len(_CROPS)).astype(np.int64)
    own = (unit(pb, 0) * len(_CROPS)).astype(np.int64)
    crop = _CROPS[np.where(unit(pb, 3) < BLOCK_CROP_SHARE, block, own)]
    crop *= (0.85 + 0.3 * unit(pb, 1))[..., None]
    if edge_px_m is None:
        return crop, None
    du = np.minimum(fu, width - fu)
    du = np.where(split, np.minimum(du, np.abs(fu - width / 2)), du)
    fv = v + shift - b * length
    dv = np.minimum(fv, length - fv)
    return crop, coverage(np.minimum(du, dv), merc(2.0), edge_px_m)


def parcels(g: Grid, rb: np.ndarray, theta: np.ndarray, scale: np.ndarray, where: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Crop colour (H, W, 3) and edge coverage (H, W) of the field parcels at the grid's pixels that `where` (H, W)
    selects (zero elsewhere). Strips share their district's width (times its scale); each strip has its own parcel
    length, and some parcels are split along the strip in two.

    A pixel about a parcel wide or wider shows the mean of four samples at the next zoom's pixel centres in it: what
    that zoom's pixels average to, as the exact projection onto the parent will insist. A point sample would differ,
    and the difference would stay in the 2x2 means of every finer zoom, blurring and streaking the fields."""
    rows, cols = np.nonzero(where)
    x, y, rb, theta_at = g.x[cols], g.y[rows], rb[rows, cols], theta[rows, cols]
    width = (merc(PARCEL_WIDTH_M[0]) + unit(rb, 0) * merc(PARCEL_WIDTH_M[1])) * scale[rows, cols]
    d = ParcelDistricts(rb, splitmix64(rb ^ np.uint64(FIELD["block"])), width, np.cos(theta_at), np.sin(theta_at))
    crops, edges = np.zeros((*where.shape, 3), np.float32), np.zeros(where.shape, np.float32)
    if g.px_m <= merc(SUPERSAMPLED_PX_M):
        crops[rows, cols], edges[rows, cols] = _parcels_at(x, y, d, g.px_m)
        return crops, edges
    # (edges, a few metres wide, would tint under 3 % of such a pixel: none are drawn)
    crop = sum(_parcels_at(x + dx, y + dy, d, None)[0] for dx, dy in next_zoom_offsets(g.px_m))
    crops[rows, cols] = crop * np.float32(0.25)
    return crops, edges


def paint_fields(g: Grid, rb: np.ndarray, theta: np.ndarray, scale: np.ndarray, c: np.ndarray, farm: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Field parcels (parcels) in rotated strips per district (hash rb), with hedgerows or tracks on their edges."""
    crop, edge = parcels(g, rb, theta, scale, farm > 0)
    c = over(c, farm * FIELD_ALPHA, crop)
    edge *= farm
    hedge = unit(rb, 2) < 0.5
    edge_colour = np.where(hedge[..., None], np.array([0.16, 0.24, 0.12], np.float32), np.array(TRACK, np.float32))
    return c + (edge * 0.8)[..., None] * (edge_colour - c), edge * hedge
