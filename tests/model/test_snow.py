"""Snow on mountains: split along the relief as much as the parent says at every zoom, valleys and grey scree left
alone, bare rock rougher than snow, and rugged mountains not farmed."""

import numpy as np
import pytest

from terradream.model.lattice import Grid, merc
from terradream.model.snow import (
    BLEND_MIN_PX_M,
    HEIGHT_QUANTILES,
    HEIGHT_SHARES,
    SNOW_REGION,
    paint_snowline,
    settled_share,
    snow_fraction,
)
from terradream.model.structure import layout
from terradream.model.terrain import ridge_slopes, shade_relief
from terradream.model.water import latlon_to_global_px

FOREST = np.array([0.12, 0.16, 0.10], np.float32)
SNOW = np.array([0.84, 0.86, 0.90], np.float32)


def alps(z: int, size: int = 128) -> Grid:
    row, col = latlon_to_global_px(z, 45.95, 7.65)
    return Grid.of_window(z, int(row) - size // 2, int(col) - size // 2, size, size)


def split(g: Grid, share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A uniform blur of snow and forest with this share of snow, painted with the relief: input, output, snow."""
    relief = ridge_slopes(3, g, local=True)
    assert relief is not None and relief.local is not None
    c = np.broadcast_to(FOREST + share * (SNOW - FOREST), (*relief.face.shape, 3)).astype(np.float32)
    shares = settled_share(snow_fraction(c), g.px_m)
    out, snow = paint_snowline(c.copy(), relief.local, shares, np.ones_like(shares))
    return c, out, snow


@pytest.mark.parametrize("z", [7, 9, 11])
@pytest.mark.parametrize("share", [0.3, 0.7])
def test_a_pale_blur_is_split_into_snow_and_bare_ground_keeping_its_share(z: int, share: float) -> None:
    """A pale mountain pixel is split into white snow on the heights and dark ground in the valleys, not painted as a
    haze, and about as much of it is snow as its brightness said (the cascade keeps its mean anyway), over a window
    a few of the widest valleys across."""
    c, out, snow = split(alps(z, 256 if z < 11 else 512), share)
    read = float(snow_fraction(c)[0, 0])
    assert abs(float(snow.mean()) - read) < 0.1
    lum = out.mean(-1)
    assert float(lum[snow > 0.9].mean()) - float(lum[snow < 0.1].mean()) > 0.4
    assert abs(float(lum.mean() - c.mean())) < 0.08


@pytest.mark.parametrize("z", [8, 10])  # (pixels coarse enough to be read as blends at both zooms)
def test_every_zoom_splits_snow_along_the_heights_its_parent_split_it_along(z: int) -> None:
    """A zoom lays snow on the same heights as the zoom above, refined: the finer split's 2x2 means follow the coarser
    one, so the cascade sharpens one snowline instead of starting a new speckle at every zoom."""
    row, col = latlon_to_global_px(z, 45.95, 7.65)
    r0, c0 = int(row) - 64, int(col) - 64
    masks = []
    for zoom, top, left, size in ((z, r0, c0, 128), (z + 1, 2 * r0, 2 * c0, 256)):
        relief = ridge_slopes(3, Grid.of_window(zoom, top, left, size, size), local=True)
        assert relief is not None and relief.local is not None
        half, grey = np.full((size, size), 0.5, np.float32), np.full((size, size, 3), 0.5, np.float32)
        masks.append(paint_snowline(grey, relief.local, half, np.ones_like(half))[1])
    coarse, fine = masks
    assert 0.3 < float(coarse.mean()) < 0.7
    means = fine.reshape(128, 2, 128, 2).mean(axis=(1, 3))
    assert float(np.corrcoef(coarse.ravel(), means.ravel())[0, 1]) > 0.9


@pytest.mark.parametrize("z", [9, 12, 15])
def test_a_snowline_is_sharp_at_every_zoom(z: int) -> None:
    """Snow gives way to bare ground within a pixel or two at every zoom, so each zoom's band sharpens the edge the
    cascade magnified (a line soft by a fixed height would spread over tens of pixels at fine zooms)."""
    relief = ridge_slopes(3, alps(z), local=True)
    assert relief is not None and relief.local is not None
    height = relief.local.height
    share = np.full(height.shape, 1.0 - np.interp(np.median(height), HEIGHT_QUANTILES[-1], HEIGHT_SHARES), np.float32)
    _, snow = paint_snowline(np.full((*height.shape, 3), 0.5, np.float32), relief.local, share, np.ones_like(share))
    assert 0.2 < float(snow.mean()) < 0.8  # the window holds a snowline
    d_row, d_col = np.gradient(snow / float(snow.max()))
    partial = (snow > 0.05 * snow.max()) & (snow < 0.95 * snow.max())
    assert float(np.median(np.hypot(d_row, d_col)[partial])) > 0.3  # per pixel across the line


def test_valleys_and_grey_scree_are_left_alone() -> None:
    """Ground that is not pale (valley fields, forest) is not touched, nor, on pixels finer than BLEND_MIN_PX_M, is a
    grey that reads as half snow: coarser zooms have split the snow there already, and it is scree."""
    g = alps(10)
    relief = ridge_slopes(3, g, local=True)
    assert relief is not None and relief.local is not None
    green = np.broadcast_to(np.array([0.30, 0.38, 0.20], np.float32), (128, 128, 3)).astype(np.float32)
    assert float(snow_fraction(green).max()) < SNOW_REGION[0]
    out, _ = paint_snowline(green.copy(), relief.local, snow_fraction(green), np.ones((128, 128), np.float32))
    np.testing.assert_array_equal(out, green)
    fine = alps(15)
    assert fine.px_m < merc(BLEND_MIN_PX_M)
    c, out, snow = split(fine, 0.4)
    np.testing.assert_array_equal(out, c)
    assert float(snow.max()) == 0.0


def test_a_snowfields_edge_is_split_again_at_fine_zooms() -> None:
    """On fine pixels, the pale edge of a snowfield (mostly snow, blurred by the coarser zooms) is split along the
    finer relief again, so the snowline stays sharp as the cascade magnifies it: where the parent's pale share puts
    the line inside the window, as coarser zooms leave it on ground of that height."""
    row, col = latlon_to_global_px(15, 45.95, 7.65)
    for step in range(40):  # the first window eastwards on mid slopes, where a pale share's line can fall
        g = Grid.of_window(15, int(row) - 128, int(col) - 128 + 256 * step, 256, 256)
        relief = ridge_slopes(3, g, local=True)
        assert relief is not None and relief.local is not None
        over = 1.0 - float(np.interp(np.median(relief.local.height), HEIGHT_QUANTILES[-1], HEIGHT_SHARES))
        if 0.4 < over < 0.8:
            break
    shares = np.linspace(0.5, 1.0, 101)  # the blend of snow and forest whose settled share puts the line there
    blends = FOREST + shares[:, None] * (SNOW - FOREST)
    share = float(shares[np.argmin(np.abs(settled_share(snow_fraction(blends), g.px_m) - over))])
    c, out, snow = split(g, share)
    assert 0.2 < float(snow.mean()) < 0.9
    lum = out.mean(-1)
    assert float(lum[snow > 0.9].mean()) - float(lum[snow < 0.1].mean()) > 0.3
def test_bare_rock_is_rougher_than_snow_or_forest() -> None:
    """The relief's short octaves shade pale bare ground (scree, rock) more than snow or forest: rock stays craggy at
    fine zooms while snowfields stay smooth (and do not speckle)."""
    g = alps(15)
    rugged = np.ones((128, 128), np.float32)

    def contrast(colour: np.ndarray) -> float:
        c = np.broadcast_to(colour, (128, 128, 3)).astype(np.float32)
        lum = shade_relief(3, g, c, snow_fraction(c), rugged).mean(-1)
        return float(lum.std() / lum.mean())

    scree = np.array([0.44, 0.43, 0.39], np.float32)
    assert contrast(scree) > 1.4 * max(contrast(SNOW), contrast(FOREST))  # (0.9 x as rough without the gain)


def test_rugged_mountains_are_not_farmed() -> None:
    """Fields and procedural towns keep to land that is not rugged: bare ground between snowfields is not farmland."""
    g = Grid.of_window(10, 4 * 92_000, 4 * 131_000, 128, 128)  # where parcels are drawn (test_structure)
    base = np.broadcast_to(np.array([0.36, 0.40, 0.26], np.float32), (128, 128, 3)).astype(np.float32)
    farmed = np.abs(np.diff(layout(7, g, base).mean(-1), axis=1))
    rugged = np.abs(np.diff(layout(7, g, base, rugged=np.ones((128, 128), np.float32)).mean(-1), axis=1))
    assert (farmed > 0.1).mean() > 0.03
    assert (rugged > 0.1).mean() < 0.2 * (farmed > 0.1).mean()


@pytest.mark.parametrize("rugged", [1.0, 0.6])
def test_sunlit_snow_brightens_little_at_any_ruggedness(rugged: float) -> None:
    """Slopes facing the light brighten snow by at most 2.5 % (a parent pixel that clips at white holds no detail at
    any finer zoom), however rugged the ground, while shaded slopes still darken."""
    g = alps(12)
    white = np.broadcast_to(SNOW, (128, 128, 3)).astype(np.float32)
    gain = shade_relief(3, g, white.copy(), snow_fraction(white), np.full((128, 128), rugged, np.float32)) / white
    assert float(gain.max()) <= 1.0251
    assert float(gain.min()) < 0.9


@pytest.mark.parametrize("share", [0.3, 0.7])
def test_snow_is_left_blended_where_no_local_octave_is_drawn_yet(share: float) -> None:
    """At the coarsest zooms (no local octave two pixels long) a pale pixel is not thresholded into all snow or all
    bare ground by its share: it stays the blend it is (shading aside) until the relief can split it."""
    g = alps(5, 64)
    c = np.broadcast_to(FOREST + share * (SNOW - FOREST), (64, 64, 3)).astype(np.float32)
    out = shade_relief(3, g, c.copy(), snow_fraction(c), np.ones((64, 64), np.float32))
    assert abs(float(out.mean() - c.mean())) < 0.045  # (shade darkens a little on average)


@pytest.mark.parametrize(("share", "bare_high"), [(0.3, False), (0.85, True)])
def test_snow_lies_on_the_heights_and_ice_fills_the_valleys_where_most_is_snow(share: float, bare_high: bool) -> None:
    """Where a mountain is partly snow, the snow is on its heights and the valleys are bare; where it is mostly
    snow, ice fills the valleys and the bare ground is on the crests (rock ridges over a glacier's basin)."""
    g = alps(9, 256)
    relief = ridge_slopes(3, g, local=True)
    assert relief is not None and relief.local is not None
    _, _, snow = split(g, share)
    height = relief.local.height
    bare_mean, snow_mean = float(height[snow < 0.1].mean()), float(height[snow > 0.9].mean())
    assert (bare_mean > snow_mean + 0.1) if bare_high else (bare_mean < snow_mean - 0.1)
