"""Bad input: schemathesis over the app's own OpenAPI schema, plus hand-written cases.

Every answer to bad input is a 4xx whose JSON `detail` says what was wrong; nothing answers 5xx.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from .conftest import Served

MAXZOOM = 4  # every valid tile is a root tile or one generated level: fuzzing never triggers deep generation
ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef"
EXAMPLES_PER_MODE = 300  # 5-15 s per mode on a busy 2-core machine


@pytest.fixture(scope="module")
def api(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module, as an operator runs it (CLI, HTTP limits), admin routes on, earth only."""
    root = tmp_path_factory.mktemp("bad-input")
    server = Served(["--model", str(tiny_model_dir), "--device", "cpu", "--cache", str(root / "cache"),
                     "--maxzoom", str(MAXZOOM), "--no-arbitrary-worlds"],  # a new planet costs ~10 s of CPU
                    {"TERRADREAM_ADMIN_TOKEN": ADMIN_TOKEN, "TERRADREAM_CLIENT_COLD_RATE_PER_S": "0"},
                    root / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(api: Served) -> schemathesis.schemas.BaseSchema:
    """The server's own OpenAPI document, loaded over HTTP."""
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


# schemathesis.pytest.from_fixture needs pytest < 9 (it sets a private node attribute), so the cases come from
# the schema's Hypothesis strategy instead: the same generator, driven by @given.
@pytest.mark.parametrize(("mode", "fixed"), [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None),
                                             (GenerationMode.POSITIVE, {"world": "earth"})],
                         ids=["positive", "negative", "positive-earth"])
