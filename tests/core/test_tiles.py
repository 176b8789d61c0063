"""Web Mercator conversions of terradream.core.tiles against mercantile, and their round trip."""

from __future__ import annotations

import mercantile
import numpy as np
import pytest

from terradream.core.tiles import lonlat_to_uv, uv_to_lonlat


@pytest.mark.parametrize(("lon", "lat"), [(-9.2, 38.7), (179.9, -60.0), (0.0, 85.0), (-180.0, 0.0)])
def test_uv_matches_mercantile_and_inverts(lon: float, lat: float) -> None:
    u, v = lonlat_to_uv(lon, lat)
    x_m, y_m = mercantile.xy(lon, lat)
    half = mercantile.xy(180.0, 0.0)[0]
    assert float(u) == pytest.approx((x_m + half) / (2 * half), abs=1e-12)
    assert float(v) == pytest.approx((half - y_m) / (2 * half), abs=1e-12)
    back = uv_to_lonlat(u, v)
    assert np.allclose(back, (lon, lat), atol=1e-9)
