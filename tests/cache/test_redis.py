"""RedisCache against a real redis-server: round trips, TTL, purge, passwords, TLS, outages and recovery."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from terradream.api.testing import free_port
from terradream.cache import CacheKey, RedisCache, safe_url
from terradream.core.regions import TileRange

from .tiles import solid_png

KEY = CacheKey("earth", "v1", 3, 2, 1)


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll check() until it is true or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_round_trip_key_layout_and_ttl(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix="td", ttl_s=100)
    tile = solid_png((1, 2, 3))
    cache.put(KEY, tile)
    assert cache.get(KEY) == tile
    assert cache.get(KEY._replace(version="v2")) is None
    raw = redis.Redis.from_url(redis_url)
    assert raw.get("td:tile:earth:v1:3:2:1") == tile
    assert 90 < raw.ttl("td:tile:earth:v1:3:2:1") <= 100
    cache.put_many({KEY._replace(x=0): b"a", KEY._replace(x=1): b"b"})
    assert cache.get_many([KEY._replace(x=0), KEY._replace(x=1), KEY._replace(x=3)]) == {
        KEY._replace(x=0): b"a", KEY._replace(x=1): b"b"}
    assert cache.ping() and not cache.degraded
    cache.close()


def test_purge_by_world_version_and_range(redis_url: str) -> None:
    cache = RedisCache(redis_url)
    cache.put_many({CacheKey("earth", "v1", 2, x, y): b"t" for x in range(4) for y in range(4)})
    cache.put(CacheKey("earth", "v2", 2, 0, 0), b"t")
    cache.put(CacheKey("earth-two", "v1", 2, 0, 0), b"t")
    assert cache.purge("earth", "v1", [TileRange(2, 2, 2, 3, 3)]) == 4
    assert cache.get(CacheKey("earth", "v1", 2, 3, 3)) is None
    assert cache.get(CacheKey("earth", "v1", 2, 1, 1)) == b"t"
    assert cache.purge("earth") == 13
    assert cache.get(CacheKey("earth-two", "v1", 2, 0, 0)) == b"t"


def test_password_auth_and_no_password_in_describe_or_logs(
        redis_server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "pa55-word-xyz"
    server = type(redis_server)(tmp_path, password=secret)
    server.start()
    try:
        cache = RedisCache(server.url, retry_after_s=0.05)
        cache.put(KEY, b"tile")
        assert cache.get(KEY) == b"tile"
        assert secret not in cache.describe() and "127.0.0.1" in cache.describe()
        caplog.set_level(logging.DEBUG)
        wrong = RedisCache(server.url.replace(secret, "wrong-" + secret), retry_after_s=0.05)
        assert wrong.get(KEY) is None and not wrong.ping() and wrong.degraded
        server.stop()
        assert cache.get(KEY) is None and cache.degraded
        assert caplog.records and all(secret not in r.getMessage() for r in caplog.records)
    finally:
        server.stop()


def test_safe_url_masks_password_only() -> None:
    assert safe_url("rediss://user:hunter2@cache.example:6380/1") == "rediss://user:***@cache.example:6380/1"
    assert safe_url("redis://:hunter2@[::1]:6379/0") == "redis://:***@[::1]:6379/0"
    assert safe_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_outage_serves_misses_and_recovers_without_a_new_object(redis_server) -> None:
    cache = RedisCache(redis_server.url, retry_after_s=0.2)
    cache.put(KEY, b"before")
    assert cache.get(KEY) == b"before"
    redis_server.stop()
    try:
        started = time.monotonic()
        assert cache.get(KEY) is None
        cache.put(KEY, b"during")  # skipped, no exception
        assert cache.get_many([KEY]) == {}
        assert not cache.ping() and cache.degraded
        assert time.monotonic() - started < 3.0
        started = time.monotonic()
        assert all(cache.get(KEY) is None for _ in range(200))
        assert time.monotonic() - started < 1.0  # fails fast: no connection attempt per call while down
    finally:
        redis_server.start()  # same port; other tests keep using the session server
    assert eventually(cache.ping)
    cache.put(KEY, b"after")
    assert cache.get(KEY) == b"after" and not cache.degraded


def test_outage_detected_by_reads_recovers_by_itself(redis_server) -> None:
    cache = RedisCache(redis_server.url, retry_after_s=0.1)
    raw = redis.Redis.from_url(redis_server.url)
    redis_server.stop()
    try:
        assert cache.get(KEY) is None and cache.degraded
    finally:
        redis_server.start()
    raw.set("terradream:tile:earth:v1:3:2:1", b"back")
    assert eventually(lambda: cache.get(KEY) == b"back")  # no ping needed: reads probe again
    assert not cache.degraded


def test_rediss_tls_with_certificate_verification(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cache = RedisCache(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}", retry_after_s=0.05)
        assert eventually(cache.ping)
        cache.put(KEY, b"over tls")
        assert cache.get(KEY) == b"over tls"
        assert not RedisCache(f"redis://127.0.0.1:{port}/0").ping()  # plaintext is refused: TLS is in use
        assert not RedisCache(f"rediss://127.0.0.1:{port}/0").ping()  # unknown CA is refused: verification on
    finally:
        server.kill()
        server.wait()
