"""`terradream export` to COG, georeferenced PNG, MBTiles and PMTiles, read back with Debian's GDAL (gdalinfo,
gdal_translate), rio-cogeo's validator and the pmtiles reader."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import mercantile
import numpy as np
import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import TileType
from rio_cogeo.cogeo import cog_validate

from .conftest import ServeProcess, gdal_env, inner_bbox, local_args, mosaic, png_array, require_gdal, run_cli

Z = 6
COLUMNS, ROWS = (32, 33), (22, 23)
BBOX = inner_bbox(Z, COLUMNS[0], ROWS[0], COLUMNS[-1], ROWS[-1])


@dataclass
class Exported:
    """The exports of one 2x2 region at zoom 6, and the same tiles fetched from the server."""

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
    """Export the region in-process (COGs, png: sharing the server's cache) and over HTTP (archives, zooms 5-6)."""
    require_gdal()
    folder = tmp_path_factory.mktemp("exports")
    local = local_args(tiny_model_dir, server.cache_dir)
    for name, extra in (("region.tif", []), ("lossless.tif", ["--compress", "deflate"]), ("region.png", [])):
        result = run_cli("export", "--world", "earth", "--bbox", BBOX, "--zoom", str(Z), "--out",
                         str(folder / name), *extra, *local)
        assert result.exit_code == 0, result.output
        assert f"wrote {folder / name} (512x512 px at z6" in result.stdout
    for name, extra in (("region.mbtiles", []), ("region.pmtiles", []), ("webp.pmtiles", ["--tile-format", "webp"])):
        result = run_cli("export", "--world", "earth", "--bbox", BBOX, "--zoom", f"{Z - 1}-{Z}", "--out",
                         str(folder / name), *extra, "--url", server.url)
        assert result.exit_code == 0, result.output
    tiles = {(x, y): server.tile(Z, x, y).content for x in COLUMNS for y in ROWS}
    return Exported(folder, tiles, server.tile(Z - 1, COLUMNS[0] // 2, ROWS[0] // 2).content)


def test_tif_is_a_valid_cog_with_jpeg_by_default(exported: Exported, server: ServeProcess, tmp_path: Path) -> None:
    path = exported.folder / "region.tif"
    valid, errors, _warnings = cog_validate(str(path), strict=True)
    assert valid, errors
    info = gdalinfo(path, tmp_path)
    assert info["driverShortName"] == "GTiff"
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "YCbCr JPEG"
    check_georeference(info)
    assert [band["block"] for band in info["bands"]] == [[256, 256]] * 3
    assert info["bands"][0]["overviews"][0]["size"] == [256, 256]
    assert info["metadata"][""]["world"] == "earth"
    pixels, expected = gdal_pixels(path, tmp_path).astype(float), mosaic(exported.tiles, COLUMNS, ROWS).astype(float)
    assert not np.array_equal(pixels, expected)  # lossy ...
    jpg_tiles = {(x, y): httpx.get(f"{server.url}/tiles/earth/{Z}/{x}/{y}.jpg", timeout=60.0).content
                 for x in COLUMNS for y in ROWS}
    cog_error = np.abs(pixels - expected).mean()
    server_error = np.abs(mosaic(jpg_tiles, COLUMNS, ROWS).astype(float) - expected).mean()
    assert cog_error < 1.5 * server_error, (cog_error, server_error)  # about the server's own JPEG quality
    blocks = (512 // 32, 32, 512 // 32, 32, 3)  # ... and the same picture: 32 px block means agree (the tiny
    # model's near-noise tiles clip in YCbCr, which shifts some means by a few levels)
    assert np.abs(pixels.reshape(blocks).mean(axis=(1, 3)) - expected.reshape(blocks).mean(axis=(1, 3))).max() < 8
    assert path.stat().st_size < (exported.folder / "lossless.tif").stat().st_size
    assert sorted(p.name for p in exported.folder.iterdir() if p.name.startswith("region.t")) == ["region.tif"]


def test_lossless_cog_equals_the_tiles(exported: Exported, tmp_path: Path) -> None:
    path = exported.folder / "lossless.tif"
    assert cog_validate(str(path), strict=True)[0]
    info = gdalinfo(path, tmp_path)
    assert info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE"
    assert [band["colorInterpretation"] for band in info["bands"]] == ["Red", "Green", "Blue"]
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


def pmtiles_read(path: Path) -> tuple[dict, dict, dict[tuple[int, int, int], bytes]]:  # type: ignore[type-arg]
    """Header, metadata and every (z, x, y) tile of a PMTiles archive, through the pmtiles reader."""
    with path.open("rb") as f:
        reader = Reader(MmapSource(f))
        return dict(reader.header()), reader.metadata(), dict(all_tiles(reader.get_bytes))


def test_pmtiles_reads_back_as_the_servers_tiles(exported: Exported, server: ServeProcess) -> None:
    header, metadata, tiles = pmtiles_read(exported.folder / "region.pmtiles")
    assert (header["tile_type"], header["min_zoom"], header["max_zoom"], header["clustered"]) == (
        TileType.PNG, Z - 1, Z, True)
    north_west = mercantile.bounds(COLUMNS[0], ROWS[0], Z)
    assert (header["min_lon_e7"], header["max_lat_e7"]) == (round(north_west.west * 1e7),
                                                            round(north_west.north * 1e7))
    assert metadata["format"] == "png" and metadata["minzoom"] == "5"
    assert {k: v for k, v in tiles.items() if k[0] == Z} == {(Z, x, y): png for (x, y), png in exported.tiles.items()}
    assert tiles[(Z - 1, COLUMNS[0] // 2, ROWS[0] // 2)] == exported.parent_png

    header, metadata, tiles = pmtiles_read(exported.folder / "webp.pmtiles")
    assert header["tile_type"] == TileType.WEBP and metadata["format"] == "webp"
    for x in COLUMNS:
        for y in ROWS:
            webp = httpx.get(f"{server.url}/tiles/earth/{Z}/{x}/{y}.webp", timeout=60.0)
            assert webp.status_code == 200
            assert tiles[(Z, x, y)] == webp.content  # the same encoder and quality as the server's


def test_geojson_coverage_exports_only_the_tiles_the_polygon_touches(server: ServeProcess, tmp_path: Path) -> None:
    north_west, south_east = mercantile.bounds(COLUMNS[0], ROWS[0], Z), mercantile.bounds(COLUMNS[-1], ROWS[-1], Z)
    inset = 0.01
    w, n = north_west.west + inset, north_west.north - inset
    e, s = south_east.east - inset, south_east.south + inset
    centre_lon, centre_lat, d = north_west.east, north_west.south, 0.05  # the block's middle corner
    # An L over the north-west, north-east and south-west tiles of the 2x2 block (concave: it skips the south-east one)
    ell = [[w, n], [e, n], [e, centre_lat + d], [centre_lon - d, centre_lat + d], [centre_lon - d, s], [w, s], [w, n]]
    geojson = tmp_path / "area.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ell]}}]}))
    out = tmp_path / "area.mbtiles"
    dry = run_cli("export", "--world", "earth", "--geojson", str(geojson), "--zoom", str(Z), "--out", str(out),
                  "--tile-format", "jpg", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith(f"{out}: 3 jpg tiles, z6-6") and "about" in dry.stdout and not out.exists()
    result = run_cli("export", "--world", "earth", "--geojson", str(geojson), "--zoom", str(Z), "--out", str(out),
                     "--tile-format", "jpg", "--url", server.url)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out) as conn:
        rows = {(x, (1 << z) - 1 - row) for z, x, row in
                conn.execute("SELECT zoom_level, tile_column, tile_row FROM tiles")}
        fmt = conn.execute("SELECT value FROM metadata WHERE name = 'format'").fetchone()[0]
    assert fmt == "jpg"
    assert rows == {(COLUMNS[0], ROWS[0]), (COLUMNS[1], ROWS[0]), (COLUMNS[0], ROWS[1])}


def test_failed_export_writes_nothing(server: ServeProcess, tmp_path: Path) -> None:
    out = tmp_path / "past-maxzoom.tif"
    result = run_cli("export", "--world", "earth", "--bbox", BBOX, "--zoom", "7", "--out", str(out),
                     "--url", server.url)
    assert result.exit_code == 1
    assert "nothing written" in result.stdout and "HTTP 404" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no file, no sidecar, no staging folder


@pytest.mark.parametrize("out, zoom, message", [
    ("region.jpg", "6", "use .tif, .png, .mbtiles or .pmtiles"),
    ("region.tif", "6 --tile-format webp", "a .tif takes --compress"),
    ("region.tif", "5-6", "holds one zoom"),
    ("region.png", "20", "too large for a PNG"),
])
def test_bad_exports_are_usage_errors(tmp_path: Path, out: str, zoom: str, message: str) -> None:
    result = run_cli("export", "--world", "earth", "--bbox", "-10,35,30,60", "--zoom", *zoom.split(),
                     "--out", str(tmp_path / out))
    assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []
