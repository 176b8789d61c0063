"""Security: admin purge behind a bearer token, arbitrary worlds switchable, escaping, no file
outside terradream/frontend, Redis with a password and TLS through `terradream serve`, secrets never logged,
and a bounded number of procedural worlds in memory.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from PIL import Image
from server.conftest import free_port
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

import terradream.frontend
from terradream.api.app import create_app
from terradream.api.frontend import FrontendFactory
from terradream.api.routes import admin
from terradream.engine.settings import Settings
from terradream.model import worlds as worlds_module

from .conftest import Served, TLSRedis, decode_tile, mbtiles_rows, readyz

TOKEN = "s3cret-admin-token-AbCdEf0123456789"
EVIL_IMAGE = '<script>alert(1)<script>&"x.png'  # a file name cannot hold "/"


def purge(server: Served, body: dict[str, object], token: str | None = TOKEN,
          scheme: str = "Bearer") -> httpx.Response:
    """POST /admin/purge with a token (or none)."""
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return httpx.post(f"{server.url}/admin/purge", json=body, headers=headers, timeout=60)


def test_admin_routes_do_not_exist_without_a_token(serve: Callable[..., Served]) -> None:
    server = serve()
    response = purge(server, {"world": "earth"})
    assert response.status_code == 404 and response.json()["detail"]
    assert "/admin/purge" not in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    with pytest.raises(ValueError, match="16 characters"):
        Settings(admin_token="short")


def test_admin_purge_needs_the_token_and_purges(serve: Callable[..., Served], tmp_path: Path) -> None:
    cache = tmp_path / "purge-cache"
    server = serve(cache=cache, env={"TERRADREAM_ADMIN_TOKEN": TOKEN, "TERRADREAM_LOG_LEVEL": "debug"})
    inside, outside = "/tiles/earth/3/4/2.png", "/tiles/earth/3/0/0.png"  # 4/2 covers lon 0..45, lat 41..66
    before = {p: httpx.get(server.url + p, timeout=120).content for p in (inside, outside)}
    for token, scheme in ((None, "Bearer"), ("wrong-" + TOKEN, "Bearer"), (TOKEN[:-1], "Bearer"), (TOKEN, "Basic")):
        refused = purge(server, {"world": "earth"}, token, scheme)
        assert refused.status_code == 401, (token, scheme)
        assert refused.headers["www-authenticate"].startswith("Bearer") and refused.json()["detail"]
    assert len(mbtiles_rows(next(cache.glob("earth-*.mbtiles")))) == 2  # nothing purged by refused requests
    done = purge(server, {"world": "earth", "bbox": [10, 45, 20, 55], "zooms": [3]})
    assert done.status_code == 200, done.text
    assert done.json()["tiles_removed"] == 1 and done.json()["responses_dropped"] >= 2
    rows = mbtiles_rows(next(cache.glob("earth-*.mbtiles")))
    assert [(z, x, (1 << z) - 1 - y) for z, x, y, _ in rows] == [(3, 0, 0)]
    again = httpx.get(server.url + inside, timeout=120)
    assert again.headers["x-cache"] == "miss" and again.content == before[inside]  # regenerated, same tile
    assert httpx.get(server.url + outside, timeout=60).headers["x-cache"] == "hit"
    everything = purge(server, {"world": "earth"})
    assert everything.status_code == 200 and everything.json()["tiles_removed"] == 2
    assert TOKEN not in server.log_text()  # debug logging, refused and accepted tokens alike


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = admin.secrets.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(admin.secrets, "compare_digest", spy)
    assert admin.token_matches(TOKEN, TOKEN) and not admin.token_matches("x" + TOKEN, TOKEN)
    assert not admin.token_matches("é", TOKEN)  # non-ASCII input is compared too, not an error
    assert len(calls) == 3


def test_arbitrary_worlds_disabled_end_to_end(serve: Callable[..., Served], tmp_path: Path) -> None:
    image = tmp_path / "moon.png"
    Image.fromarray(np.full((256, 512, 3), 90, dtype=np.uint8)).save(image)
    server = serve("--image-world", f"moon={image}", env={"TERRADREAM_ALLOW_ARBITRARY_WORLDS": "false"})
    for path in ("/tiles/venus/1/0/0.png", "/tiles/venus/1/0/0@2x.webp", "/tiles/venus/tilejson.json"):
        response = httpx.get(server.url + path, timeout=60)
        assert response.status_code == 404 and "disabled" in response.json()["detail"], path
    assert httpx.get(f"{server.url}/tiles/moon/1/0/0.png", timeout=120).status_code == 200
    assert httpx.get(f"{server.url}/tiles/earth/1/0/0.png", timeout=120).status_code == 200
    listing = httpx.get(f"{server.url}/worlds").json()
    assert listing["allow_arbitrary"] is False and [w["name"] for w in listing["worlds"]] == ["earth", "moon"]
    wmts = ET.fromstring(httpx.get(f"{server.url}/wmts/WMTSCapabilities.xml").content)
    layers = [e.text for e in wmts.iter("{http://www.opengis.net/ows/1.1}Identifier")]
    assert "venus" not in layers and "moon" in layers
    assert not list((tmp_path / "cache").glob("venus-*"))  # no cache key space for it either


def test_attribution_and_names_are_escaped_wherever_rendered(serve: Callable[..., Served], tmp_path: Path) -> None:
    image = tmp_path / EVIL_IMAGE
    Image.fromarray(np.full((256, 512, 3), 30, dtype=np.uint8)).save(image, format="PNG")
    server = serve("--image-world", f"evil={image}")
    tilejson = httpx.get(f"{server.url}/tiles/evil/tilejson.json").json()
    assert "<script>" not in tilejson["attribution"] and "&lt;script&gt;" in tilejson["attribution"]
    xml = httpx.get(f"{server.url}/wmts/WMTSCapabilities.xml").content
    assert b"<script>" not in xml and b"&lt;script&gt;" in xml
    parsed = ET.fromstring(xml)  # well-formed, and the text survives intact for XML clients
    assert not list(parsed.iter("script"))
    assert any(EVIL_IMAGE in (e.text or "") for e in parsed.iter("{http://www.opengis.net/ows/1.1}Abstract"))
    for path in ("/tiles/%3Cscript%3E/1/0/0.png", "/tiles/%3Cscript%3E/tilejson.json"):
        response = httpx.get(server.url + path)
        assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    viewer = (Path(terradream.frontend.__file__).parent / "static" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):  # server text is never HTML
        assert sink not in viewer, sink


def test_only_frontend_files_can_be_served(tiny_model_dir: Path, tmp_path: Path) -> None:
    frontend_dir = Path(terradream.frontend.__file__).resolve().parent
    app = create_app(Settings(model=tiny_model_dir, device="cpu", cache=tmp_path / "c"))
    mounts = [r for r in app.routes if isinstance(r, Mount)]
    assert mounts
    for mount in mounts:
        assert isinstance(mount.app, StaticFiles) and not mount.app.follow_symlink
        assert Path(str(mount.app.directory)).resolve().is_relative_to(frontend_dir), mount.path


@pytest.fixture
def symlinked_static(tmp_path: Path) -> Iterator[str]:
    """A viewer whose static folder holds a symlink to a file outside it, served over real HTTP."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>ok</title>")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    (static / "link.txt").symlink_to(secret)
    (static / "dir-link").symlink_to(tmp_path)
    app = FastAPI()
    FrontendFactory(static_dir=static, leaflet_dir=tmp_path / "missing").register(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_symlinks_out_of_the_frontend_are_not_followed(symlinked_static: str) -> None:
    assert httpx.get(f"{symlinked_static}/static/index.html").status_code == 200
    for path in ("/static/link.txt", "/static/dir-link/secret.txt", "/vendor/leaflet/leaflet.js"):
        response = httpx.get(symlinked_static + path)
        assert response.status_code == 404 and "TOP-SECRET" not in response.text, path


def test_rediss_with_password_end_to_end_and_no_secret_in_logs(serve: Callable[..., Served],
                                                                tls_redis: TLSRedis) -> None:
    server = serve("--redis", tls_redis.url, "--log-level", "debug", env={"TERRADREAM_ADMIN_TOKEN": TOKEN})
    report = readyz(server).json()
    assert report["cache"] == "ok" and report["generation_lock"] == "ok"
    assert "rediss://" in report["cache_backend"] and tls_redis.password not in report["cache_backend"]
    tile = httpx.get(f"{server.url}/tiles/earth/3/3/3.png", timeout=120)
    assert tile.status_code == 200
    client = redis.Redis.from_url(tls_redis.url)
    try:
        stored = [client.get(k) for k in client.scan_iter("terradream:tile:earth:*:3:3:3")]
        assert stored == [tile.content]  # went through TLS, with the password
    finally:
        client.close()
    assert purge(server, {"world": "earth"}).json()["tiles_removed"] >= 1
    assert purge(server, {"world": "earth"}, "wrong-token-0123456789").status_code == 401
    tls_redis.stop()  # outage: errors get logged (at debug, everything is)
    assert readyz(server).status_code == 503
    assert decode_tile(httpx.get(f"{server.url}/tiles/earth/3/2/3.png", timeout=120).content).shape == (256, 256, 3)
    time.sleep(0.5)
    log = server.log_text()
    assert "unreachable" in log and "GET /tiles/earth/3/3/3.png" in log  # debug logging really was on
    assert tls_redis.password not in log and TOKEN not in log


def test_wrong_redis_password_degrades_without_leaking_it(serve: Callable[..., Served], tls_redis: TLSRedis) -> None:
    wrong = tls_redis.url.replace(tls_redis.password, "not-the-" + tls_redis.password)
    server = serve("--redis", wrong, "--log-level", "debug", degraded_ok=True)
    assert readyz(server).json()["cache"] == "unreachable"
    assert httpx.get(f"{server.url}/tiles/earth/2/1/1.png", timeout=120).status_code == 200
    assert tls_redis.password not in server.log_text()


def fake_planet(seed: int) -> np.ndarray:
    """A cheap stand-in for the ~10 s procedural root image (same shape, depends on the seed)."""
    return np.full((1024, 2048, 3), seed % 251, dtype=np.uint8)


def test_procedural_worlds_in_memory_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worlds_module, "planet_equirect", fake_planet)
    registry = worlds_module.WorldRegistry(max_procedural=3)
    first = registry.get("p0").root_tile(0, 0, 0)
    for i in range(1, 6):
        registry.get(f"p{i}").root_tile(0, 0, 0)
    assert registry.loaded_procedural() == ["p3", "p4", "p5"]
    for i in range(1000):  # names that are only validated (refused requests) hold nothing and evict nothing
        registry.get(f"junk-{i}")
    assert registry.loaded_procedural() == ["p3", "p4", "p5"]
    assert np.array_equal(registry.get("p0").root_tile(0, 0, 0), first)  # rebuilt the same after eviction
    assert registry.loaded_procedural() == ["p4", "p5", "p0"]
    assert registry.get("earth") is registry.get("earth")  # configured worlds are never evicted
    with pytest.raises(Exception, match="must match"):
        registry.get("p0\n")
