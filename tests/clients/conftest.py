"""A real `terradream serve` subprocess (tiny model) shared by the client tests, and helpers to read what it serves.

The server runs with --maxzoom 6 (zoom 7 answers 404: the failure tests use it) and --queue-max 1 with a 1 s
Retry-After, so concurrent cold requests really get 503 and the clients must retry. Tests use disjoint zoom-6 regions
of one cache directory, which in-process `seed`/`export` runs share with the server, exactly as an operator would.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import mercantile
import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from support import ServeSubprocess

from terradream.cli.main import main

READY_TIMEOUT_S = 180.0
TILE_TIMEOUT_S = 300.0
SERVER_MAXZOOM = 6


class ServeProcess(ServeSubprocess):
    """`terradream serve --model M --cache C --device cpu ...` as an operator runs it, ready when constructed."""

    def __init__(self, model_dir: Path, cache_dir: Path, log_path: Path, *extra: str) -> None:
        """Start it and wait for /readyz."""
        super().__init__(["--model", str(model_dir), "--cache", str(cache_dir), "--device", "cpu", *extra], log_path,
                         env={"TERRADREAM_RETRY_AFTER_S": "1"})
        self.cache_dir = cache_dir
        self.wait_ok("/readyz", READY_TIMEOUT_S)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of GET /metrics (0.0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10.0).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def tile(self, z: int, x: int, y: int, world: str = "earth") -> httpx.Response:
        """GET one tile (interactive priority), retrying 503s as a polite client does."""
        for _ in range(60):
            response = httpx.get(f"{self.url}/tiles/{world}/{z}/{x}/{y}.png", timeout=TILE_TIMEOUT_S)
            if response.status_code != 503:
                return response
            time.sleep(float(response.headers.get("Retry-After", "1")))
        raise AssertionError(f"tile {z}/{x}/{y} still 503 after 60 tries")


@pytest.fixture(scope="session")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One running server for the client tests (tiny model, embedded cache in a temp dir)."""
    workdir = tmp_path_factory.mktemp("clients-server")
    process = ServeProcess(tiny_model_dir, workdir / "cache", workdir / "serve.log",
                           "--maxzoom", str(SERVER_MAXZOOM), "--queue-max", "1")
    yield process
    process.stop()


def run_cli(*args: str) -> Result:
    """`terradream ARGS` in this process (click's runner: exit code, stdout and stderr kept apart)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def local_args(model_dir: Path, cache_dir: Path) -> list[str]:
    """The in-process engine options that make `seed`/`export` share a server's cache and model."""
    return ["--model", str(model_dir), "--cache", str(cache_dir), "--device", "cpu"]


def inner_bbox(z: int, x_min: int, y_min: int, x_max: int, y_max: int, inset_deg: float = 0.01) -> str:
    """'W,S,E,N' strictly inside the block of tiles x_min..x_max, y_min..y_max at zoom z (no neighbour touched)."""
    north_west = mercantile.bounds(x_min, y_min, z)
    south_east = mercantile.bounds(x_max, y_max, z)
    return (f"{north_west.west + inset_deg},{south_east.south + inset_deg},"
            f"{south_east.east - inset_deg},{north_west.north - inset_deg}")


def cached_pngs(cache_dir: Path, keys: Sequence[tuple[int, int, int]],
                world: str = "earth") -> dict[tuple[int, int, int], bytes]:
    """The PNGs of (z, x, y) tiles present in the embedded cache, read with plain sqlite3 (TMS rows)."""
    found: dict[tuple[int, int, int], bytes] = {}
    for path in cache_dir.glob(f"{world}-*.mbtiles"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            for z, x, y in keys:
                row = conn.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                                   (z, x, (1 << z) - 1 - y)).fetchone()
                if row is not None:
                    found[(z, x, y)] = bytes(row[0])
    return found


def png_array(data: bytes) -> np.ndarray:
    """A PNG as a uint8 RGB array."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def mosaic(tiles: dict[tuple[int, int], bytes], columns: Sequence[int], rows: Sequence[int]) -> np.ndarray:
    """Tiles keyed (x, y) laid out west to east, north to south, as one RGB array."""
    return np.concatenate([np.concatenate([png_array(tiles[(x, y)]) for x in columns], axis=1) for y in rows], axis=0)


def gdal_env(tmp_path: Path) -> dict[str, str]:
    """Environment for GDAL command-line tools: generous HTTP timeout, retries on 503, no persistent tile cache."""
    return {**os.environ, "GDAL_HTTP_TIMEOUT": "300", "GDAL_HTTP_MAX_RETRY": "10", "GDAL_HTTP_RETRY_DELAY": "1",
            "GDAL_ENABLE_WMS_CACHE": "NO", "GDAL_DEFAULT_WMS_CACHE_PATH": str(tmp_path / "gdal-wms-cache")}


def require_gdal() -> None:
    """Fail (not skip) when Debian's gdal-bin is missing: CI installs it (.ci/run), the GIS tests must run there."""
    for tool in ("gdalinfo", "gdal_translate"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install Debian's gdal-bin (.ci/run does)")


def ogcapi_window(z: int, columns: Sequence[int], rows: Sequence[int]) -> list[str]:
    """GDAL OGCAPI open options confining a collection to a block of zoom-z tiles (EPSG:3857 metres), so GDAL
    reads only those: GDAL 3.6 takes the collection's CRS84 bbox for metres, the options set the extent directly."""
    north_west = mercantile.xy_bounds(columns[0], rows[0], z)
    south_east = mercantile.xy_bounds(columns[-1], rows[-1], z)
    bounds = {"MINX": north_west.left, "MAXY": north_west.top, "MAXX": south_east.right, "MINY": south_east.bottom}
    return [arg for name, value in bounds.items() for arg in ("-oo", f"{name}={value!r}")]
