"""The `terradream` command: a click group whose `serve` runs the tile server (more subcommands plug in later)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from terradream import __version__
from terradream.api.app import create_app
from terradream.api.limits import uvicorn_limits
from terradream.cli.logs import configure_logging
from terradream.engine.settings import Settings
from terradream.cli.train import train_command
from terradream.cli.worker import worker_command


def build_settings(**options: Any) -> Settings:
    """Settings from explicit CLI options (None = not given) over TERRADREAM_* variables over defaults."""
    given = {k: v for k, v in options.items() if v is not None and v != ()}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    for name, image in settings.worlds.items():
        if not image.is_file():
            raise click.UsageError(f"world {name!r}: image {image} does not exist")
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="terradream")
def main() -> None:
    """terradream: satellite-like imagery generated on demand, served as XYZ tiles, TileJSON and WMTS."""


@main.command()
@click.option("--host", help="Interface to listen on [env TERRADREAM_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="TCP port [env TERRADREAM_PORT; default 8000].")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Embedded cache directory (MBTiles files) [env TERRADREAM_CACHE; default ~/.cache/terradream].")
@click.option("--redis", help="Redis URL shared by several servers, replaces the embedded cache [env TERRADREAM_REDIS].")
@click.option("--scheduler", metavar="tcp://HOST:8786",
              help="Dask scheduler whose workers make cold tiles; needs --redis [env TERRADREAM_SCHEDULER].")
@click.option("--world", "worlds", multiple=True, metavar="NAME=IMAGE",
              help="Add a world rooted in an equirectangular image (repeatable) [env TERRADREAM_WORLDS, comma-separated].")
@click.option("--allow-arbitrary-worlds/--no-arbitrary-worlds", default=None,
              help="Serve any name as a procedural planet [env TERRADREAM_ALLOW_ARBITRARY_WORLDS; default on].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the model runs [env TERRADREAM_DEVICE].")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model directory (save_pretrained layout) [env TERRADREAM_MODEL; default: shipped weights].")
@click.option("--maxzoom", type=int, help="Deepest zoom served [env TERRADREAM_MAXZOOM; default 22].")
@click.option("--queue-max", type=int, help="Cold tiles that may wait before 503 [env TERRADREAM_QUEUE_MAX].")
@click.option("--batch-size", type=int, help="Tiles per generation batch [env TERRADREAM_BATCH_SIZE].")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log verbosity [env TERRADREAM_LOG_LEVEL; default warning].")
def serve(**options: Any) -> None:
    """Serve tiles over HTTP (viewer at /, API docs at /docs)."""
    settings = build_settings(**options)
    configure_logging(settings.log_level)
    click.echo(f"terradream {__version__} serving on http://{settings.host}:{settings.port} "
               f"(cache: {settings.redis and 'redis' or settings.cache})", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                log_level=settings.log_level, access_log=settings.log_level in ("debug", "info"),
                **uvicorn_limits(settings.max_url_bytes, settings.max_header_bytes))


main.add_command(train_command)

from terradream.cli.data import export_command, seed_command  # noqa: E402  (registers seed and export)

main.add_command(seed_command)
main.add_command(export_command)

main.add_command(worker_command)

if __name__ == "__main__":
    main()
