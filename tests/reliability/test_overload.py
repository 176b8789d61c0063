"""Overload: per-client fair share of cold generation (429), a bounded queue (503), both with
Retry-After, hot tiles unaffected; and a short run of bench/reliability_overload.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server.conftest import ThreadServer, free_port

from terradream.core.errors import RateLimited
from terradream.engine.admission import FairShare, seconds_until_token
from terradream.engine.settings import Settings

REPO = Path(__file__).resolve().parents[2]
HOT_P99_MS_CI = float(os.environ.get("TERRADREAM_TEST_HOT_P99_MS", "250"))  # the bench's own limit is 100 ms


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_token_bucket_burst_refill_and_retry_after() -> None:
    clock = FakeClock()
    share = FairShare(rate_per_s=0.5, burst=3, clock=clock)
    for _ in range(3):
        share.take("a")
    with pytest.raises(RateLimited) as refused:
        share.take("a")
    assert refused.value.retry_after_s == 2  # one token takes 2 s at 0.5/s
    share.take("b")  # another client is unaffected
    clock.now_s += 2.0
    share.take("a")  # refilled
    with pytest.raises(RateLimited):
        share.check("a")
    clock.now_s += 100.0
    assert share.tokens("a") == 3.0  # never above the burst
    assert seconds_until_token(0.9, 10.0) == 1 and seconds_until_token(0.0, 0.25) == 4


def test_bucket_table_is_bounded() -> None:
    share = FairShare(rate_per_s=1.0, burst=1, clients_max=100)
    for i in range(10_000):
        share.take(f"10.0.{i // 256}.{i % 256}")
    assert len(share._buckets) == 100


async def get_from(address: str, url: str) -> httpx.Response:
    """GET url over a connection leaving from a given loopback address (a distinct client)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, timeout=300) as client:
        return await client.get(url)


@pytest.fixture
def limited(tiny_model_dir: Path, tmp_path: Path) -> Iterator[ThreadServer]:
    """A server with a tight fair share (burst 3) and a short queue (5)."""
    server = ThreadServer(Settings(model=tiny_model_dir, device="cpu", port=free_port(), cache=tmp_path / "cache",
                                   client_cold_rate_per_s=0.05, client_cold_burst=3, queue_max=5, retry_after_s=3))
    yield server
    server.stop()


def test_fair_share_then_full_queue(limited: ThreadServer) -> None:
    url = limited.url
    hot = httpx.get(f"{url}/tiles/earth/0/0/0.png", timeout=120)  # cached before the worker stops
    assert hot.status_code == 200
    limited.generation.pause()

    async def scenario() -> None:
        tile = f"{url}/tiles/earth/5/{{}}/9.png"
        greedy = [asyncio.ensure_future(get_from("127.0.2.1", tile.format(x))) for x in range(3)]
        await asyncio.sleep(1.0)
        assert limited.generation.queue_depth == 3
        refused = await get_from("127.0.2.1", tile.format(3))  # the greedy client's 4th new tile
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1 and "share" in refused.json()["detail"]
        joined = asyncio.ensure_future(get_from("127.0.2.1", tile.format(0)))  # joining a queued tile is free
        other = [asyncio.ensure_future(get_from("127.0.3.1", tile.format(x))) for x in (10, 11)]
        await asyncio.sleep(1.0)
        assert limited.generation.queue_depth == 5
        full = await get_from("127.0.4.1", tile.format(20))
        assert full.status_code == 503 and full.headers["retry-after"] == "3"
        assert "queue is full" in full.json()["detail"]
        assert limited.generation.fair_share is not None
        assert limited.generation.fair_share.tokens("127.0.4.1") == 3.0  # a 503 costs no token
        started = time.monotonic()  # hot tiles are still served at once, even to the refused client
        again = await get_from("127.0.2.1", f"{url}/tiles/earth/0/0/0.png")
        assert again.status_code == 200 and again.content == hot.content and time.monotonic() - started < 1.0
        limited.generation.resume()
        answers = await asyncio.gather(*greedy, joined, *other)
        assert [a.status_code for a in answers] == [200] * 6

    asyncio.run(scenario())
    assert limited.metric("terradream_rate_limited_total") == 1
    assert limited.metric("terradream_overloaded_total") == 1


def test_overload_bench_short_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "overload.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "reliability_overload.py"), "--seconds", "15", "--model",
         str(tiny_model_dir), "--hot-p99-ms", str(HOT_P99_MS_CI), "--json", str(out)],
        capture_output=True, text=True, timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO,
        check=False)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["checks"] == "all passed"
    assert report["refusals without Retry-After"] == 0 and report["unexpected answers/errors"] == 0
    assert "503" in report["answers"] or 503 in report["answers"]
