"""Waves on open water: trains of wind waves and swell, so water is not a flat wash from about z13 on.

Each train is a plane wave of one length and heading around the world's wind, its height gathered into groups by slow
noise, as wave groups are. Light off a wave's face facing the sky brightens it and the face away darkens it; the sum
of the trains is drawn on water as a brightness swing. Trains shorter than WAVE_MIN_PX pixels are left out (their
area mean is zero, which is what the pixel shows), so each joins the cascade at the zoom where it is a few pixels
long. Every value is a function of world seed and global position: the phase of a train is computed from a pixel's
own Mercator coordinates in float64, so a crest is where it is in every window.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from terradream.model.lattice import FIELD, STREAM_STRUCTURE, Grid, hash2, merc, unit, value_noise
from terradream.model.noise import stream_key

WAVE_M = (1.5, 80.0)  # the shortest and longest waves drawn (ground metres)
TRAINS_PER_OCTAVE = 5  # wave trains per doubling of wavelength, at headings around the wind
HEADING_SPREAD = 0.9  # radians either side of the wind a train may run
WAVE_MIN_PX = 2.5  # trains shorter than this many pixels are left out
STEEPNESS_FALLOFF = 0.25  # a train shows as (shortest wavelength / its wavelength) to this power
GROUP_LENGTHS = 3.0  # a train's groups are about this many of its wavelengths long
WAVE_RELIEF = 0.3  # how far a wave's face turns the water's colour towards the sky's reflection, where seas are high
SEA_STATE_M = 3000.0  # how rough the water is changes over about this distance (ground metres) ...
SEA_STATE = (0.35, 1.0)  # ... between these shares of WAVE_RELIEF
STRIP_ROWS = 64  # rows painted at a time, each on the columns where it has water
SKY = np.array([0.55, 0.62, 0.70], np.float32)  # what a wave's face towards the sky reflects, against the water's colour


@cache
def wave_trains(seed: int) -> list[tuple[float, float, float]]:
    """The world's wave trains, longest first: (wavelength in Mercator metres, heading in radians, phase).

    >>> trains = wave_trains(7)
    >>> len(trains) == TRAINS_PER_OCTAVE * math.ceil(math.log2(WAVE_M[1] / WAVE_M[0]))
    True
    """
    key = stream_key(seed, STREAM_STRUCTURE, FIELD["wave"])
    count = math.ceil(math.log2(WAVE_M[1] / WAVE_M[0])) * TRAINS_PER_OCTAVE
    wind = 2 * math.pi * float(unit(hash2(key, np.zeros(1), 0))[0])
    bits = hash2(key, np.ones(count), np.arange(count))
    lengths = merc(WAVE_M[1]) * 2.0 ** (-(np.arange(count) + unit(bits, 0)) / TRAINS_PER_OCTAVE)
    headings = wind + HEADING_SPREAD * (2 * unit(bits, 1) - 1)
    phases = 2 * math.pi * unit(bits, 2)
    return [(float(a), float(b), float(c)) for a, b, c in zip(lengths, headings, phases, strict=True)]


def drawn_trains(seed: int, px_m: float) -> list[tuple[float, float, float]]:
    """The world's wave trains at least WAVE_MIN_PX pixels of px_m (Mercator metres) long: those drawn at that zoom.

    >>> len(drawn_trains(7, 300.0)), len(drawn_trains(7, 0.3)) == len(wave_trains(7))
    (0, True)
    """
    return [train for train in wave_trains(seed) if train[0] >= WAVE_MIN_PX * px_m]


def waves(seed: int, g: Grid) -> np.ndarray:
    """The waves' brightness swing over a window (H, W) in (-1, 1): zero where every train is shorter than
    WAVE_MIN_PX pixels."""
    total = np.zeros((len(g.y), len(g.x)), np.float32)
    for i, (length, heading, phase) in enumerate(drawn_trains(seed, g.px_m)):
        k = 2 * math.pi / length
        # cos(kx x + ky y + phase) from the four 1-D terms: cheap, and each pixel's value depends on its x and y only
        ax, ay = k * math.cos(heading) * g.x, k * math.sin(heading) * g.y + phase
        crest = np.outer(np.cos(ay), np.cos(ax)) - np.outer(np.sin(ay), np.sin(ax))
        groups = value_noise(stream_key(seed, STREAM_STRUCTURE, FIELD["wave"], i), g.x, g.y, GROUP_LENGTHS * length)
        total += (crest * (groups * groups) * (3.0 * steepness(length))).astype(np.float32)
    norm = math.sqrt(sum(steepness(length) ** 2 for length, _, _ in wave_trains(seed)))
    return np.tanh(total / np.float32(norm))


def steepness(length_m: float) -> float:
    """How strongly a train of this wavelength (Mercator metres) shows, against the shortest: long swell is gentler
    than the chop on it, so open water reads calmer from afar.

    >>> round(steepness(merc(WAVE_M[0])), 3), round(steepness(merc(WAVE_M[0]) * 16), 3)
    (1.0, 0.5)
    """
    return (merc(WAVE_M[0]) / length_m) ** STEEPNESS_FALLOFF


def paint_waves(seed: int, g: Grid, c: np.ndarray, wet: np.ndarray) -> np.ndarray:
    """Waves over the water share wet (H, W) of c (H, W, 3): faces towards the sky reflect it, faces away darken.
    They are computed strip by strip of rows, on the columns of each strip that hold water (the same numbers: each
    is per pixel), so a river across a window costs about what its own pixels do."""
    out = c
    if not drawn_trains(seed, g.px_m):
        return out
    for top in range(0, wet.shape[0], STRIP_ROWS):
        strip = wet[top : top + STRIP_ROWS] > 0
        if not strip.any():
            continue
        (rows, cols), sub = Grid(g.x, g.y[top : top + STRIP_ROWS], g.px_m).box(strip)
        box = (slice(top + rows.start, top + rows.stop), cols)
        swing = waves(seed, sub)
        state = value_noise(stream_key(seed, STREAM_STRUCTURE, FIELD["sea_state"]), sub.x, sub.y, merc(SEA_STATE_M))
        share = np.float32(WAVE_RELIEF) * (SEA_STATE[0] + (SEA_STATE[1] - SEA_STATE[0]) * state) * swing * wet[box]
        out = c.copy() if out is c else out
        out[box] += share[..., None] * (SKY - out[box])
    return out
