"""Hot-tile serving: requests/s and p50/p99 latency for cached tiles over HTTP, terradream (bare, as `terradream serve`
ships it, and behind its shipped nginx front) against nginx serving the same tiles as static files (the practical
limit) and MapProxy serving them from its file cache; terradream also under uvicorn instead of granian, and with one
worker.

wrk drives every server the same way: 64 keep-alive connections on 127.0.0.1, a fixed time per scenario, once cycling a
20-tile viewport grid and once hammering a single hot tile. The tiles are generated once by terradream (default model)
before anything is timed; every server then answers from its cache. All processes are started and stopped here.
Usage: .venv/bin/python bench/hot_tiles.py [--duration 10] [--zoom 5] [--only front,nginx] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import mercantile

from terradream.api.testing import free_port, front_nginx_conf, wait_for_http

WORLD = "earth"
VIEWPORT_CENTRE_DEG = (10.0, 48.0)  # lon, lat: central Europe
VIEWPORT_COLS, VIEWPORT_ROWS = 5, 4
READY_TIMEOUT_S = 180.0
WARM_TIMEOUT_S = 900.0
NGINX = "nginx, static files"
FRONT = "terradream behind its nginx front"
OPTIONAL = ("nolru", "redis", "one-worker", "uvicorn", "front", "nginx", "mapproxy")  # phases after the warm-up
MAPPROXY_PREFIX = "/tiles/terradream/GLOBAL_WEBMERCATOR"
NO_LRU_ENV = {"TERRADREAM_LRU_BYTES": "0", "TERRADREAM_RESPONSE_LRU_BYTES": "0"}
# Hot tiles are a steady state: a started server's one-off background load of earth's data (seconds of a core per
# worker) would otherwise run during the first timed runs. No tile here needs it: all are cached.
STEADY_ENV = {"TERRADREAM_WARM_ATLASES": "0"}

WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
function setup(thread) thread:set("offset", math.random(#paths)) end
function init(args) i = offset or 0 end
function request()
  i = (i %% #paths) + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non2xx\\": %%d, \\"socket_errors\\": %%d, " ..
    "\\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    """One wrk run against one server."""

    server: str
    scenario: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def viewport_tiles(zoom: int) -> list[mercantile.Tile]:
    """The 5x4 grid of tiles around VIEWPORT_CENTRE_DEG at zoom (row-major); the hot tile is its centre."""
    centre = mercantile.tile(*VIEWPORT_CENTRE_DEG, zoom)
    x0, y0 = centre.x - VIEWPORT_COLS // 2, centre.y - VIEWPORT_ROWS // 2
    return [mercantile.Tile(x0 + i, y0 + j, zoom) for j in range(VIEWPORT_ROWS) for i in range(VIEWPORT_COLS)]


def ensure_debian_package(binary: str, package: str) -> bool:
    """Whether `binary` is on PATH, installing the Debian package first when missing and running as root."""
    if shutil.which(binary):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"[{binary} missing and not root: skipping what needs it; install it with apt-get install {package}]")
        return False
    print(f"[installing {package} with apt-get]", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    if not shutil.which(binary):
        print(f"[could not install {package}: skipping what needs {binary}]")
        return False
    return True


def tool_versions() -> str:
    """One line with the versions of the servers and the load generator (first line each tool prints)."""
    from importlib import metadata

    found = []
    for cmd in (["wrk", "-v"], ["nginx", "-v"], ["redis-server", "--version"]):
        if shutil.which(cmd[0]):
            out = subprocess.run(cmd, capture_output=True, text=True)
            version = re.search(r"\d+\.\d+(\.\d+)?", out.stdout + out.stderr)
            found.append(f"{cmd[0]} {version[0] if version else 'unknown'}")
    for package in ("granian", "uvicorn", "MapProxy", "gunicorn"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return "; ".join(found)


@contextmanager
def child(args: Sequence[str], log: Path, ready_url: str | None = None,
          env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process (output to log) until the block ends; SIGTERM, then SIGKILL after 20 s."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            if ready_url:
                wait_for_http(ready_url, alive=lambda: proc.poll() is None, timeout_s=READY_TIMEOUT_S,
                              accept=lambda status: status < 500)
            yield proc
        except Exception:
            sys.stderr.write(log.read_text(errors="replace")[-2000:])
            raise
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_every_worker_ready(url: str, in_a_row: int = 30, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll url on fresh connections until it answers 200 in_a_row times running: every worker has loaded its model
    (a worker still loading answers 503 and would be timed busy loading)."""
    deadline, streak = time.monotonic() + timeout_s, 0
    while streak < in_a_row:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}: not every worker became ready")
        streak = streak + 1 if httpx.get(url, timeout=10).status_code == 200 else 0
        time.sleep(0 if streak else 0.2)


