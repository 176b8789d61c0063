"""The structure field and the context path: pure functions of global position, the same features at every zoom."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from terradream.core.keys import TileKey
from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.denoiser import TerraDenoiser
from terradream.model.lattice import Grid, merc, value_noise
from terradream.model.noise import stream_key, uniform_grid
from terradream.model.pipeline import TerraPipeline, WindowSpec
from terradream.model.structure import (
    DISTRICT_M,
    TREE_MAX_PX_M,
    TREE_TURN,
    _crown_light,
    _districts,
    _trees,
    land_cover,
    layout,
    paint_trees,
)
from terradream.model.testing import make_tiny_model
from terradream.model.waves import paint_waves
from terradream.model.worlds import WorldRegistry

FARMLAND = np.array([0.36, 0.40, 0.26])  # an olive-green parent: fields, roads, towns and trees may all appear


def paint(z: int, row0: int, col0: int, size: int, seed: int = 7) -> np.ndarray:
    """What the layout adds to a uniform farmland-coloured parent over a window."""
    base = np.broadcast_to(FARMLAND, (size, size, 3)).astype(np.float32)
    return layout(seed, Grid.of_window(z, row0, col0, size, size), base) - base


def test_layout_is_a_pure_function_of_global_position() -> None:
    z, row0, col0 = 15, 11_862_000, 16_834_000
    a = paint(z, row0, col0, 256)
    b = paint(z, row0 + 96, col0 + 160, 256)
    assert np.abs(a).max() > 0.05  # something is drawn here
    np.testing.assert_array_equal(a[96:, 160:], b[:160, :96])


def test_a_grown_grid_has_the_points_of_the_larger_window_to_the_bit() -> None:
    z, row0, col0 = 15, 11_862_000, 16_834_000
    grown = Grid.of_window(z, row0, col0, 40, 60).grown()
    larger = Grid.of_window(z, row0 - 1, col0 - 1, 42, 62)
    assert np.array_equal(grown.x, larger.x) and np.array_equal(grown.y, larger.y)
    band = Grid.of_window(z, row0, col0, 40, 60)
    band = Grid(band.x, band.y[7:19], band.px_m)  # a row band, as the painter paints them
    assert np.array_equal(band.grown().y, Grid.of_window(z, row0 + 6, col0 - 1, 14, 62).y)


@pytest.mark.parametrize("cell_m", [0.3, 1.0, 7.0])
def test_value_noise_reads_only_the_lattice_it_needs_with_the_same_values(cell_m: float) -> None:
    key = stream_key(7, 2, 3)
    x, y = np.arange(-40.0, 40.0, 1.3), np.arange(10.0, 90.0, 2.1)  # cells finer and coarser than the samples
    ix, iy = np.floor(x / cell_m).astype(np.int64), np.floor(y / cell_m).astype(np.int64)
    full = uniform_grid(key, np.arange(iy.min(), iy.max() + 2), np.arange(ix.min(), ix.max() + 2)).astype(np.float32)
    tx, ty = (x / cell_m - ix).astype(np.float32), (y / cell_m - iy).astype(np.float32)
    sx, sy = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    cx, cy = ix - ix.min(), iy - iy.min()
    along_x = full[:, cx] * (1 - sx) + full[:, cx + 1] * sx
    expected = along_x[cy] * (1 - sy)[:, None] + along_x[cy + 1] * sy[:, None]
    assert np.array_equal(value_noise(key, x, y, cell_m), expected)


def test_features_stay_in_place_across_zooms() -> None:
    """A road, field edge or roof at z17 is where its 4x coarser rendering at z15 put it."""
    row0, col0, size = 11_862_000, 16_834_000, 128
    coarse = np.abs(paint(15, row0, col0, size)).mean(-1)
    fine = np.abs(paint(17, 4 * row0, 4 * col0, 4 * size)).mean(-1)
    pooled = fine.reshape(size, 4, size, 4).mean(axis=(1, 3))
    assert np.corrcoef(coarse.ravel(), pooled.ravel())[0, 1] > 0.7
    other = np.abs(paint(15, row0 + 4 * size, col0, size)).mean(-1)  # elsewhere: no such agreement
    assert np.corrcoef(other.ravel(), pooled.ravel())[0, 1] < 0.3


def test_layout_draws_nothing_on_water_and_only_patches_at_coarse_zooms() -> None:
    sea = np.broadcast_to(np.array([0.05, 0.12, 0.25]), (128, 128, 3)).astype(np.float32)
    g = Grid.of_window(15, 11_862_000, 16_834_000, 128, 128)
    assert np.abs(layout(7, g, sea) - paint_waves(7, g, sea, land_cover(sea)["water"])).max() < 0.02  # waves only
    assert np.abs(paint(4, 5_750, 8_187, 128)).max() == 0.0  # a continent per tile: nothing to draw yet
    patches = paint(7, 46_000, 65_500, 128).mean(-1)  # a pixel per km or so: woods and wild-land mottle only
    assert patches.min() < -0.1  # dark woods
    assert (np.abs(np.diff(patches, axis=1)) > 0.1).mean() < 0.05  # woods' outlines only: no parcels, roads, roofs
    fields = np.abs(np.diff(paint(10, 4 * 92_000, 4 * 131_000, 128).mean(-1), axis=1))
    assert (fields > 0.1).mean() > 0.03  # where parcels are a pixel or two wide, they are


@pytest.mark.parametrize(("row0", "col0"), [(46_000, 65_500), (11_650, 16_500)])
def test_coarse_fields_are_what_the_next_zoom_averages_to(row0: int, col0: int) -> None:
    """Where parcels are about a pixel, a pixel shows what the next zoom's four pixels in it average to: the exact
    projection keeps those 2x2 means, so a point sample's error would stay in every finer zoom as blur and streaks."""
    coarse = paint(8, row0, col0, 96).mean(-1)
    fine = paint(9, 2 * row0, 2 * col0, 192).mean(-1).reshape(96, 2, 96, 2).mean(axis=(1, 3))
    assert fine.std() > 0.04  # fields are drawn here
    assert np.corrcoef(coarse.ravel(), fine.ravel())[0, 1] > 0.92


