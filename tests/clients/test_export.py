"""`terradream export` to GeoTIFF, georeferenced PNG and MBTiles, read back with Debian's GDAL (gdalinfo,
gdal_translate)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mercantile
import numpy as np
import pytest

from .conftest import ServeProcess, gdal_env, inner_bbox, local_args, mosaic, png_array, require_gdal, run_cli

Z = 6
COLUMNS, ROWS = (32, 33), (22, 23)
BBOX = inner_bbox(Z, COLUMNS[0], ROWS[0], COLUMNS[-1], ROWS[-1])


@dataclass
class Exported:
    """The three exports of one 2x2 region at zoom 6, and the same tiles fetched from the server."""

    folder: Path
    tiles: dict[tuple[int, int], bytes]
    parent_png: bytes  # the zoom-5 tile holding the region (the .mbtiles also has zoom 5)


def gdalinfo(path: Path, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    """`gdalinfo -json PATH` parsed."""
    done = subprocess.run(["gdalinfo", "-json", str(path)], capture_output=True, text=True, timeout=120, check=False,
                          env=gdal_env(tmp_path))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def gdal_pixels(path: Path, tmp_path: Path) -> np.ndarray:
    """The RGB bands of a raster as GDAL decodes them (gdal_translate to a plain PNG)."""
    out = tmp_path / f"gdal-{path.name}.png"
    done = subprocess.run(["gdal_translate", "-q", "-of", "PNG", "-b", "1", "-b", "2", "-b", "3", str(path), str(out)],
                          capture_output=True, text=True, timeout=120, check=False, env=gdal_env(tmp_path))
    assert done.returncode == 0, done.stderr
    return png_array(out.read_bytes())


def expected_geotransform() -> list[float]:
    """[left, pixel width, 0, top, 0, -pixel height] of the region in EPSG:3857 metres, from mercantile."""
    north_west = mercantile.xy_bounds(COLUMNS[0], ROWS[0], Z)
    pixel_m = (north_west.right - north_west.left) / 256
    return [north_west.left, pixel_m, 0.0, north_west.top, 0.0, -pixel_m]


def check_georeference(info: dict, size_px: tuple[int, int] = (512, 512)) -> None:  # type: ignore[type-arg]
    """EPSG:3857, the region's size, geotransform and WGS84 extent."""
    assert 'ID["EPSG",3857]' in info["coordinateSystem"]["wkt"]
    assert tuple(info["size"]) == size_px
    assert info["geoTransform"] == pytest.approx(expected_geotransform(), abs=1e-6)
    north_west = mercantile.bounds(COLUMNS[0], ROWS[0], Z)
    south_east = mercantile.bounds(COLUMNS[-1], ROWS[-1], Z)
    lons = [p[0] for p in info["wgs84Extent"]["coordinates"][0]]
    lats = [p[1] for p in info["wgs84Extent"]["coordinates"][0]]
    assert (min(lons), max(lons)) == pytest.approx((north_west.west, south_east.east), abs=1e-7)
    assert (min(lats), max(lats)) == pytest.approx((south_east.south, north_west.north), abs=1e-7)


