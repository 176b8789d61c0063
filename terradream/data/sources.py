"""Where `seed` and `export` get tiles: the engine in this process, or a running server over HTTP.

Both hand over canonical PNG bytes through the same callback, so seeding (which drops them) and exporting (which writes
them) share one path. In-process, tiles already cached are read, the rest are rendered through the cascade in batches
and written to the same cache the server uses. Over HTTP, requests are marked bulk (interactive users go first), run
with bounded concurrency, and 503/429/5xx answers are retried, honouring Retry-After. Seeding over HTTP needs no bytes,
so it asks with HEAD: the server makes (or finds) the tile as for GET and says X-Cache, but sends no body.
"""

from __future__ import annotations

import asyncio
import email.utils
import html
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

from terradream import __version__
from terradream.core.errors import TerradreamError
from terradream.core.keys import TileKey
from terradream.engine.engine import Engine, load_engine
from terradream.engine.metrics import ServerMetrics
from terradream.engine.settings import Settings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0
MAX_BACKOFF_S = 30.0
LOADING_WAIT_S = 300.0  # how long to wait for a server that answers 503 while its model loads


class SourceError(Exception):
    """The source cannot serve this request at all (unknown world, unreachable server): nothing to retry."""


@dataclass(frozen=True)
class TileOutcome:
    """One tile's result: its PNG (None on failure, or when only asked to exist), whether it was already cached, and
    why it failed (None on success)."""

    key: TileKey
    png: bytes | None
    cached: bool = False
    error: str | None = None


@dataclass(frozen=True)
class TilesetInfo:
    """What a source says about a world: model version, attribution, description and the deepest zoom it serves."""

    version: str
    attribution: str
    description: str
    maxzoom: int


OnOutcome = Callable[[TileOutcome], None]


class TileSource(Protocol):
    """Tiles for seed and export, delivered one outcome at a time (order not guaranteed)."""

    def info(self, world: str) -> TilesetInfo:
        """The world's tileset description; SourceError when the world is not served."""
        ...

    def run(self, keys: Iterable[TileKey], on_outcome: OnOutcome) -> None:
        """Fetch or render every key, calling on_outcome once per key as it completes."""
        ...

    @property
    def generated(self) -> int | None:
        """Tiles this source's model produced so far (parents included), when it can know; None over HTTP."""
        ...

    def close(self) -> None:
        """Release the model, cache or connections."""
        ...


