"""`terradream seed`: tile counts, in-process and HTTP seeding into the cache a running server serves, resuming,
failures."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import mercantile
import pytest
from support import terradream_command

from terradream.core.coverage import Coverage, parse_geojson
from terradream.core.keys import TileKey
from terradream.core.regions import parse_bbox, tile_grid

from .conftest import ServeProcess, cached_pngs, inner_bbox, local_args, run_cli

SUMMARY = re.compile(r"(\d+) of (\d+) tiles in [\d.]+ s: (\d+) already cached, (\d+) rendered, (\d+) failed")


def summary_counts(output: str) -> dict[str, int]:
    """done/total/cached/rendered/failed from the CLI's summary line."""
    match = SUMMARY.search(output)
    assert match, f"no summary in output:\n{output}"
    return dict(zip(("done", "total", "cached", "rendered", "failed"), map(int, match.groups())))


@pytest.mark.parametrize("bbox, zooms", [
    ("1,42,10,47", range(5, 9)),
    ("-10.5,35,30.25,60", range(8)),
    ("170,-20,-170,15", range(3, 8)),  # crosses the antimeridian
    ("-180,-85,180,85", range(4)),
])
def test_dry_run_counts_what_mercantile_counts(bbox: str, zooms: range) -> None:
    west, south, east, north = map(float, bbox.split(","))
    expected = set(mercantile.tiles(west, south, east, north, zooms=list(zooms)))
    assert expected
    result = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", f"{zooms.start}-{zooms.stop - 1}",
                     "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{len(expected)} tiles (")
    for z in zooms:
        assert f"z{z}: {sum(1 for t in expected if t.z == z)}" in result.stdout


def test_repeated_boxes_count_each_tile_once() -> None:
    boxes = [(1, 42, 10, 47), (5, 40, 12, 45), (170, -20, -170, 15)]  # the first two overlap, the last wraps
    expected = {t for box in boxes for t in mercantile.tiles(*box, zooms=list(range(3, 9)))}
    args = [a for box in boxes for a in ("--bbox", ",".join(map(str, box)))]
    result = run_cli("seed", "--world", "earth", *args, "--zoom", "3-8", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{len(expected)} tiles (")
    assert f"z8: {sum(1 for t in expected if t.z == 8)}" in result.stdout


def write_geojson(path: Path, geometry: dict[str, object]) -> Path:
    """A one-feature FeatureCollection file."""
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "features": [{"type": "Feature", "properties": {}, "geometry": geometry}]}))
    return path


def test_geojson_polygon_with_a_hole_covers_the_tiles_it_touches(tmp_path: Path) -> None:
    outer, hole = (0.0, 40.0, 20.0, 55.0), (5.0, 44.0, 15.0, 51.0)

    def ring(w: float, s: float, e: float, n: float) -> list[list[float]]:
        return [[w, s], [e, s], [e, n], [w, n], [w, s]]

    path = write_geojson(tmp_path / "ring.geojson", {"type": "Polygon", "coordinates": [ring(*outer), ring(*hole)]})
    for z in (5, 8, 10):
        in_hole = {t for t in mercantile.tiles(*hole, zooms=[z])
                   if mercantile.bounds(t).west > hole[0] and mercantile.bounds(t).east < hole[2]
                   and mercantile.bounds(t).south > hole[1] and mercantile.bounds(t).north < hole[3]}
        expected = set(mercantile.tiles(*outer, zooms=[z])) - in_hole
        assert in_hole or z == 5
        result = run_cli("seed", "--world", "earth", "--geojson", str(path), "--zoom", str(z), "--dry-run")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"{len(expected)} tiles (")

    # A triangle: tiles sampled inside it are all covered, and the cover is far smaller than its box.
    triangle = [[0.0, 0.0], [40.0, 10.0], [10.0, 40.0], [0.0, 0.0]]
    path = write_geojson(tmp_path / "triangle.geojson", {"type": "MultiPolygon", "coordinates": [[triangle]]})
    tile_set = Coverage(polygons=tuple(parse_geojson(path.read_text()))).tile_set(7)
    covered = {(k.x, k.y) for k in tile_set.keys("earth")}
    for u in range(1, 40):
        for v in range(1, 40 - u):
            lon, lat = triangle[0][0] + (40.0 * u + 10.0 * v) / 40, (10.0 * u + 40.0 * v) / 40
            tile = mercantile.tile(lon, lat, 7)
            assert (tile.x, tile.y) in covered
    assert tile_set.count < 0.7 * len(list(mercantile.tiles(0, 0, 40, 40, zooms=[7])))