@pytest.mark.unit
def test_the_zoom_before_single_trees_shows_what_the_next_zoom_averages_to() -> None:
    """A zoom up to twice too coarse for single crowns paints what its children's crowns and shadows average to, so
    their coarser octave is in every finer zoom's parent and trees do not first show faint."""
    z, row0, col0, size = 14, 5_930_000, 8_417_000, 48
    assert merc(TREE_MAX_PX_M) < Grid.of_window(z, 0, 0, 1, 1).px_m <= 2 * merc(TREE_MAX_PX_M)

    def painted(zoom: int, row: int, col: int, n: int) -> np.ndarray:
        base = np.full((n, n, 3), (0.45, 0.42, 0.30), np.float32)
        return paint_trees(7, Grid.of_window(zoom, row, col, n, n), base, np.full((n, n), 0.6, np.float32))

    coarse, fine = painted(z, row0, col0, size), painted(z + 1, 2 * row0, 2 * col0, 2 * size)
    assert coarse.std() > 0.01  # crowns show, not one flat share
    np.testing.assert_allclose(coarse, fine.reshape(size, 2, size, 2, 3).mean(axis=(1, 3)), atol=1e-5)


def test_neighbouring_districts_run_alike() -> None:
    """Fields and streets of neighbouring districts follow the land's slow grain: their directions differ by much
    less than random directions would (a quarter turn of pi on average)."""
    g = Grid.of_window(12, 1_460_000, 2_190_000, 1024, 1024)
    step = round(DISTRICT_M * 1.35 / g.px_m)  # about one district apart
    theta = _districts(7, g, edges=False).theta[::step, ::step]
    turn = np.abs(np.diff(theta, axis=1)) % np.pi
    turn = np.minimum(turn, np.pi - turn)  # directions: theta and theta + pi are the same
    assert 0.0 < turn.mean() < 0.45


