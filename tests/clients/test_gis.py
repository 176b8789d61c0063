"""GIS interop: GDAL reads a georeferenced region from the running server (WMTS capabilities, TMS XML description,
OGC API - Tiles from a collection)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mercantile
import numpy as np
import pytest

from .conftest import SERVER_MAXZOOM, ServeProcess, gdal_env, mosaic, ogcapi_window, png_array, require_gdal

Z = SERVER_MAXZOOM  # GDAL reads the deepest tile matrix the capabilities list
COLUMNS, ROWS = (30, 31), (21,)
WEB_MERCATOR_HALF_WORLD_M = 20037508.342789244


def tms_description(url: str, world: str, zoom: int) -> str:
    """A GDAL_WMS TMS description of the XYZ endpoint (what the README's GDAL one-liner feeds gdal_translate)."""
    return f"""<GDAL_WMS>
  <Service name="TMS"><ServerUrl>{url}/tiles/{world}/${{z}}/${{x}}/${{y}}.png</ServerUrl></Service>
  <DataWindow>
    <UpperLeftX>{-WEB_MERCATOR_HALF_WORLD_M!r}</UpperLeftX><UpperLeftY>{WEB_MERCATOR_HALF_WORLD_M!r}</UpperLeftY>
    <LowerRightX>{WEB_MERCATOR_HALF_WORLD_M!r}</LowerRightX><LowerRightY>{-WEB_MERCATOR_HALF_WORLD_M!r}</LowerRightY>
    <TileLevel>{zoom}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection>
  <BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY><BandsCount>3</BandsCount>
</GDAL_WMS>
"""


def region_projwin() -> list[str]:
    """-projwin ulx uly lrx lry of the region in EPSG:3857 metres (tile edges, from mercantile)."""
    north_west = mercantile.xy_bounds(COLUMNS[0], ROWS[0], Z)
    south_east = mercantile.xy_bounds(COLUMNS[-1], ROWS[-1], Z)
    return [repr(v) for v in (north_west.left, north_west.top, south_east.right, south_east.bottom)]


@pytest.mark.parametrize("kind", ["wmts", "tms-xml", "ogcapi"])
def test_gdal_reads_the_running_server(server: ServeProcess, tmp_path: Path, kind: str) -> None:
    require_gdal()
    direct = {(x, y): server.tile(Z, x, y).content for x in COLUMNS for y in ROWS}  # also warms the cache
    open_options: list[str] = []
    if kind == "wmts":
        source = f"WMTS:{server.url}/wmts/WMTSCapabilities.xml,layer=earth,tilematrixset=GoogleMapsCompatible"
    elif kind == "ogcapi":  # the collection's links lead GDAL to the tileset, the tile matrix set and the tiles
        source = f"OGCAPI:{server.url}/collections/earth"
        open_options = ogcapi_window(Z, COLUMNS, ROWS)
    else:
        source = str(tmp_path / "earth.xml")
        Path(source).write_text(tms_description(server.url, "earth", Z))
    out = tmp_path / "region.png"
    done = subprocess.run(["gdal_translate", "-q", "-of", "PNG", *open_options, "-projwin", *region_projwin(),
                           "-projwin_srs", "EPSG:3857", source, str(out)],
                          capture_output=True, text=True, timeout=300, check=False, env=gdal_env(tmp_path))
    assert done.returncode == 0, done.stderr + server.log_tail()

    info = json.loads(subprocess.run(["gdalinfo", "-json", str(out)], capture_output=True, text=True, timeout=60,
                                     check=True).stdout)
    assert 'ID["EPSG",3857]' in info["coordinateSystem"]["wkt"]
    north_west = mercantile.xy_bounds(COLUMNS[0], ROWS[0], Z)
    pixel_m = (north_west.right - north_west.left) / 256
    assert info["geoTransform"] == pytest.approx([north_west.left, pixel_m, 0, north_west.top, 0, -pixel_m], abs=1e-6)
    assert tuple(info["size"]) == (256 * len(COLUMNS), 256 * len(ROWS))
    assert np.array_equal(png_array(out.read_bytes()), mosaic(direct, COLUMNS, ROWS))