@pytest.mark.parametrize("geometry, message", [
    ({"type": "Point", "coordinates": [1, 2]}, "Polygon and MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least four positions"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "outside [-180, 180]"),
])
def test_bad_geojson_is_a_usage_error(tmp_path: Path, geometry: dict[str, object], message: str) -> None:
    path = write_geojson(tmp_path / "bad.geojson", geometry)
    result = run_cli("seed", "--world", "earth", "--geojson", str(path), "--zoom", "5", "--dry-run")
    assert result.exit_code == 2 and message in result.output
    no_region = run_cli("seed", "--world", "earth", "--zoom", "5", "--dry-run")
    assert no_region.exit_code == 2 and "--bbox W,S,E,N and/or --geojson FILE" in no_region.output


def test_antimeridian_region_wraps_west_to_east() -> None:
    grid = tile_grid(parse_bbox("179,-1,-179,1"), 4)
    assert tuple(grid.columns()) == (15, 0) and grid.rows == range(7, 9)
    assert grid.place_px(TileKey("earth", 4, 0, 8)) == (256, 256)
    assert grid.origin_m[0] == pytest.approx(mercantile.xy_bounds(15, 7, 4).left)
    # Both ends overlap in tile space at low zooms: each column once, still in west-to-east order.
    assert tuple(tile_grid(parse_bbox("10,-1,5,1"), 1).columns()) == (1, 0)
    assert tile_grid(parse_bbox("10,-1,5,1"), 6).count == len(set(mercantile.tiles(10, -1, 5, 1, zooms=[6])))


@pytest.mark.parametrize("args, message", [
    (["--bbox", "10,42,1"], "W,S,E,N"),
    (["--bbox", "1,47,10,42"], "south < north"),
    (["--bbox", "1,42,190,47"], "[-180, 180]"),
    (["--zoom", "7-5"], "0 <= A <= B <= 30"),
])
def test_bad_regions_are_usage_errors(args: list[str], message: str) -> None:
    base = {"--bbox": "1,42,10,47", "--zoom": "5"}
    base.update(dict(zip(args[::2], args[1::2])))
    result = run_cli("seed", "--world", "earth", *[a for kv in base.items() for a in kv], "--dry-run")
    assert result.exit_code == 2 and message in result.output


def test_in_process_seed_is_served_as_cache_hits(server: ServeProcess, tiny_model_dir: Path) -> None:
    keys = [(5, 22, 13), (6, 44, 27)]  # a 2x2 block no other test touches (a window makes a whole block)
    bbox = inner_bbox(6, 44, 27, 44, 27)
    assert not cached_pngs(server.cache_dir, keys[1:])  # the zoom-5 parent may be cached by another test
    result = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "5-6",
                     *local_args(tiny_model_dir, server.cache_dir))
    assert result.exit_code == 0, result.output
    counts = summary_counts(result.stdout)
    assert counts["total"] == counts["done"] == 2 and counts["failed"] == 0
    assert counts["rendered"] >= 1  # the zoom-6 tile was new (its zoom-5 parent may come from another test)
    seeded = cached_pngs(server.cache_dir, keys)
    assert set(seeded) == set(keys)

    generated_before = server.metric("terradream_tiles_generated_total")
    for key in keys:
        response = server.tile(*key)
        assert response.status_code == 200
        assert response.headers["X-Cache"] == "hit"
        assert response.content == seeded[key]
    assert server.metric("terradream_tiles_generated_total") == generated_before


