"""PNG codec: encoding several tiles side by side gives the bytes of encoding them one by one."""

from __future__ import annotations

import numpy as np

from terradream.cache.codec import decode_png, encode_png, encode_pngs


def test_encode_pngs_matches_one_by_one_and_round_trips() -> None:
    rng = np.random.default_rng(3)
    arrays = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(5)]
    arrays[1][:] = 7  # very compressible next to incompressible: different encode times, same order out
    pngs = encode_pngs(arrays)
    assert pngs == [encode_png(a) for a in arrays]
    assert all(np.array_equal(decode_png(p), a) for p, a in zip(pngs, arrays, strict=True))