@pytest.mark.parametrize(("colour", "kind"), [((0.63, 0.64, 0.61), "snow"), ((0.43, 0.43, 0.41), "desert"),
                                              ((0.05, 0.12, 0.25), "water")])
def test_land_cover_keeps_fields_off_snowfields_rock_and_water(colour: tuple[float, ...], kind: str) -> None:
    """A blurred snowfield reads pale grey and scree mid grey: neither is farmland; olive farmland is."""
    assert land_cover(np.array([[colour]], np.float32))[kind][0, 0] > 0.9
    farm = land_cover(FARMLAND[None, None].astype(np.float32))
    assert max(farm["snow"][0, 0], farm["desert"][0, 0], farm["water"][0, 0]) == 0.0


def test_context_path_reach_is_within_its_bound() -> None:
    torch.manual_seed(0)
    model = TerraDenoiser(width=8, num_blocks=2, embed_dim=32, context_width=8)
    torch.nn.init.normal_(model.context.out.weight, std=0.1)
    reach = 0
    for shift in range(0, 16, 2):  # every position of a pixel inside the coarsest (1/16) cells
        cond = torch.randn(1, 3, 384, 384, requires_grad=True)
        ctx = model.context_features(cond, torch.zeros(1))
        row = 48 + shift // 4
        ctx[0, :, row, row].sum().backward()
        ys = torch.nonzero(cond.grad[0].abs().sum(0).sum(1))[:, 0]
        centre = 4 * row + shift % 4
        reach = max(reach, centre - int(ys.min()), int(ys.max()) - centre)
    assert 0 < reach <= model.context_radius_px


@pytest.fixture(scope="module")
def structured(tmp_path_factory: pytest.TempPathFactory) -> TerraPipeline:
    path = make_tiny_model(tmp_path_factory.mktemp("structured"), context_width=8, structure=True)
    return TerraPipeline.from_pretrained(path, device="cpu")


def test_windows_with_context_and_structure_agree_exactly(structured: TerraPipeline) -> None:
    """With the context path and the structure field on, a window cut a quarter block further east computes the
    same pixels where it overlaps: seams stay exact."""
    assert structured.structure and structured.denoiser.context is not None
    cascade = Cascade(structured, WorldRegistry(), MemoryTileStore())
    z = 15
    a = cascade.unit_of(TileKey("earth", z, 16_418, 11_580))
    b = cascade.unit_of(TileKey("earth", z, a.x + 2, a.y))
    cascade.render([a, b])
    tiles = cascade.store.tiles
    rows = [[tiles[k] for k in cascade.unit_tiles(u)] for u in (a, b)]
    mosaic = np.concatenate([np.concatenate([rows[0][2 * j], rows[0][2 * j + 1], rows[1][2 * j], rows[1][2 * j + 1]],
                                            axis=1) for j in range(2)], axis=0)
    row0, col0 = structured.grid.window_origin_px(a)
    shift = 8 * structured.patch_px  # stays on the model's alignment grid
    shifted = structured.sample([cascade.window_spec_at("earth", z, row0, col0 + shift, dict(tiles))])[0]
    expected = mosaic[:, shift : shift + structured.core_px]
    assert np.abs(shifted.astype(int) - expected.astype(int)).max() <= 1
    assert (shifted == expected).mean() > 0.999


