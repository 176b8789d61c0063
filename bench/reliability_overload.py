"""Overload: a bounded flood of distinct cold deep tiles from many connections and client
addresses, all on 127.0.0.1, while a prober reads hot (cached) tiles.

Prints: server RSS and generation queue depth (bounded by --queue-max), the answers the flood got (200 / 429 / 503,
with Retry-After on every refusal), the hot tiles' latency (p50/p99/max; p99 must stay under 100 ms) and what each
client address got (one greedy address must not starve the others). Exit status 1 when a check fails.

Usage: .venv/bin/python bench/reliability_overload.py [--seconds 30] [--connections 96] [--model DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from reliability_common import (
    ServerProcess,
    client_from,
    emit,
    loopback_address,
    percentile,
    served,
)

HOT_ZOOM_MAX = 3  # earth z0..3: root tiles, cached during warm-up
RSS_WORKING_SET_MIB = 384  # generation's working set on top of the cache budgets: windows, parents, encoders; a window
# makes a 2x2 block of tiles, so a batch of cold tiles holds about twice the tiles a tile-sized window would


@dataclass
class FloodStats:
    """What the flood saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    refusals_without_retry_after: int = 0
    transport_errors: int = 0
    unexpected: list[str] = field(default_factory=list)
    ok_by_client: Counter[str] = field(default_factory=Counter)
    refused_by_client: Counter[str] = field(default_factory=Counter)
    sent: int = 0


@dataclass
class Samples:
    """Time series sampled during the flood."""

    rss_bytes: list[int] = field(default_factory=list)
    queue_depth: list[float] = field(default_factory=list)
    hot_latency_s: list[float] = field(default_factory=list)
    hot_failures: int = 0


def parse_args() -> argparse.Namespace:
    """Command-line options (all bounded)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="Flood duration.")
    parser.add_argument("--connections", type=int, default=48, help="Flood connections in all.")
    parser.add_argument("--clients", type=int, default=12, help="Distinct client addresses sharing the flood.")
    parser.add_argument("--greedy-connections", type=int, default=16,
                        help="Connections of one extra greedy client address (0: none).")
    parser.add_argument("--max-requests", type=int, default=50_000, help="Stop the flood after this many requests.")
    parser.add_argument("--zoom", type=int, default=8, help="Zoom of the cold tiles (earth is generated past z4).")
    parser.add_argument("--queue-max", type=int, default=32)
    parser.add_argument("--client-rate", type=float, default=0.5, help="Server's client_cold_rate_per_s.")
    parser.add_argument("--client-burst", type=int, default=4, help="Server's client_cold_burst.")
    parser.add_argument("--refused-pause-s", type=float, default=0.5,
                        help="Pause of a flood connection after a refusal (keeps the load generator off the CPU).")
    parser.add_argument("--hot-rate", type=float, default=20.0, help="Hot tile requests per second.")
    parser.add_argument("--hot-p99-ms", type=float, default=100.0, help="Fail when hot tiles' p99 reaches this.")
    parser.add_argument("--lru-mib", type=int, default=64, help="Server's lru_bytes, in MiB.")
    parser.add_argument("--response-lru-mib", type=int, default=16, help="Server's response_lru_bytes, in MiB.")
    parser.add_argument("--model", default=None, help="Model directory (default: a tiny random-init model).")
    parser.add_argument("--json", default=None, help="Also write the report here.")
    return parser.parse_args()


class ColdTiles:
    """Distinct random tiles at one zoom (never the same one twice)."""

    def __init__(self, zoom: int, seed: int = 7) -> None:
        """Draw from zoom's whole matrix."""
        self.zoom = zoom
        self._rng = random.Random(seed)
        self._seen: set[tuple[int, int]] = set()

    def next_path(self) -> str:
        """A tile path not handed out before."""
        n = 2**self.zoom
        while True:
            xy = (self._rng.randrange(n), self._rng.randrange(n))
            if xy not in self._seen:
                self._seen.add(xy)
                return f"/tiles/earth/{self.zoom}/{xy[0]}/{xy[1]}.png"


def hot_paths() -> list[str]:
    """Every earth tile of zooms 0..HOT_ZOOM_MAX."""
    return [f"/tiles/earth/{z}/{x}/{y}.png" for z in range(HOT_ZOOM_MAX + 1) for x in range(2**z) for y in range(2**z)]


