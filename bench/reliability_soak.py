"""Soak: a bounded mixed load of hot, cold and bad requests against one server on 127.0.0.1.

Hot requests re-read cached tiles (bytes must never change), cold ones ask for new tiles (some on new procedural
worlds) like a polite client (Retry-After honoured), bad ones send malformed input (each must get a JSON 4xx).
Prints request counts, unexpected answers (must be 0) and the server's RSS growth between the end of the warm-up
and the end of the run (must stay under --max-rss-growth %, caches are kept small so they fill during warm-up).

Usage: .venv/bin/python bench/reliability_soak.py --seconds 300 [--model DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import string
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from reliability_common import (
    ServerProcess,
    client_from,
    emit,
    get_politely,
    percentile,
    served,
)

from terradream.cache.store import is_whole_tile_png

MAXZOOM = 12
# every earth root tile (z0..4): warming them loads the root image and fills the root-tile cache before the baseline
HOT_PATHS = [f"/tiles/earth/{z}/{x}/{y}.png" for z in range(5) for x in range(2**z) for y in range(2**z)]
RETRY_AFTER_CAP_S = 2.0


@dataclass
class Tally:
    """Counts and the unexpected answers of the whole run."""

    counts: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    hot_latency_s: list[float] = field(default_factory=list)

    def bad(self, what: str) -> None:
        """Record an unexpected answer."""
        self.counts["unexpected"] += 1
        if len(self.unexpected) < 50:
            self.unexpected.append(what)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="Total duration, warm-up included.")
    parser.add_argument("--warmup-fraction", type=float, default=0.2, help="Share of the run before the RSS baseline.")
    parser.add_argument("--hot-connections", type=int, default=4)
    parser.add_argument("--cold-connections", type=int, default=3)
    parser.add_argument("--bad-connections", type=int, default=2)
    parser.add_argument("--lru-mib", type=int, default=8, help="Server's lru_bytes in MiB (small: fills in warm-up).")
    parser.add_argument("--response-lru-mib", type=int, default=4, help="Server's response_lru_bytes in MiB.")
    parser.add_argument("--max-rss-growth", type=float, default=10.0, help="Fail above this RSS growth, in %%.")
    parser.add_argument("--new-world-fraction", type=float, default=0.0,
                        help="Share of cold requests on a brand-new procedural world (~10 s of CPU each, and up to "
                             "procedural_worlds_max of them stay in memory: RSS grows until that bound).")
    parser.add_argument("--model", default=None, help="Model directory (default: a tiny random-init model).")
    parser.add_argument("--json", default=None, help="Also write the report here.")
    return parser.parse_args()


def bad_requests(rng: random.Random) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers) of malformed requests, one of each kind."""
    z = rng.randrange(0, MAXZOOM + 1)
    return [
        ("GET", f"/tiles/earth/{MAXZOOM + 1 + rng.randrange(5)}/0/0.png", {}),
        ("GET", f"/tiles/earth/{z}/{2**z + rng.randrange(9)}/0.png", {}),
        ("GET", f"/tiles/earth/{z}/0/-{rng.randrange(1, 9)}.png", {}),
        ("GET", "/tiles/earth/" + "9" * 20 + "/0/0.png", {}),
        ("GET", f"/tiles/earth/{rng.choice(['a', '1.5', '0x1', '1e3', '%00'])}/0/0.png", {}),
        ("GET", f"/tiles/earth/1/0/0.{rng.choice(['gif', 'tiff', 'PNG', 'png.exe'])}", {}),
        ("GET", f"/tiles/{rng.choice(['Earth', 'a' * 33, 'x%0A', '%3Cscript%3E', 'a_b', 'a.b'])}/1/0/0.png", {}),
        ("GET", rng.choice(["/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2fsettings.py",
                            "/vendor/leaflet/%2e%2e/%2e%2e/package.json", "/static/%2fetc%2fpasswd"]), {}),
        ("GET", "/tiles/earth/1/0/0.png?v=" + "x" * 9000, {}),
        ("GET", "/healthz", {"X-Filler": "y" * 17000}),
        ("GET", "/tiles/earth/tilejson.json?tile_scale=" + rng.choice(["0", "3", "x"]), {}),
        ("POST", "/tiles/earth/1/0/0.png", {}),
        ("POST", "/admin/purge", {"Authorization": "Bearer " + "z" * 32}),
    ]


async def hot_worker(client: httpx.AsyncClient, server: ServerProcess, known: dict[str, bytes], tally: Tally,
                     deadline: float) -> None:
    """Re-read cached tiles; their bytes must never change."""
    while time.monotonic() < deadline:
        path = random.choice(HOT_PATHS)
        started = time.perf_counter()
        try:
            response = await client.get(server.url + path)
        except httpx.HTTPError as exc:
            tally.bad(f"hot {path}: {exc!r}")
            continue
        tally.hot_latency_s.append(time.perf_counter() - started)
        tally.counts["hot"] += 1
        if response.status_code != 200 or response.content != known[path]:
            tally.bad(f"hot {path}: HTTP {response.status_code}, {len(response.content)} bytes differ from before")
        await asyncio.sleep(0.02)


def cold_path(rng: random.Random, new_world_fraction: float) -> str:
    """A probably-new tile: earth z5..8, or (new_world_fraction of the time) a fresh procedural world."""
    if rng.random() < new_world_fraction:
        world = "soak-" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))
        return f"/tiles/{world}/{rng.randrange(3)}/0/0.png"
    z = rng.randrange(5, 9)
    return f"/tiles/earth/{z}/{rng.randrange(2**z)}/{rng.randrange(2**z)}.png"


