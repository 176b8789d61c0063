"""The `terradream` command line: options, TERRADREAM_* environment variables, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import httpx
import pytest
from click.testing import CliRunner

from terradream.cache.codec import TileFormat
from terradream.cli import data as data_cli
from terradream.cli.main import COMMANDS, main
from terradream.cli.options import DEVICES, LOG_LEVELS, build_settings
from terradream.data.rasters import COMPRESSIONS
from terradream.engine.settings import Settings

from .conftest import ProcessServer, free_port


def test_help_lists_serve_and_its_options() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--cache", "--redis", "--image-world", "--device", "--model", "--maxzoom"):
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
    bad_world = runner.invoke(main, ["serve", "--image-world", "no-image-given"])
    assert bad_world.exit_code == 2 and "NAME=IMAGE" in bad_world.output
    missing_image = runner.invoke(main, ["serve", "--image-world", f"moon={tmp_path / 'moon.png'}"])
    assert missing_image.exit_code == 2 and "does not exist" in missing_image.output
    # the old spelling of serve and worker still reaches the same check, with a deprecation notice
    legacy = runner.invoke(main, ["serve", "--world", f"moon={tmp_path / 'moon.png'}"])
    assert legacy.exit_code == 2 and "does not exist" in legacy.output and "--image-world" in legacy.output
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
    assert server.proc.returncode == 0  # a graceful shutdown on SIGTERM
    log = (tmp_path / "server.log").read_text()
    assert "level=info logger=terradream.server msg=closed version=" in log and "Traceback" not in log
    assert "level=info logger=terradream.server msg=ready version=" in log  # logfmt lines



# What the model, the server stack, the cluster and the exporters bring in: none of it may load for help or a dry run.
HEAVY = {"torch", "diffusers", "dask", "distributed", "bokeh", "uvicorn", "fastapi", "rasterio", "tqdm"}


def imported_packages(*args: str) -> set[str]:
    """The top-level packages `python -m terradream.cli ARGS` imports, from Python's own -X importtime trace."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "terradream.cli", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in run.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert {"click", "terradream"} <= names  # the trace was read
    return names


@pytest.mark.parametrize("args", [("--help",), ("serve", "--help"), ("worker", "--help"), ("seed", "--help"),
                                  ("export", "--help"), ("train", "--help"),
                                  ("seed", "--world", "earth", "--bbox", "5,44,11,48", "--zoom", "0-12", "--dry-run")])
def test_help_and_dry_run_import_no_model_or_server(args: tuple[str, ...]) -> None:
    assert imported_packages(*args) & HEAVY == set()


def test_group_help_and_dry_run_skip_pydantic() -> None:
    assert "pydantic" not in imported_packages("--help")
    assert "pydantic" not in imported_packages("seed", "--world", "earth", "--bbox", "5,44,11,48", "--zoom", "0-12",
                                               "--dry-run")


def test_command_list_shows_whole_lines_of_loadable_commands() -> None:
    listing = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    commands = listing.split("Commands:")[1]
    assert "..." not in commands
    for name, (_, short_help) in COMMANDS.items():
        assert f"{name}  " in commands and short_help in commands
        command = main.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name


def test_option_help_reads_defaults_and_choices_from_settings() -> None:
    fields = Settings.model_fields
    assert DEVICES == get_args(fields["device"].annotation) and LOG_LEVELS == get_args(fields["log_level"].annotation)
    serve_help = " ".join(CliRunner().invoke(main, ["serve", "--help"], terminal_width=400).output.split())
    for name in ("port", "maxzoom", "queue_max", "batch_size", "device", "log_level", "host"):
        assert f"[env TERRADREAM_{name.upper()}; default: {fields[name].default}]" in serve_help, name
    assert f"{fields['queue_max'].description} [env" in serve_help
    assert "[env TERRADREAM_ALLOW_ARBITRARY_WORLDS; default: on]" in serve_help


def test_export_choices_are_the_writers_own() -> None:
    """The choice lists written out for fast help name exactly the tile formats and COG compressions there are."""
    assert data_cli.TILE_FORMATS == tuple(f.value for f in TileFormat)
    assert data_cli.COMPRESSIONS == COMPRESSIONS


def test_world_flags_mean_one_thing_in_every_command() -> None:
    runner = CliRunner()
    for name in ("serve", "worker", "seed", "export"):
        text = runner.invoke(main, [name, "--help"], terminal_width=400).output
        assert "--image-world NAME=IMAGE" in text, name
        world_lines = [line for line in text.splitlines() if line.strip().startswith("--world ")]
        assert all("NAME=IMAGE" not in line and "World name" in line for line in world_lines), name
        assert bool(world_lines) == (name in ("seed", "export")), name
    train_help = runner.invoke(main, ["train", "--help"]).output
    assert "shared" not in train_help and "/work" not in train_help and "[default: 20000]" in train_help


BLOCK_CLUSTER = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from terradream.cli.main import main
main(["worker", "--scheduler", "tcp://127.0.0.1:9", "--redis", "redis://127.0.0.1:9/0"])
"""


def test_cluster_commands_without_the_extra_say_how_to_install_it() -> None:
    run = subprocess.run([sys.executable, "-c", BLOCK_CLUSTER], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "pip install 'terradream[cluster]'" in run.stderr and "Traceback" not in run.stderr