def test_seed_over_http_is_bulk_retries_503_and_fills_the_cache(server: ServeProcess) -> None:
    keys = [(6, x, y) for y in (28, 29) for x in (46, 47)]  # four tiles in four blocks, so each is made on request
    overloaded_before = server.metric("terradream_overloaded_total")
    result = run_cli("seed", "--world", "earth", "--bbox", inner_bbox(6, 46, 28, 47, 29), "--zoom", "6",
                     "--url", server.url, "--concurrency", "4", "--retries", "60")  # cold tiles take seconds here
    assert result.exit_code == 0, result.output + server.log_tail()
    counts = summary_counts(result.stdout)
    assert counts["done"] == counts["total"] == 4 and counts["failed"] == 0
    assert counts["rendered"] == 4
    # queue_max is 1: concurrent cold tiles were refused with 503 + Retry-After and fetched again.
    assert server.metric("terradream_overloaded_total") > overloaded_before
    assert set(cached_pngs(server.cache_dir, keys)) == set(keys)
    for key in keys:
        assert server.tile(*key).headers["X-Cache"] == "hit"

    again = run_cli("seed", "--world", "earth", "--bbox", inner_bbox(6, 46, 28, 47, 29), "--zoom", "6",
                    "--url", server.url)
    assert again.exit_code == 0
    assert summary_counts(again.stdout) == {"done": 4, "total": 4, "cached": 4, "rendered": 0, "failed": 0}


def test_interrupted_seed_resumes_without_generating_again(server: ServeProcess, tiny_model_dir: Path,
                                                           tmp_path: Path) -> None:
    keys = [(6, x, 20) for x in range(32, 36)]
    bbox = inner_bbox(6, 32, 20, 35, 20)
    args = ["seed", "--world", "earth", "--bbox", bbox, "--zoom", "6", "--batch-size", "1",
            *local_args(tiny_model_dir, server.cache_dir)]
    log_path = tmp_path / "seed.log"
    with log_path.open("wb") as log:
        # SIGINT as at a terminal, even where this test runs as a background job (which inherits it ignored)
        proc = subprocess.Popen([*terradream_command(), *args], stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 300
        while not cached_pngs(server.cache_dir, keys) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"seed finished before it could be interrupted:\n{log_path.read_text()}"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 130
    output = log_path.read_text()
    assert "interrupted:" in output and "run the same command again to resume" in output
    done_before = len(cached_pngs(server.cache_dir, keys))
    assert 0 < done_before < len(keys), output

    resumed = run_cli(*args)
    assert resumed.exit_code == 0, resumed.output
    counts = summary_counts(resumed.stdout)
    # what was done is not made again; a tile made as part of its neighbour's block counts as cached too
    assert counts["cached"] + counts["rendered"] == len(keys) and counts["cached"] >= done_before
    assert 0 < counts["rendered"] <= len(keys) - done_before

    generated_before = server.metric("terradream_tiles_generated_total")
    final = run_cli(*args)
    assert final.exit_code == 0
    assert summary_counts(final.stdout)["cached"] == len(keys)
    assert "the model generated 0 tiles" in final.stdout
    for key in keys:
        assert server.tile(*key).headers["X-Cache"] == "hit"
    assert server.metric("terradream_tiles_generated_total") == generated_before


def test_failures_are_listed_and_exit_nonzero(server: ServeProcess, tiny_model_dir: Path) -> None:
    bbox = inner_bbox(6, 31, 23, 31, 23)  # one tile at zoom 6, four at zoom 7 (past the server's maxzoom)
    over_http = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "6-7", "--url", server.url)
    assert over_http.exit_code == 1
    counts = summary_counts(over_http.stdout)
    assert counts["total"] == 5 and counts["failed"] == 4 and counts["cached"] + counts["rendered"] == 1
    assert "4 tiles failed:" in over_http.stderr
    for x in (62, 63):
        for y in (46, 47):
            assert f"earth/7/{x}/{y}: HTTP 404" in over_http.stderr

    in_process = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "6-7", "--retries", "0",
                         *local_args(tiny_model_dir, server.cache_dir), "--url", server.url)
    assert in_process.exit_code == 2 and "--cache, --device, --model" in in_process.output

    unreachable = run_cli("seed", "--world", "earth", "--bbox", bbox, "--zoom", "6", "--url", "http://127.0.0.1:9")
    assert unreachable.exit_code == 1 and "cannot reach http://127.0.0.1:9" in unreachable.output


def test_in_process_seed_past_maxzoom_fails_per_tile(server: ServeProcess, tiny_model_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERRADREAM_MAXZOOM", "4")  # serve's settings come from the same environment
    result = run_cli("seed", "--world", "earth", "--bbox", "1,42,10,47", "--zoom", "4-5",
                     *local_args(tiny_model_dir, server.cache_dir))
    assert result.exit_code == 1
    counts = summary_counts(result.stdout)
    assert counts["failed"] == 1 and counts["cached"] + counts["rendered"] == 1
    assert "earth/5/16/11: TileOutOfRange" in result.stderr
