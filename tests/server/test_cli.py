"""The `terradream` command line: options, TERRADREAM_* environment variables, errors."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import CliRunner

from terradream.cli.main import main
from terradream.cli.options import build_settings

from .conftest import ProcessServer, free_port


def test_help_lists_serve_and_its_options() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--cache", "--redis", "--world", "--device", "--model", "--maxzoom"):
        assert option in result.output
    assert "serve" in CliRunner().invoke(main, ["--help"]).output


def test_options_override_environment(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TERRADREAM_MAXZOOM", "9")
    (tmp_path / "moon.png").write_bytes(b"")
    (tmp_path / "mars.png").write_bytes(b"")
    monkeypatch.setenv("TERRADREAM_WORLDS", f"moon={tmp_path / 'moon.png'}")
    monkeypatch.setenv("TERRADREAM_CORS_ORIGINS", "https://a.example,https://b.example")
    from_env = build_settings()
    assert from_env.maxzoom == 9 and from_env.worlds == {"moon": tmp_path / "moon.png"}
    assert from_env.cors_origins == ["https://a.example", "https://b.example"]
    mars = f"mars={tmp_path / 'mars.png'}"
    assert build_settings(maxzoom=5, worlds=(mars,)).maxzoom == 5
    assert build_settings(worlds=(mars,)).worlds == {"mars": tmp_path / "mars.png"}


def test_bad_options_exit_with_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing_model = runner.invoke(main, ["serve", "--model", str(tmp_path / "nope")])
    assert missing_model.exit_code == 2 and "does not exist" in missing_model.output
    bad_world = runner.invoke(main, ["serve", "--world", "no-image-given"])
    assert bad_world.exit_code == 2 and "NAME=IMAGE" in bad_world.output
    missing_image = runner.invoke(main, ["serve", "--world", f"moon={tmp_path / 'moon.png'}"])
    assert missing_image.exit_code == 2 and "does not exist" in missing_image.output
    bad_zoom = runner.invoke(main, ["serve", "--maxzoom", "99"])
    assert bad_zoom.exit_code == 2


def test_serve_reads_the_environment(tiny_model: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {"TERRADREAM_PORT": str(port), "TERRADREAM_MODEL": str(tiny_model), "TERRADREAM_DEVICE": "cpu",
           "TERRADREAM_CACHE": str(tmp_path / "cache"), "TERRADREAM_MAXZOOM": "9"}
    server = ProcessServer(["--host", "127.0.0.1", "--log-level", "info"], env=env, log_path=tmp_path / "server.log")
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{server.url}/tiles/earth/tilejson.json").json()["maxzoom"] == 9
        tile = httpx.get(f"{server.url}/tiles/earth/2/0/1.png", timeout=120.0)
        assert tile.status_code == 200
        assert list((tmp_path / "cache").glob("earth-*.mbtiles"))
    finally:
        server.stop()
    assert server.proc.returncode in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    log = (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
    assert "level=info logger=terradream.server msg=ready version=" in log  # logfmt lines

