"""Gaussian noise as a pure function of (world seed, zoom, stream, channel, global row, global column).

A counter-based hash (the splitmix64 finaliser, chained over the coordinates) gives 64 random bits per pixel; Box-Muller
turns them into a standard normal. Nothing here touches torch's or numpy's RNG state, so a window's noise is the same
whichever process, device or request order reads it, and two overlapping windows agree exactly where they overlap.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
# Normals are rounded to this grid so that a last-bit difference in a platform's log/cos cannot change the float32 value.
_QUANTUM = 2.0**-20

STREAM_INIT = 0  # the initial latent of the sampler
STREAM_PROCEDURAL = 1  # procedural planets' terrain fields


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective avalanche mix of uint64 values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN  # a new array: x is left as it is; the rest works in place (the hash runs over whole windows)
        z ^= z >> _S30
        z *= _M1
        z ^= z >> _S27
        z *= _M2
        z ^= z >> _S31
        return z


def world_seed(name: str) -> int:
    """A 64-bit seed derived from a world name (stable across machines and Python versions)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


@lru_cache(maxsize=65536)
def stream_key(seed: int, *fields: int) -> np.uint64:
    """Chain the seed and integer fields (zoom, stream, channel, ...) into one 64-bit key (remembered: a window asks
    for the same few hundred keys as the last one).

    Each field is absorbed through a full mix, so (seed s, stream 1) and (seed s+1, stream 0) do not alias.
    """
    key = splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    for field in fields:
        key = splitmix64(key ^ np.array([field & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    return key[0]


def hash_grid(key: np.uint64, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """64 random bits for every (row, col) of the outer product of integer rows and cols, shape (len(rows), len(cols))."""
    r = splitmix64(np.asarray(rows, dtype=np.int64).astype(np.uint64) ^ key)
    c = splitmix64(np.asarray(cols, dtype=np.int64).astype(np.uint64) * _M2)
    return splitmix64(r[:, None] ^ c[None, :])


def uniform_grid(key: np.uint64, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Uniform values in the open interval (0, 1) as float64 for every (row, col)."""
    bits = hash_grid(key, rows, cols)
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * (2.0**-53)


def _box_muller(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box-Muller's radius and angle from the two 32-bit halves of 64-bit hashes."""
    u1 = ((bits >> _S32).astype(np.float64) + 0.5) * (2.0**-32)
    u2 = ((bits & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * (2.0**-32)
    return np.sqrt(-2.0 * np.log(u1)), 2.0 * np.pi * u2


def _quantised(normal: np.ndarray) -> np.ndarray:
    return (np.round(normal / _QUANTUM) * _QUANTUM).astype(np.float32)


def gaussian_grid(key: np.uint64, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Standard-normal float32 values for every (row, col), via Box-Muller on the two 32-bit halves of one hash."""
    radius, angle = _box_muller(hash_grid(key, rows, cols))
    return _quantised(radius * np.cos(angle))


def gaussian_pair_grid(key: np.uint64, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent standard-normal grids from one hash per (row, col): Box-Muller's cosine (gaussian_grid's
    values) and its sine, for a third of the work of two grids."""
    radius, angle = _box_muller(hash_grid(key, rows, cols))
    return _quantised(radius * np.cos(angle)), _quantised(radius * np.sin(angle))


def noise_window(
    seed: int, z: int, stream: int, channels: int, row0: int, col0: int, height: int, width: int, wrap_cols: int
) -> np.ndarray:
    """Noise of shape (channels, height, width) for the window whose top-left global pixel is (row0, col0).

    Channels come in pairs from one key each (channel c even: the key of c; c + 1: its sine partner). Columns wrap
    modulo wrap_cols (the world's width at zoom z) so the field is continuous across the antimeridian; rows are used
    as they are (windows may reach past the poles' edge).
    """
    rows = np.arange(row0, row0 + height, dtype=np.int64)
    cols = np.mod(np.arange(col0, col0 + width, dtype=np.int64), wrap_cols)
    fields: list[np.ndarray] = []
    for c in range(0, channels, 2):
        key = stream_key(seed, z, stream, c)
        fields += gaussian_pair_grid(key, rows, cols) if c + 1 < channels else (gaussian_grid(key, rows, cols),)
    return np.stack(fields)