@contextmanager
def terradream_serve(port: int, cache: Path, log: Path, redis: str | None = None,
                     env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`terradream serve` with the default model, as an operator runs it (granian, one worker per core)."""
    args = [sys.executable, "-m", "terradream.cli", "serve", "--port", str(port), "--cache", str(cache)]
    with child(args + (["--redis", redis] if redis else []), log, f"http://127.0.0.1:{port}/readyz",
               {**STEADY_ENV, **(env or {})}) as proc:
        wait_every_worker_ready(f"http://127.0.0.1:{port}/readyz")
        yield proc


@contextmanager
def terradream_uvicorn(port: int, cache: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The same app and settings under uvicorn (h11, one worker per core) instead of granian."""
    from terradream.cli.serve import SETTINGS_ENV, cpu_cores, settings_json
    from terradream.engine.settings import Settings

    workers = cpu_cores()
    settings = Settings(port=port, cache=cache, workers=workers, warm_atlases=False)  # as STEADY_ENV
    args = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--port", str(port), "--workers",
            str(workers), "--log-level", "warning", "--http", "h11", "--no-access-log",
            "terradream.cli.serve:worker_app"]
    with child(args, log, f"http://127.0.0.1:{port}/readyz", {SETTINGS_ENV: settings_json(settings)}) as proc:
        wait_every_worker_ready(f"http://127.0.0.1:{port}/readyz")
        yield proc


def fetch_all(base: str, paths: Sequence[str], timeout_s: float) -> dict[str, httpx.Response]:
    """GET every path at once (the server may batch them); retry 503s until timeout_s."""
    deadline = time.monotonic() + timeout_s

    def get(path: str) -> httpx.Response:
        while True:
            response = httpx.get(base + path, timeout=timeout_s)
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
            time.sleep(float(response.headers.get("retry-after", "1")))

    with ThreadPoolExecutor(len(paths)) as pool:
        responses = dict(zip(paths, pool.map(get, paths)))
    bad = {p: r.status_code for p, r in responses.items() if r.status_code != 200}
    if bad:
        raise RuntimeError(f"{base}: non-200 answers {bad}")
    return responses


def check_cached(base: str, paths: Sequence[str], expected: dict[str, bytes]) -> None:
    """Every path answers 200 with the expected bytes (and X-Cache: hit where the server says)."""
    for path, response in fetch_all(base, paths, 30.0).items():
        if response.content != expected[path]:
            raise RuntimeError(f"{base}{path}: bytes differ from the warmed tile")
        if response.headers.get("x-cache", "hit") != "hit":
            raise RuntimeError(f"{base}{path}: not served from the cache")


def run_wrk(base: str, paths: Sequence[str], duration_s: int, connections: int, threads: int,
            workdir: Path) -> dict[str, float]:
    """One wrk run cycling paths; the numbers its done() hook prints."""
    script = workdir / "paths.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths)})
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "5s", "-s", str(script), base]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]))
    raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")