@pytest.fixture(scope="module")
def exported(server: ServeProcess, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Export the region in-process (tif, png: sharing the server's cache) and over HTTP (mbtiles, zooms 5-6)."""
    require_gdal()
    folder = tmp_path_factory.mktemp("exports")
    local = local_args(tiny_model_dir, server.cache_dir)
    for name in ("region.tif", "region.png"):
        result = run_cli("export", "--world", "earth", "--bbox", BBOX, "--zoom", str(Z), "--out",
                         str(folder / name), *local)
        assert result.exit_code == 0, result.output
        assert f"wrote {folder / name} (512x512 px at z6" in result.stdout
    result = run_cli("export", "--world", "earth", "--bbox", BBOX, "--zoom", f"{Z - 1}-{Z}", "--out",
                     str(folder / "region.mbtiles"), "--url", server.url)
    assert result.exit_code == 0, result.output
    tiles = {(x, y): server.tile(Z, x, y).content for x in COLUMNS for y in ROWS}
    return Exported(folder, tiles, server.tile(Z - 1, COLUMNS[0] // 2, ROWS[0] // 2).content)


def test_geotiff_is_georeferenced_tiled_compressed_and_lossless(exported: Exported, tmp_path: Path) -> None:
    path = exported.folder / "region.tif"
    info = gdalinfo(path, tmp_path)
    assert info["driverShortName"] == "GTiff"
    check_georeference(info)
    assert info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE"
    assert [band["block"] for band in info["bands"]] == [[256, 256]] * 3
    assert [band["colorInterpretation"] for band in info["bands"]] == ["Red", "Green", "Blue"]
    assert info["bands"][0]["overviews"][0]["size"] == [256, 256]
    assert info["metadata"][""]["world"] == "earth"
    assert np.array_equal(gdal_pixels(path, tmp_path), mosaic(exported.tiles, COLUMNS, ROWS))


def test_png_has_a_world_file_and_equals_the_tiles(exported: Exported, tmp_path: Path) -> None:
    path = exported.folder / "region.png"
    info = gdalinfo(path, tmp_path)
    assert info["driverShortName"] == "PNG"
    check_georeference(info)
    assert np.array_equal(gdal_pixels(path, tmp_path), mosaic(exported.tiles, COLUMNS, ROWS))
    prj = subprocess.run(["gdalsrsinfo", "-o", "epsg", str(exported.folder / "region.prj")], capture_output=True,
                         text=True, timeout=60, check=False, env=gdal_env(tmp_path))
    assert prj.stdout.strip() == "EPSG:3857", prj.stdout + prj.stderr

    # The world file alone (as ArcGIS or an older QGIS read it) carries the same georeference.
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(path, bare / "region.png")
    shutil.copy(exported.folder / "region.pgw", bare / "region.pgw")
    assert gdalinfo(bare / "region.png", tmp_path)["geoTransform"] == pytest.approx(expected_geotransform(), abs=1e-6)


def test_mbtiles_has_the_1_3_metadata_and_gdal_reads_it(exported: Exported, tmp_path: Path) -> None:
    path = exported.folder / "region.mbtiles"
    with sqlite3.connect(path) as conn:
        metadata = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        tiles = {(z, x, (1 << z) - 1 - row): bytes(data) for z, x, row, data in
                 conn.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")}
    for key in ("name", "format", "bounds", "center", "minzoom", "maxzoom", "attribution", "type"):
        assert metadata.get(key), f"metadata {key!r} missing"
    assert (metadata["format"], metadata["type"], metadata["minzoom"], metadata["maxzoom"]) == (
        "png", "baselayer", "5", "6")
    west, south, east, north = map(float, metadata["bounds"].split(","))
    assert (west, north) == pytest.approx(mercantile.bounds(COLUMNS[0], ROWS[0], Z)[::3], abs=1e-9)
    assert (east, south) == pytest.approx(mercantile.bounds(COLUMNS[-1], ROWS[-1], Z)[2:0:-1], abs=1e-9)
    assert {k: v for k, v in tiles.items() if k[0] == Z} == {(Z, x, y): png for (x, y), png in exported.tiles.items()}
    assert tiles[(Z - 1, COLUMNS[0] // 2, ROWS[0] // 2)] == exported.parent_png

    info = gdalinfo(path, tmp_path)
    assert info["driverShortName"] == "MBTiles"
    check_georeference(info)
    assert info["metadata"][""]["format"] == "png"
    assert len(info["bands"][0]["overviews"]) == 1  # zoom 5
    assert np.array_equal(gdal_pixels(path, tmp_path), mosaic(exported.tiles, COLUMNS, ROWS))


def test_failed_export_writes_nothing(server: ServeProcess, tmp_path: Path) -> None:
    out = tmp_path / "past-maxzoom.tif"
    result = run_cli("export", "--world", "earth", "--bbox", BBOX, "--zoom", "7", "--out", str(out),
                     "--url", server.url)
    assert result.exit_code == 1
    assert "nothing written" in result.stdout and "HTTP 404" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no file, no sidecar, no staging folder


@pytest.mark.parametrize("out, zoom, message", [
    ("region.jpg", "6", "use .tif, .png or .mbtiles"),
    ("region.tif", "5-6", "holds one zoom"),
    ("region.png", "20", "too large for a PNG"),
])
def test_bad_exports_are_usage_errors(tmp_path: Path, out: str, zoom: str, message: str) -> None:
    result = run_cli("export", "--world", "earth", "--bbox", "-10,35,30,60", "--zoom", zoom,
                     "--out", str(tmp_path / out))
    assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []
