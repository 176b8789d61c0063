"""Behind a real prefix-stripping nginx (`serve --root-path /terradream`): every URL the server hands out leads back
through the proxy, and clients that follow them (httpx, GDAL's WMTS and OGC API drivers) get the server's tiles."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import numpy as np
from support import PrefixedServer

from .conftest import gdal_env, mosaic, ogcapi_window, png_array, require_gdal

Z, COLUMNS, ROWS = 6, (40,), (24, 25)  # the fixture serves maxzoom 6; a region no other client test reads
TIMEOUT_S = 300.0


def get(url: str) -> httpx.Response:
    """GET url, expecting 200."""
    response = httpx.get(url, timeout=TIMEOUT_S)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response


def test_tilejson_and_world_urls_lead_through_the_proxy(prefixed_server: PrefixedServer) -> None:
    proxy, direct = prefixed_server.url, prefixed_server.direct_url
    listing = get(f"{proxy}/worlds").json()
    assert listing["worlds"][0]["tilejson"] == f"{proxy}/tiles/earth/tilejson.json"
    tilejson = get(listing["worlds"][0]["tilejson"]).json()
    template = tilejson["tiles"][0]
    assert template.startswith(f"{proxy}/tiles/earth/{{z}}/{{x}}/{{y}}.png?v=")
    through = get(template.format(z=Z, x=COLUMNS[0], y=ROWS[0]))
    assert through.content == get(f"{direct}/tiles/earth/{Z}/{COLUMNS[0]}/{ROWS[0]}.png").content


def test_wmts_urls_lead_through_the_proxy(prefixed_server: PrefixedServer) -> None:
    proxy = prefixed_server.url
    root = ET.fromstring(get(f"{proxy}/wmts/WMTSCapabilities.xml").content)
    templates = [e.get("template", "") for e in root.iter("{http://www.opengis.net/wmts/1.0}ResourceURL")]
    hrefs = [v for e in root.iter() for k, v in e.attrib.items() if k == "{http://www.w3.org/1999/xlink}href"]
    assert len(templates) == 3 and len(hrefs) == 3  # earth in png, jpg, webp; two operations and the metadata URL
    assert all(url.startswith(f"{proxy}/") for url in templates + hrefs), templates + hrefs
    get(templates[0].format(TileMatrix=Z, TileCol=COLUMNS[0], TileRow=ROWS[0]))


def test_docs_and_viewer_files_load_through_the_proxy(prefixed_server: PrefixedServer) -> None:
    proxy = prefixed_server.url
    docs = get(f"{proxy}/docs").text
    assets = re.findall(r"""(?:src=|href=|url: )["']([^"']+)["']""", docs)
    assert len(assets) >= 3, docs
    for asset in assets:
        assert asset.startswith(f"{proxy}/"), asset
        get(asset)
    assert get(f"{proxy}/openapi.json").json()["servers"] == [{"url": "/terradream"}]
    assert get(f"{proxy}/").headers["content-type"].startswith("text/html")
    for path in ("/static/app.js", "/vendor/leaflet/leaflet.js", "/vendor/leaflet/leaflet.css"):
        get(proxy + path)


def test_gdal_ogcapi_follows_the_links_through_the_proxy(prefixed_server: PrefixedServer, tmp_path: Path) -> None:
    require_gdal()
    proxy, direct = prefixed_server.url, prefixed_server.direct_url
    listing = subprocess.run(["gdalinfo", f"OGCAPI:{proxy}/"], capture_output=True, text=True, timeout=120,
                             check=False, env=gdal_env(tmp_path))
    assert listing.returncode == 0, listing.stderr
    assert f"SUBDATASET_1_NAME=OGCAPI:{proxy}/collections/earth" in listing.stdout  # landing page -> collections
    out = tmp_path / "region.png"
    done = subprocess.run(["gdal_translate", "-q", "-of", "PNG", *ogcapi_window(Z, COLUMNS, ROWS),
                           f"OGCAPI:{proxy}/collections/earth", str(out)],
                          capture_output=True, text=True, timeout=600, check=False, env=gdal_env(tmp_path))
    assert done.returncode == 0, done.stderr + prefixed_server.proxy.error_log()
    tiles = {(x, y): get(f"{direct}/tiles/earth/{Z}/{x}/{y}.png").content for x in COLUMNS for y in ROWS}
    assert np.array_equal(png_array(out.read_bytes()), mosaic(tiles, COLUMNS, ROWS))