def measure(name: str, base: str, url_paths: Sequence[str], args: argparse.Namespace, workdir: Path) -> list[Result]:
    """The viewport and hot-tile scenarios against one server."""
    results = []
    hot = url_paths[len(url_paths) // 2]
    run_wrk(base, url_paths, 1, args.connections, args.threads, workdir)  # untimed warm-up: connections, caches
    for scenario, paths in (("viewport (20 tiles)", url_paths), ("hot tile", [hot])):
        raw = run_wrk(base, paths, args.duration, args.connections, args.threads, workdir)
        seconds = raw["duration_us"] / 1e6
        result = Result(name, scenario, int(raw["requests"]), raw["requests"] / seconds, raw["p50_us"] / 1e3,
                        raw["p99_us"] / 1e3, int(raw["non2xx"] + raw["socket_errors"]))
        print(f"  {name:42s} {scenario:20s} {result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
              f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}", file=sys.stderr, flush=True)
        results.append(result)
    return results


def nginx_conf(prefix: Path, root: Path, port: int) -> str:
    """A minimal static-file nginx: one worker per core, keep-alive without a request cap, no access log."""
    return f"""
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types {{ image/png png; }}
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location / {{ try_files $uri =404; }}
  }}
}}
"""


def mapproxy_conf(cache_dir: Path, upstream: str) -> str:
    """MapProxy: one layer from a file cache (GLOBAL_WEBMERCATOR, XYZ origin) filled from an upstream tile source."""
    return json.dumps({
        "services": {"tms": {"use_grid_names": True, "origin": "nw"}},
        "layers": [{"name": "terradream", "title": "terradream", "sources": ["tiles_cache"]}],
        "caches": {"tiles_cache": {
            "grids": ["GLOBAL_WEBMERCATOR"], "sources": ["upstream"], "format": "image/png",
            "meta_size": [1, 1], "meta_buffer": 0,
            "cache": {"type": "file", "directory_layout": "tc", "directory": str(cache_dir)}}},
        "sources": {"upstream": {"type": "tile", "grid": "GLOBAL_WEBMERCATOR",
                                 "url": upstream + "/%(z)s/%(x)s/%(y)s.png"}},
        "globals": {"image": {"paletted": False}},
    }, indent=2)


def mapproxy_serve(conf: Path, port: int, log: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """MapProxy's WSGI app under gunicorn: a worker per core, gthread (keep-alive) with 16 threads each."""
    args = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--workers", str(os.cpu_count() or 2), "--threads", "16",
            "--keep-alive", "75", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            f"mapproxy.wsgiapp:make_wsgi_app({str(conf)!r})"]
    return child(args, log, f"http://127.0.0.1:{port}/tiles/1.0.0/")


def wait_redis(url: str, timeout_s: float = 10.0) -> None:
    """Poll a Redis server until it answers PING."""
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def copy_mbtiles_to_redis(cache_dir: Path, redis_url: str, version: str, tiles: Sequence[mercantile.Tile]) -> int:
    """Put the warmed tiles from the embedded cache into Redis under the server's keys (no second generation)."""
    from terradream.cache import CacheKey, MBTilesCache, RedisCache

    keys = [CacheKey(WORLD, version, t.z, t.x, t.y) for t in tiles]
    source, target = MBTilesCache(cache_dir), RedisCache(redis_url)
    try:
        found = source.get_many(keys)
        target.put_many(found)
    finally:
        source.close()
        target.close()
    return len(found)


def print_table(results: Sequence[Result], baseline: str) -> None:
    """Markdown table; the ratio column is requests/s against the baseline server in the same scenario."""
    base = {r.scenario: r.rps for r in results if r.server == baseline}
    print("| server | scenario | req/s | p50 ms | p99 ms | errors | vs nginx |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        ratio = f"{r.rps / base[r.scenario]:.2f}x" if r.scenario in base else "n/a"
        print(f"| {r.server} | {r.scenario} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | {ratio} |")


@dataclass
class Setup:
    """What every phase shares: options, the scratch folder, the tiles and their warmed bytes."""

    args: argparse.Namespace
    tmp: Path
    tiles: list[mercantile.Tile]
    xyz: list[str]  # /z/x/y.png
    warmed: dict[str, bytes]  # by /z/x/y.png
    version: str = ""

    @property
    def logs(self) -> Path:
        """Server logs (printed when a server fails)."""
        return self.tmp / "logs"

    def paths(self, prefix: str) -> list[str]:
        """The viewport's URL paths on a server that puts prefix before /z/x/y.png."""
        return [prefix + p for p in self.xyz]

    def expected(self, prefix: str) -> dict[str, bytes]:
        """The warmed bytes by URL path on such a server."""
        return {prefix + p: data for p, data in self.warmed.items()}


def warm(setup: Setup, port: int, with_mapproxy: bool = True) -> list[Result]:
    """Generate the tiles on an embedded-cache terradream, export them as static files, fill MapProxy's cache from
    it (unless told not to), then measure it."""
    base, paths = f"http://127.0.0.1:{port}", setup.paths(f"/tiles/{WORLD}")
    with terradream_serve(port, setup.tmp / "cache", setup.logs / "terradream.log"):
        start = time.perf_counter()
        responses = fetch_all(base, paths, WARM_TIMEOUT_S)
        setup.version = httpx.get(f"{base}/readyz", timeout=10).json()["version"]
        print(f"warmed {len(responses)} tiles with model {setup.version} in {time.perf_counter() - start:.1f} s",
              flush=True)
        setup.warmed.update({p: responses[td].content for p, td in zip(setup.xyz, paths)})
        for path, data in setup.warmed.items():
            (setup.tmp / "static" / path[1:]).parent.mkdir(parents=True, exist_ok=True)
            (setup.tmp / "static" / path[1:]).write_bytes(data)
        if with_mapproxy:
            (setup.tmp / "mapproxy.yaml").write_text(mapproxy_conf(setup.tmp / "mapproxy-cache",
                                                                   f"{base}/tiles/{WORLD}"))
            fill_port = free_port()
            with mapproxy_serve(setup.tmp / "mapproxy.yaml", fill_port, setup.logs / "mapproxy.log"):
                fetch_all(f"http://127.0.0.1:{fill_port}", setup.paths(MAPPROXY_PREFIX), 60.0)
        check_cached(base, paths, setup.expected(f"/tiles/{WORLD}"))
        return measure("terradream, embedded cache", base, paths, setup.args, setup.tmp)


def bench_terradream(setup: Setup, name: str, redis: str | None = None,
                     env: dict[str, str] | None = None) -> list[Result]:
    """One terradream configuration over the warmed cache."""
    port = free_port()
    base, paths = f"http://127.0.0.1:{port}", setup.paths(f"/tiles/{WORLD}")
    with terradream_serve(port, setup.tmp / "cache", setup.logs / "terradream.log", redis=redis, env=env):
        check_cached(base, paths, setup.expected(f"/tiles/{WORLD}"))
        return measure(name, base, paths, setup.args, setup.tmp)


def bench_uvicorn(setup: Setup) -> list[Result]:
    """terradream under uvicorn over the warmed cache (the same app, settings and workers as `terradream serve`)."""
    port = free_port()
    base, paths = f"http://127.0.0.1:{port}", setup.paths(f"/tiles/{WORLD}")
    with terradream_uvicorn(port, setup.tmp / "cache", setup.logs / "uvicorn.log"):
        check_cached(base, paths, setup.expected(f"/tiles/{WORLD}"))
        return measure("terradream, embedded cache, uvicorn", base, paths, setup.args, setup.tmp)


def bench_front(setup: Setup) -> list[Result]:
    """`terradream serve` behind the shipped nginx front (deploy/nginx-tiles.conf): hot tiles from nginx's cache."""
    api_port, port = free_port(), free_port()
    prefix = setup.tmp / "front"
    prefix.mkdir()
    os.chmod(setup.tmp, 0o755)  # nginx workers run as nobody when started by root
    (prefix / "nginx.conf").write_text(front_nginx_conf(prefix, api_port, port))
    base, paths = f"http://127.0.0.1:{port}", setup.paths(f"/tiles/{WORLD}")
    nginx = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    with terradream_serve(api_port, setup.tmp / "cache", setup.logs / "terradream.log"), \
            child(nginx, setup.logs / "front.log", f"{base}/healthz"):
        check_cached(base, paths, setup.expected(f"/tiles/{WORLD}"))  # the front's first fetch of each tile
        check_cached(base, paths, setup.expected(f"/tiles/{WORLD}"))
        return measure(FRONT, base, paths, setup.args, setup.tmp)


def bench_redis(setup: Setup) -> list[Result]:
    """A fresh redis-server holding the warmed tiles (copied from the embedded cache), terradream in front of it."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(setup.tmp)]
    with child(args, setup.logs / "redis.log"):
        wait_redis(url)
        copied = copy_mbtiles_to_redis(setup.tmp / "cache", url, setup.version, setup.tiles)
        if copied != len(setup.tiles):
            raise RuntimeError(f"only {copied} of {len(setup.tiles)} tiles found in the embedded cache")
        return (bench_terradream(setup, "terradream, Redis", redis=url)
                + bench_terradream(setup, "terradream, Redis, no memory LRU", redis=url, env=NO_LRU_ENV))


def bench_nginx(setup: Setup) -> list[Result]:
    """nginx serving the exported tiles as static files."""
    prefix = setup.tmp / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True)
    os.chmod(setup.tmp, 0o755)  # nginx workers run as nobody when started by root
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (prefix / "nginx.conf").write_text(nginx_conf(prefix, setup.tmp / "static", port))
    args = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    with child(args, setup.logs / "nginx.log", base + setup.xyz[0]):
        check_cached(base, setup.xyz, setup.warmed)
        return measure(NGINX, base, setup.xyz, setup.args, setup.tmp)


def bench_mapproxy(setup: Setup) -> list[Result]:
    """MapProxy answering from the file cache that warm() filled (its upstream is gone by now)."""
    port = free_port()
    base, paths = f"http://127.0.0.1:{port}", setup.paths(MAPPROXY_PREFIX)
    with mapproxy_serve(setup.tmp / "mapproxy.yaml", port, setup.logs / "mapproxy.log"):
        check_cached(base, paths, setup.expected(MAPPROXY_PREFIX))
        return measure("MapProxy, file cache (gunicorn)", base, paths, setup.args, setup.tmp)


def main(argv: Sequence[str] | None = None) -> None:
    """Warm, then measure every server in turn; print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario and server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 2), help="wrk threads")
    parser.add_argument("--zoom", type=int, default=5, help="zoom of the viewport (z5+ generates, z<=4 are roots)")
    parser.add_argument("--only", default=",".join(OPTIONAL),
                        help=f"comma-separated phases after the warm-up (default all): {', '.join(OPTIONAL)}")
    parser.add_argument("--json", type=Path, default=Path("bench/out/hot_tiles.json"))
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) - {""}
    if only - set(OPTIONAL):
        parser.error(f"unknown phases {sorted(only - set(OPTIONAL))}; choose from {', '.join(OPTIONAL)}")
    if not ensure_debian_package("wrk", "wrk"):
        print("hot tiles: skipped (no wrk)")
        return
    has_nginx = ensure_debian_package("nginx", "nginx-light")
    has_redis = ensure_debian_package("redis-server", "redis-server")
    tiles = viewport_tiles(args.zoom)
    xyz = [f"/{t.z}/{t.x}/{t.y}.png" for t in tiles]
    print(f"hot tiles: {len(tiles)} tiles at z{args.zoom} around {VIEWPORT_CENTRE_DEG}, hot tile {xyz[len(xyz) // 2]}, "
          f"wrk {args.threads} threads, {args.connections} connections, {args.duration} s per run, "
          f"{os.cpu_count()} cores", flush=True)
    print(f"versions: {tool_versions()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="terradream-bench-") as tmp_name:
        setup = Setup(args, Path(tmp_name), tiles, xyz, {})
        setup.logs.mkdir()
        results = warm(setup, free_port(), with_mapproxy="mapproxy" in only)
        if "one-worker" in only:
            results += bench_terradream(setup, "terradream, embedded cache, 1 worker", env={"TERRADREAM_WORKERS": "1"})
        if "nolru" in only:
            results += bench_terradream(setup, "terradream, embedded cache, no memory LRU", env=NO_LRU_ENV)
        if "uvicorn" in only:
            results += bench_uvicorn(setup)
        results += bench_redis(setup) if has_redis and "redis" in only else []
        results += bench_front(setup) if has_nginx and "front" in only else []
        results += bench_nginx(setup) if has_nginx and "nginx" in only else []
        results += bench_mapproxy(setup) if "mapproxy" in only else []
    print_table(results, NGINX)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"zoom": args.zoom, "duration_s": args.duration, "connections": args.connections,
                                     "results": [asdict(r) for r in results]}, indent=2))


if __name__ == "__main__":
    main()
