"""Prometheus instruments of one app, on a private CollectorRegistry (never the process-global one)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


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