def test_structure_changes_the_window_and_the_version(structured: TerraPipeline) -> None:
    plain = TerraPipeline(structured.denoiser, structured.scheduler, structured.num_inference_steps, device="cpu")
    assert plain.version != structured.version
    w = structured.window_px
    parent = np.broadcast_to(np.array([92, 102, 66], np.uint8), (w // 2 + 2, w // 2 + 2, 3)).copy()
    spec = WindowSpec(7, 16, 11_862_016 - structured.margin_px, 16_834_048 - structured.margin_px, parent,
                      np.full(w // int(structured.denoiser.config.patch_size), 1.2, np.float32))
    with_structure, without = structured.sample([spec])[0], plain.sample([spec])[0]
    assert np.abs(with_structure.astype(int) - without.astype(int)).mean() > 0.25


def test_open_water_is_calm(structured: TerraPipeline) -> None:
    """Over a sea-coloured parent the model's grain is damped: open water stays smooth at every zoom."""
    plain = TerraPipeline(structured.denoiser, structured.scheduler, structured.num_inference_steps, device="cpu")
    w = structured.window_px
    parent = np.broadcast_to(np.array([14, 32, 64], np.uint8), (w // 2 + 2, w // 2 + 2, 3)).copy()
    spec = WindowSpec(7, 16, 11_862_016, 16_834_048, parent,
                      np.full(w // int(structured.denoiser.config.patch_size), 1.2, np.float32))
    calm, rough = (p.sample([spec])[0].astype(float).std(axis=(0, 1)).mean() for p in (structured, plain))
    assert calm < 0.5 * rough


def test_models_without_a_context_path_keep_their_version(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A config written before the context path existed and one written now hash alike (same bytes, same keys)."""
    now = TerraPipeline.from_pretrained(tiny_model_dir, device="cpu").version
    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old)
    config = json.loads((old / "denoiser" / "config.json").read_text())
    for key in ("context_width", "context_blocks"):
        config.pop(key, None)
    (old / "denoiser" / "config.json").write_text(json.dumps(config))
    assert TerraPipeline.from_pretrained(old, device="cpu").version == now


def test_a_window_across_the_antimeridian_stays_window_sized() -> None:
    """Columns past the world's edge continue eastwards instead of jumping a world width (which would make the
    lattices under the window world-wide)."""
    z = 15
    size = 256 << z
    g = Grid.of_window(z, 11_862_000, size - 100, 64, 300)
    assert np.all(np.diff(g.x) > 0) and g.x[-1] - g.x[0] < 300 * g.px_m
    base = np.broadcast_to(FARMLAND, (64, 300, 3)).astype(np.float32)
    assert np.isfinite(layout(7, g, base)).all()


def test_tree_crowns_are_lit_as_domes_and_keep_their_mean() -> None:
    """A crown is bright on its side towards the light (north-west) and dark on the far side, clumped inside, and
    as bright as its colour on the whole (so the zoom that averages crowns is not changed by their shading)."""
    g = Grid.of_window(19, 8 * 92_000, 8 * 131_000, 256, 256)  # 0.3 m pixels
    crowns = _trees(7, g, np.ones((256, 256), np.float32), "tree", merc(7.0))
    cov, light = crowns.cover, _crown_light(7, g, crowns, "tree")
    inside = cov > 0.99
    assert abs(float((light * cov).sum() / cov.sum())) < 0.05
    k = 4  # pixels towards the light: up (north) and left (west)
    lit_rim = inside[k:, k:] & (cov[:-k, :-k] == 0)
    dark_rim = inside[:-k, :-k] & (cov[k:, k:] == 0)
    assert lit_rim.sum() > 50 and dark_rim.sum() > 50
    assert float(light[k:, k:][lit_rim].mean()) > float(light[:-k, :-k][dark_rim].mean()) + 0.4


def test_a_closed_woods_crowns_are_not_in_rows() -> None:
    """Crowns of a closed wood spread to half a cell, yet stand anywhere in their cells: no lattice shows (an orchard's
    rows where a wood should be), and a crown near a cell's edge is whole, not cut along it."""
    g = Grid.of_window(19, 8 * 92_000, 8 * 131_000, 256, 256)  # 0.3 m pixels
    cell = merc(7.0)
    crowns = _trees(7, g, np.ones((256, 256), np.float32), "tree", cell)
    turn = TREE_TURN["tree"]
    u = g.x[None, :] * math.cos(turn) + g.y[:, None] * math.sin(turn)
    inside = crowns.cover > 0.99
    centre_in_cell = ((u - crowns.du)[inside] / cell) % 1.0
    assert float(centre_in_cell.std()) > 0.2  # about 0.29 when spread evenly; 0 for crowns at their cells' middles
    own_cell = np.floor(u[inside] / cell) == np.floor((u - crowns.du)[inside] / cell)
    assert 0.05 < float((~own_cell).mean()) < 0.5  # crowns reach over their cells' edges into the next cell