async def flood_connection(client: httpx.AsyncClient, address: str, server: ServerProcess, tiles: ColdTiles,
                           stats: FloodStats, deadline: float, max_requests: int, pause_s: float) -> None:
    """One flood connection: request cold tiles back to back until the deadline or the request budget."""
    while time.monotonic() < deadline and stats.sent < max_requests:
        stats.sent += 1
        path = tiles.next_path()
        try:
            response = await client.get(server.url + path)
        except httpx.HTTPError as exc:
            stats.transport_errors += 1
            stats.unexpected.append(f"{path}: {exc!r}")
            continue
        stats.statuses[response.status_code] += 1
        if response.status_code == 200:
            stats.ok_by_client[address] += 1
        elif response.status_code in (429, 503):
            stats.refused_by_client[address] += 1
            if "retry-after" not in response.headers:
                stats.refusals_without_retry_after += 1
            await asyncio.sleep(pause_s)
        else:
            stats.unexpected.append(f"{path}: HTTP {response.status_code} {response.text[:100]}")


async def hot_prober(server: ServerProcess, paths: list[str], samples: Samples, deadline: float, rate: float) -> None:
    """Hot tile requests at `rate` per second, timing each."""
    async with client_from("127.0.0.1", 1, 10.0) as client:
        while time.monotonic() < deadline:
            path = random.choice(paths)
            started = time.perf_counter()
            try:
                response = await client.get(server.url + path)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            samples.hot_latency_s.append(time.perf_counter() - started)
            samples.hot_failures += 0 if ok else 1
            await asyncio.sleep(1.0 / rate)