def test_schemathesis_finds_no_server_error(api: Served, api_schema: schemathesis.schemas.BaseSchema,
                                            mode: GenerationMode, fixed: dict[str, str] | None) -> None:
    """Cases generated from the OpenAPI schema (valid, invalid, valid on earth so tiles are really served):
    no 5xx, every 4xx a JSON detail."""
    seen: Counter[str] = Counter()

    @given(case=api_schema.as_strategy(mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, database=None)
    def check(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if case.path.startswith("/admin") else None
        response = case.call(base_url=api.url, headers=headers, timeout=120)
        seen[f"{case.method} {case.path} {response.status_code}"] += 1
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (case.as_curl_command(), response.status_code, response.text[:200])
        if response.status_code >= 400:
            content_type = (response.headers.get("content-type") or [""])[0]
            assert content_type.startswith("application/json"), (case.as_curl_command(), response.status_code)
            assert response.json()["detail"], case.as_curl_command()

    check()
    operations = {key.rsplit(" ", 1)[0] for key in seen}
    # it reached the operations, not one: all 9 with valid data, the 4 that take input with invalid data
    assert len(operations) >= (8 if mode is GenerationMode.POSITIVE else 4), seen
    if fixed:
        assert any(k.startswith("GET /tiles/{world}/{z}") and k.endswith(" 200") for k in seen), seen
    print(f"schemathesis {schemathesis.__version__} {mode}: {sum(seen.values())} cases, {dict(seen)}")


# (path, status, a word the detail must contain)
HAND_CASES = [
    (f"/tiles/earth/{MAXZOOM + 1}/0/0.png", 404, "zoom"),
    ("/tiles/earth/3/8/0.png", 404, "outside"),
    ("/tiles/earth/3/0/8.png", 404, "outside"),
    ("/tiles/earth/3/-1/0.png", 404, "outside"),
    ("/tiles/earth/-1/0/0.png", 404, "zoom"),
    ("/tiles/earth/99999999999999999999/0/0.png", 404, "zoom"),
    ("/tiles/earth/1/99999999999999999999/0.png", 404, "outside"),
    ("/tiles/earth/1/0/-99999999999999999999@2x.png", 404, "outside"),
    ("/tiles/earth/a/0/0.png", 422, "integer"),
    ("/tiles/earth/1.5/0/0.png", 422, "integer"),
    ("/tiles/earth/1/0x1/0.png", 422, "integer"),
    ("/tiles/earth/1/0/1e3.png", 422, "integer"),
    ("/tiles/earth/1/0/%00.png", 422, "integer"),
    ("/tiles/earth/1/0/0.gif", 422, "png"),
    ("/tiles/earth/1/0/0.PNG", 422, "png"),
    ("/tiles/earth/1/0/0@3x.png", 422, "integer"),
    ("/tiles/earth/tilejson.json?tile_format=tiff", 422, "png"),
    ("/tiles/earth/tilejson.json?tile_scale=3", 422, "less than"),
    ("/tiles/Earth/1/0/0.png", 404, "world"),
    ("/tiles/" + "a" * 33 + "/1/0/0.png", 404, "world"),
    ("/tiles/a_b/1/0/0.png", 404, "world"),
    ("/tiles/a.b/1/0/0.png", 404, "world"),
    ("/tiles/abc%0A/1/0/0.png", 404, "world"),  # a trailing newline must not sneak past the name check
    ("/tiles/%3Cscript%3E/1/0/0.png", 404, "world"),
    ("/tiles/%00/1/0/0.png", 404, "world"),
    ("/tiles/%E2%82%AC/tilejson.json", 404, "world"),
    ("/nowhere", 404, "Not Found"),
    ("/static/no-such-file.js", 404, "Not Found"),
]


def raw_get(port: int, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET with the target sent verbatim (no client-side normalisation); returns status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "status", "word"), HAND_CASES)
def test_hand_cases_answer_json_4xx_saying_what_is_wrong(api: Served, path: str, status: int,
                                                          word: str | None) -> None:
    got, headers, body = raw_get(api.port, path)
    assert got == status, (path, got, body[:200])
    if word is None:
        return
    assert headers["content-type"] == "application/json"
    detail = httpx.Response(got, content=body).json()["detail"]
    assert word.lower() in str(detail).lower(), (path, detail)


@pytest.mark.parametrize("target", [
    "/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2f__init__.py", "/static/..%2F..%2Fcli.py",
    "/static/%2e%2e%2f%2e%2e%2fserver%2fsettings.py", "/static/%252e%252e/__init__.py", "/static/..%5c__init__.py",
    "/static/..\\__init__.py", "/vendor/leaflet/../../package.json", "/vendor/leaflet/%2e%2e/%2e%2e/package.json",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/%00", "/vendor/leaflet/%2e%2e%2f%2e%2e%2fREADME.md",
    "/static/.", "/static/..", "/static/", "/vendor/leaflet/",
])
def test_static_paths_never_leave_the_frontend(api: Served, target: str) -> None:
    status, headers, body = raw_get(api.port, target)
    assert status in (400, 404), (target, status)
    assert headers["content-type"] == "application/json" and b"detail" in body
    assert b"__version__" not in body and b"root:" not in body and b'"dependencies"' not in body


def test_long_url_is_a_json_414(api: Served) -> None:
    status, headers, body = raw_get(api.port, "/tiles/earth/1/0/0.png?v=" + "x" * 9000)
    assert status == 414 and headers["content-type"] == "application/json"
    assert "8192" in httpx.Response(status, content=body).json()["detail"]


def test_large_headers_are_a_json_431(api: Served) -> None:
    status, headers, body = raw_get(api.port, "/healthz", {"X-Filler": "y" * 20_000})
    assert status == 431 and headers["content-type"] == "application/json"
    assert "16384" in httpx.Response(status, content=body).json()["detail"]
    many = {f"X-H{i}": "v" * 100 for i in range(200)}
    status, _, _ = raw_get(api.port, "/healthz", many)
    assert status == 431


def send_raw(port: int, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data


@pytest.mark.parametrize("size_bytes", [200_000, 5_000_000])
def test_far_oversized_requests_are_refused_by_the_parser_without_buffering(api: Served, size_bytes: int) -> None:
    """Beyond the parser's bound (url + header limits + 4 KiB) the HTTP server answers a bodiless 431 and hangs up;
    the server's memory does not grow with the request (documented in docs/operations.md)."""
    import psutil

    def rss_bytes() -> int:
        """The server's processes together (granian's main process and its worker)."""
        main = psutil.Process(api.proc.pid)
        return sum(p.memory_info().rss for p in (main, *main.children(recursive=True)))

    before = rss_bytes()
    for request in (b"GET /healthz?a=" + b"x" * size_bytes + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * size_bytes + b"\r\n\r\n"):
        answer = send_raw(api.port, request)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert rss_bytes() - before < 64 * 2**20
    assert httpx.get(f"{api.url}/healthz").status_code == 200  # and it still serves


def test_a_client_that_stalls_in_its_headers_is_hung_up_on(api: Served) -> None:
    """A request head must arrive within the server's header timeout (slow-header clients cannot hold connections)."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 20.0  # closed by the server, not by this socket's 30 s timeout


def test_proxy_headers_from_loopback_set_the_scheme(api: Served) -> None:
    """X-Forwarded-Proto from 127.0.0.1 (FORWARDED_ALLOW_IPS' default) sets the scheme of handed-out URLs."""
    forwarded = httpx.get(f"{api.url}/tiles/earth/tilejson.json", headers={"X-Forwarded-Proto": "https"}).json()
    plain = httpx.get(f"{api.url}/tiles/earth/tilejson.json").json()
    assert forwarded["tiles"][0].startswith("https://") and plain["tiles"][0].startswith("http://")


def test_wrong_methods_and_bodies(api: Served) -> None:
    response = httpx.post(f"{api.url}/tiles/earth/1/0/0.png")
    assert response.status_code == 405 and response.json()["detail"]
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for body in (b"not json", b"{}", b'{"world": "earth", "zooms": [99]}', b'{"world": "earth", "bbox": [1, 2]}',
                 b'{"world": "earth", "bbox": [0, 80, 10, 89]}', b'{"world": "Earth"}', b'{"world": "earth", "x": 1}'):
        headers = {**auth, "Content-Type": "application/json"}
        response = httpx.post(f"{api.url}/admin/purge", content=body, headers=headers)
        assert response.status_code == 422, (body, response.status_code, response.text)
        assert response.json()["detail"]