async def cold_worker(client: httpx.AsyncClient, server: ServerProcess, tally: Tally, deadline: float,
                      seed: int, new_world_fraction: float) -> None:
    """Ask for new tiles like a polite client: Retry-After is honoured on 429/503."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        path = cold_path(rng, new_world_fraction)
        try:
            response = await client.get(server.url + path)
        except httpx.HTTPError as exc:
            tally.bad(f"cold {path}: {exc!r}")
            continue
        tally.counts[f"cold {response.status_code}"] += 1
        if response.status_code in (429, 503):
            if "retry-after" not in response.headers:
                tally.bad(f"cold {path}: {response.status_code} without Retry-After")
            await asyncio.sleep(min(RETRY_AFTER_CAP_S, float(response.headers.get("retry-after", 1))))
        elif response.status_code != 200 or not is_whole_tile_png(response.content):
            tally.bad(f"cold {path}: HTTP {response.status_code} {response.content[:80]!r}")


async def bad_worker(client: httpx.AsyncClient, server: ServerProcess, tally: Tally, deadline: float,
                     seed: int) -> None:
    """Send malformed requests; each must get a 4xx with a JSON detail."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        method, path, headers = rng.choice(bad_requests(rng))
        try:
            response = await client.request(method, server.url + path, headers=headers)
        except httpx.HTTPError as exc:
            tally.bad(f"bad {path[:80]}: {exc!r}")
            continue
        tally.counts["bad"] += 1
        ok = 400 <= response.status_code < 500
        try:
            ok = ok and bool(response.json()["detail"])
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            tally.bad(f"bad {method} {path[:80]}: HTTP {response.status_code} {response.text[:80]!r}")
        await asyncio.sleep(0.05)


async def rss_sampler(server: ServerProcess, samples: list[tuple[float, int]], deadline: float) -> None:
    """(seconds since start, RSS bytes) once a second."""
    start = time.monotonic()
    while time.monotonic() < deadline:
        samples.append((time.monotonic() - start, server.rss_bytes()))
        await asyncio.sleep(1.0)


async def soak(server: ServerProcess, args: argparse.Namespace) -> tuple[Tally, list[tuple[float, int]]]:
    """Warm the hot tiles, then run every worker until the end; returns the tally and the RSS samples."""
    known: dict[str, bytes] = {}
    async with httpx.AsyncClient(timeout=120.0) as client:
        for path in HOT_PATHS:
            known[path] = (await get_politely(client, server.url + path)).content
    tally, samples = Tally(), []
    deadline = time.monotonic() + args.seconds
    clients = [client_from(f"127.0.0.{2 + i}", 2, 300.0) for i in range(3)]
    hot_client, cold_client, bad_client = clients
    tasks = [asyncio.ensure_future(hot_worker(hot_client, server, known, tally, deadline))
             for _ in range(args.hot_connections)]
    tasks += [asyncio.ensure_future(cold_worker(cold_client, server, tally, deadline, seed, args.new_world_fraction))
              for seed in range(args.cold_connections)]
    tasks += [asyncio.ensure_future(bad_worker(bad_client, server, tally, deadline, 100 + seed))
              for seed in range(args.bad_connections)]
    tasks.append(asyncio.ensure_future(rss_sampler(server, samples, deadline)))
    await asyncio.wait(tasks, timeout=args.seconds + 60)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        await client.aclose()
    return tally, samples


def rss_growth(samples: list[tuple[float, int]], warmup_s: float) -> tuple[float, float, float]:
    """(baseline MiB, final MiB, growth %): medians of 5 samples right after the warm-up and of the last 5."""
    after = [rss for t, rss in samples if t >= warmup_s]
    if len(after) < 10:
        return float("nan"), float("nan"), float("nan")
    base, final = statistics.median(after[:5]), statistics.median(after[-5:])
    return base / 2**20, final / 2**20, (final - base) / base * 100


def main() -> int:
    """Start a server, soak it, print the report."""
    args = parse_args()
    env = {"TERRADREAM_LRU_BYTES": str(args.lru_mib * 2**20),
           "TERRADREAM_RESPONSE_LRU_BYTES": str(args.response_lru_mib * 2**20),
           # the warm-up asks for 341 new tiles at once; fairness is not tested here
           "TERRADREAM_CLIENT_COLD_BURST": "1000"}
    warmup_s = max(10.0, args.seconds * args.warmup_fraction)
    with served(["--maxzoom", str(MAXZOOM), "--queue-max", "64", "--batch-size", "4"], args.model, env) as (server, _):
        tally, samples = asyncio.run(soak(server, args))
        alive = server.proc.poll() is None
    base_mib, final_mib, growth = rss_growth(samples, warmup_s)
    hot = tally.hot_latency_s
    report: dict[str, object] = {
        "duration": f"{args.seconds:.0f} s (RSS baseline after {warmup_s:.0f} s of warm-up)",
        "requests": dict(sorted(tally.counts.items())),
        "unexpected": tally.counts["unexpected"],
        "first unexpected": tally.unexpected[:5],
        "hot latency p50 / p99 (ms)": f"{percentile(hot, 50) * 1e3:.1f} / {percentile(hot, 99) * 1e3:.1f}",
        "RSS after warm-up / at the end (MiB)": f"{base_mib:.0f} / {final_mib:.0f}",
        "RSS growth": f"{growth:+.1f} % (limit {args.max_rss_growth:g} %)",
        "server alive at the end": alive,
    }
    failed = tally.counts["unexpected"] > 0 or not growth < args.max_rss_growth or not alive
    report["verdict"] = "FAILED" if failed else "passed"
    emit(report, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