async def sampler(server: ServerProcess, samples: Samples, deadline: float) -> None:
    """RSS and queue depth twice a second."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        while time.monotonic() < deadline:
            samples.rss_bytes.append(server.rss_bytes())
            try:
                text = (await client.get(f"{server.url}/readyz")).json()
                samples.queue_depth.append(float(text.get("queue_depth", 0)))
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.5)


async def run_flood(server: ServerProcess, args: argparse.Namespace) -> tuple[FloodStats, Samples, float]:
    """Warm the hot tiles, then flood and probe at once; returns the stats and the queue depth after the flood."""
    paths = hot_paths()
    per_address = max(1, args.client_burst)  # warm-up clients stay within their share: one address per burst
    for start in range(0, len(paths), per_address):
        async with client_from(f"127.0.100.{1 + start // per_address}", 4, 120.0) as client:
            for path in paths[start:start + per_address]:
                (await client.get(server.url + path)).raise_for_status()
    stats, samples = FloodStats(), Samples()
    tiles = ColdTiles(args.zoom)
    deadline = time.monotonic() + args.seconds
    addresses = [loopback_address(i) for i in range(args.clients)]
    plan: list[tuple[str, int]] = [(a, args.connections // args.clients) for a in addresses]
    if args.greedy_connections:
        plan.append(("127.0.200.1", args.greedy_connections))
    clients = [(address, client_from(address, n, 120.0), n) for address, n in plan]
    tasks = [asyncio.ensure_future(flood_connection(c, a, server, tiles, stats, deadline, args.max_requests,
                                                    args.refused_pause_s))
             for a, c, n in clients for _ in range(n)]
    tasks += [asyncio.ensure_future(hot_prober(server, paths, samples, deadline, args.hot_rate)),
              asyncio.ensure_future(sampler(server, samples, deadline))]
    await asyncio.wait(tasks, timeout=args.seconds + 5)
    for task in tasks:  # flood connections still waiting for a tile give up: the server drops those tiles
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for _, client, _ in clients:
        await client.aclose()
    await asyncio.sleep(3.0)
    async with httpx.AsyncClient(timeout=10.0) as client:
        after = float((await client.get(f"{server.url}/readyz")).json().get("queue_depth", -1))
    return stats, samples, after


def report_of(args: argparse.Namespace, stats: FloodStats, samples: Samples, rss_before: int, rss_after: int,
              queue_after: float) -> tuple[dict[str, object], list[str]]:
    """The printed figures and the failed checks."""
    mib = 2**20
    hot = samples.hot_latency_s
    greedy = "127.0.200.1"
    others_ok = [stats.ok_by_client[a] for a in (loopback_address(i) for i in range(args.clients))]
    report: dict[str, object] = {
        "flood": f"{args.seconds:.0f} s, {args.connections} connections from {args.clients} addresses "
                 f"+ {args.greedy_connections} greedy, z{args.zoom} cold tiles",
        "server settings": f"queue_max={args.queue_max} client_cold_rate_per_s={args.client_rate} "
                           f"client_cold_burst={args.client_burst}",
        "requests sent": stats.sent,
        "answers": dict(sorted(stats.statuses.items())),
        "refusals without Retry-After": stats.refusals_without_retry_after,
        "unexpected answers/errors": len(stats.unexpected),
        "queue depth max / limit": f"{max(samples.queue_depth, default=0):.0f} / {args.queue_max}",
        "queue depth 3 s after the flood": f"{queue_after:.0f}",
        "RSS before / max / after (MiB)": f"{rss_before / mib:.0f} / {max(samples.rss_bytes, default=0) / mib:.0f}"
                                          f" / {rss_after / mib:.0f}",
        "hot requests / failures": f"{len(hot)} / {samples.hot_failures}",
        "hot latency p50 / p99 / max (ms)": f"{percentile(hot, 50) * 1e3:.1f} / {percentile(hot, 99) * 1e3:.1f} / "
                                           f"{max(hot, default=0) * 1e3:.1f}",
        "tiles served to each fair client (min / max)": f"{min(others_ok, default=0)} / {max(others_ok, default=0)}",
        "greedy client: served / refused": f"{stats.ok_by_client[greedy]} / {stats.refused_by_client[greedy]}",
    }
    failed = []
    if max(samples.queue_depth, default=0) > args.queue_max:
        failed.append("queue depth exceeded queue_max")
    if stats.refusals_without_retry_after:
        failed.append("a refusal came without Retry-After")
    if stats.unexpected:
        failed.append(f"unexpected answers: {stats.unexpected[:3]}")
    if not stats.statuses[503]:
        failed.append("the flood never filled the queue (no 503): raise --connections or --seconds")
    if samples.hot_failures or percentile(hot, 99) * 1e3 >= args.hot_p99_ms:
        failed.append(f"hot tiles failed or p99 >= {args.hot_p99_ms:g} ms")
    rss_bound = rss_before + (args.lru_mib + args.response_lru_mib + RSS_WORKING_SET_MIB) * 2**20
    if max(samples.rss_bytes, default=0) > rss_bound:
        failed.append(f"RSS exceeded start + cache budgets + {RSS_WORKING_SET_MIB} MiB ({rss_bound / 2**20:.0f} MiB)")
    if args.greedy_connections and not stats.refused_by_client[greedy]:
        failed.append("the greedy client was never refused")
    if sum(others_ok) == 0:
        failed.append("the fair clients got no tile at all")
    report["checks"] = "all passed" if not failed else "FAILED: " + "; ".join(failed)
    return report, failed


def main() -> int:
    """Start a server, flood it, print the report."""
    args = parse_args()
    server_args = ["--queue-max", str(args.queue_max), "--batch-size", "4", "--maxzoom", str(max(args.zoom, 4))]
    env_settings = {"TERRADREAM_CLIENT_COLD_RATE_PER_S": str(args.client_rate),
                    "TERRADREAM_CLIENT_COLD_BURST": str(args.client_burst),
                    "TERRADREAM_LRU_BYTES": str(args.lru_mib * 2**20),
                    "TERRADREAM_RESPONSE_LRU_BYTES": str(args.response_lru_mib * 2**20)}
    with served(server_args, args.model, env_settings) as (server, _):
        rss_before = server.rss_bytes()
        cpu_before = server.cpu_seconds()
        stats, samples, queue_after = asyncio.run(run_flood(server, args))
        cpu_s = server.cpu_seconds() - cpu_before
        rss_after = server.rss_bytes()
    report, failed = report_of(args, stats, samples, rss_before, rss_after, queue_after)
    answered = sum(stats.statuses.values()) + len(samples.hot_latency_s)
    report["server CPU during flood"] = (f"{cpu_s:.1f} s for {answered} answers ({answered / args.seconds:.0f}/s), "
                                         f"{cpu_s / max(1, answered) * 1e3:.2f} ms per answer (generation included)")
    emit(report, args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
