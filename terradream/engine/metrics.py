"""Prometheus instruments of one app, on a private CollectorRegistry (never the process-global one)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from terradream.cache.mbtiles import MBTilesCache
from terradream.cache.tiered import TieredCache

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
HTTP_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, *LATENCY_BUCKETS_S)  # cache hits answer in about a millisecond


class ServerMetrics:
    """The counters, gauges and histograms /metrics exposes; one instance per app so tests and apps never collide."""

    def __init__(self) -> None:
        """Create every instrument on a fresh registry."""
        self.registry = CollectorRegistry()
        self.tiles_generated = Counter(
            "terradream_tiles_generated", "Tiles the model produced (requested tiles and the parents they needed).",
            registry=self.registry)
        self.tile_requests = Counter(
            "terradream_tile_requests", "Tile requests answered with a tile, by whether it was already cached.",
            ["cache"], registry=self.registry)
        self.generation_seconds = Histogram(
            "terradream_generation_seconds", "Wall time of one batched cascade render.",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.batch_size = Histogram(
            "terradream_batch_size", "Distinct requested tiles per cascade render.",
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge(
            "terradream_queue_depth", "Tiles waiting for the generation worker.", registry=self.registry)
        self.tiles_dropped = Counter(
            "terradream_tiles_dropped", "Queued tiles dropped because every requester went away.",
            registry=self.registry)
        self.overloaded = Counter(
            "terradream_overloaded",
            "Cold tile requests refused at once with 503: queue full, or expected wait past the cold deadline.",
            registry=self.registry)
        self.deadline_expired = Counter(
            "terradream_deadline_expired", "Queued cold tile requests answered 503 when the cold deadline passed.",
            registry=self.registry)
        self.rate_limited = Counter(
            "terradream_rate_limited", "Cold tile requests refused with 429: the client used up its fair share.",
            registry=self.registry)
        self.http_request_seconds = Histogram(
            "terradream_http_request_seconds", "HTTP request latency by method, route template and status.",
            ["method", "route", "status"], buckets=HTTP_LATENCY_BUCKETS_S, registry=self.registry)

    def watch_cache(self, cache: TieredCache) -> None:
        """Read the cache's write health (and the embedded cache's disk use and evictions) at every scrape."""
        Gauge("terradream_cache_write_failing", "1 while writes to the shared/persistent cache fail (tiles are "
              "then kept in memory only).", registry=self.registry).set_function(lambda: cache.write_error is not None)
        back = cache.back
        if not isinstance(back, MBTilesCache):
            return
        Gauge("terradream_cache_disk_full", "1 while the embedded cache's disk is full.",
              registry=self.registry).set_function(lambda: back.disk_full)
        Gauge("terradream_cache_bytes", "Bytes the embedded cache takes on disk.",
              registry=self.registry).set_function(back.used_bytes)
        Gauge("terradream_cache_max_bytes", "The embedded cache's disk budget (0: none).",
              registry=self.registry).set_function(lambda: back.max_bytes or 0)
        Gauge("terradream_cache_evicted_tiles", "Least recently used tiles this process evicted from the embedded "
              "cache since it started.", registry=self.registry).set_function(lambda: back.evicted_tiles)

    def watch_queue_depth(self, depth: Callable[[], float]) -> None:
        """Read the queue depth from `depth` at every scrape."""
        self.queue_depth.set_function(depth)

    def observe_batch(self, tiles: int, seconds: float, generated: int) -> None:
        """Record one cascade render of `tiles` requested tiles that made `generated` new tiles in `seconds`."""
        self.batch_size.observe(tiles)
        self.generation_seconds.observe(seconds)
        if generated > 0:
            self.tiles_generated.inc(generated)

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        return generate_latest(self.registry)