def chunks(keys: Iterable[TileKey], size: int) -> Iterator[list[TileKey]]:
    """keys in consecutive lists of at most size (consumed lazily)."""
    it = iter(keys)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class LocalSource:
    """The engine in this process: the server's model, worlds and cache stack, loaded from the same Settings.

    It takes no cross-process lock: a tile a server renders at the same moment is rendered twice, identically.
    """

    def __init__(self, settings: Settings) -> None:
        """Load the model and open the cache (blocking: seconds); renders settings.batch_size tiles per call."""
        self.settings = settings
        # Renders in this process even where a scheduler is configured: seeding is the renderer here.
        self.engine: Engine = load_engine(settings.model_copy(update={"scheduler": None}), ServerMetrics())
        self.store = self.engine.generation.store

    def info(self, world: str) -> TilesetInfo:
        """The world as this process's registry resolves it."""
        try:
            found = self.engine.worlds.get(world)
        except TerradreamError as exc:
            raise SourceError(str(exc)) from exc
        return TilesetInfo(self.engine.version, found.attribution, found.description, self.settings.maxzoom)

    def run(self, keys: Iterable[TileKey], on_outcome: OnOutcome) -> None:
        """Batch by batch: report invalid and cached tiles, render the missing ones (the cascade caches them)."""
        for chunk in chunks(keys, self.settings.batch_size):
            valid = []
            for key in chunk:
                try:
                    valid.append(self.engine.cascade.tile_key(*key, maxzoom=self.settings.maxzoom))
                except TerradreamError as exc:  # outside the matrix or past maxzoom: what the server answers 404
                    on_outcome(TileOutcome(key, None, error=f"{type(exc).__name__}: {exc}"))
            cached = self.cached_pngs(valid)
            for key, png in cached.items():
                on_outcome(TileOutcome(key, png, cached=True))
            missing = [k for k in valid if k not in cached]
            if missing:
                for outcome in self.render(missing):
                    on_outcome(outcome)

    def cached_pngs(self, keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
        """The PNGs of keys already in the cache."""
        by_cache_key = {self.store.cache_key(k): k for k in keys}
        return {by_cache_key[ck]: png for ck, png in self.store.cache.get_many(list(by_cache_key)).items()}

    def render(self, keys: Sequence[TileKey]) -> list[TileOutcome]:
        """Render keys in one cascade call; a failure fails the whole batch (each tile says why)."""
        try:
            self.engine.cascade.render(keys)
        except Exception as exc:  # noqa: BLE001 - reported per tile, the run goes on with the next batch
            self.store.take_written()
            return [TileOutcome(k, None, error=f"{type(exc).__name__}: {exc}") for k in keys]
        written = self.store.take_written()
        outcomes = []
        for key in keys:
            png = written.get(key) or self.store.get_png(key)  # made by another process meanwhile: read it back
            outcomes.append(TileOutcome(key, png, error=None if png else "rendered but not found in the cache"))
        return outcomes

    @property
    def generated(self) -> int | None:
        """Tiles the model produced in this process so far (parents included)."""
        return int(self.engine.cascade.stats.tiles_generated)

    def close(self) -> None:
        """Close the cache (and Redis lock connections)."""
        asyncio.run(self.engine.close())


def backoff_s(attempt: int) -> float:
    """Exponential back-off before retry number attempt (0-based): 0.5 s doubling, at most MAX_BACKOFF_S."""
    return min(0.5 * 2.0**attempt, MAX_BACKOFF_S)


def retry_after_s(value: str | None, default_s: float, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped to [0, MAX_RETRY_AFTER_S]."""
    if value is None:
        return default_s
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default_s
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def error_detail(response: httpx.Response) -> str:
    """'HTTP <status>: <detail>' from a JSON {"detail": ...} body, else the start of the body."""
    try:
        detail = str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = response.text[:200]
    return f"HTTP {response.status_code}: {detail}".rstrip(": ")


class HttpSource:
    """A running terradream server: GET (or HEAD) /tiles/{world}/{z}/{x}/{y}.png with X-Terradream-Priority: bulk."""

    def __init__(self, base_url: str, concurrency: int = 4, retries: int = 10, timeout_s: float = 600.0,
                 bodies: bool = True) -> None:
        """Talk to base_url with at most `concurrency` requests in flight, retrying each tile up to `retries` times;
        without bodies, tiles are requested with HEAD (made and cached all the same) and outcomes carry no PNG."""
        self.method = "GET" if bodies else "HEAD"
        self.base_url = base_url.rstrip("/")
        self.concurrency = max(1, concurrency)
        self.retries = max(0, retries)
        self.timeout = httpx.Timeout(timeout_s, connect=10.0)
        self.headers = {"X-Terradream-Priority": "bulk", "User-Agent": f"terradream/{__version__}"}

    def info(self, world: str) -> TilesetInfo:
        """From the world's TileJSON; waits while the server answers 503 (model loading)."""
        url = f"{self.base_url}/tiles/{world}/tilejson.json"
        deadline = time.monotonic() + LOADING_WAIT_S
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            while True:
                try:
                    response = client.get(url)
                except httpx.TransportError as exc:
                    raise SourceError(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from exc
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(retry_after_s(response.headers.get("Retry-After"), 1.0))
        if response.status_code != 200:
            raise SourceError(f"{url}: {error_detail(response)}")
        tilejson = response.json()
        version = str(tilejson.get("version", "")).rpartition("+")[2]  # semver 1.0.0+<model version>
        return TilesetInfo(version, html.unescape(str(tilejson.get("attribution", ""))),
                           str(tilejson.get("description", "")), int(tilejson.get("maxzoom", 30)))

    def run(self, keys: Iterable[TileKey], on_outcome: OnOutcome) -> None:
        """Fetch every key with `concurrency` workers on one event loop (Ctrl-C cancels them cleanly)."""
        asyncio.run(self._run(keys, on_outcome))

    async def _run(self, keys: Iterable[TileKey], on_outcome: OnOutcome) -> None:
        """Workers share one iterator of keys, so at most `concurrency` tiles are in flight."""
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, limits=limits,
                                     headers=self.headers) as client:
            todo = iter(keys)

            async def worker() -> None:
                for key in todo:
                    on_outcome(await self.fetch(client, key))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def fetch(self, client: httpx.AsyncClient, key: TileKey) -> TileOutcome:
        """One tile: 200 is done; 429/5xx and transport errors are retried (Retry-After honoured); 4xx fail."""
        url = f"/tiles/{key.world}/{key.z}/{key.x}/{key.y}.png"
        error = "not tried"
        for attempt in range(self.retries + 1):
            try:
                response = await client.request(self.method, url)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                delay_s = backoff_s(attempt)
            else:
                if response.status_code == 200:
                    return TileOutcome(key, response.content if self.method == "GET" else None,
                                       cached=response.headers.get("X-Cache") == "hit")
                if response.status_code not in RETRY_STATUSES:
                    if self.method == "HEAD":  # a HEAD answer has no body to say why: ask once more with GET
                        response = await client.get(url)
                    if response.status_code != 200:
                        return TileOutcome(key, None, error=error_detail(response))
                    return TileOutcome(key, None, cached=response.headers.get("X-Cache") == "hit")
                error = error_detail(response)
                delay_s = retry_after_s(response.headers.get("Retry-After"), backoff_s(attempt))
            if attempt < self.retries:
                await asyncio.sleep(delay_s)
        return TileOutcome(key, None, error=f"{error} (gave up after {self.retries + 1} tries)")

    @property
    def generated(self) -> int | None:
        """Unknown over HTTP (the server's /metrics counts it)."""
        return None

    def close(self) -> None:
        """Nothing held between runs."""
