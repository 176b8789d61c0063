"""`terradream serve`: the tile server over HTTP (uvicorn), local generation or a Dask cluster's."""

from __future__ import annotations

from typing import Any

import click
import uvicorn

from terradream import __version__
from terradream.api.app import create_app
from terradream.api.limits import uvicorn_limits
from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options
from terradream.cluster.client import cluster_service


@click.command("serve")
@click.option("--host", help="Interface to listen on [env TERRADREAM_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="TCP port [env TERRADREAM_PORT; default 8000].")
@engine_options("cache", "redis")
@click.option("--cache-max-bytes", metavar="SIZE",
              help="Disk budget of the embedded cache, e.g. 20G; least recently used tiles are evicted beyond it "
                   "[env TERRADREAM_CACHE_MAX_BYTES; default half the free disk; 0: none].")
@click.option("--scheduler", metavar="tcp://HOST:8786",
              help="Dask scheduler whose workers make cold tiles; needs --redis [env TERRADREAM_SCHEDULER].")
@engine_options("worlds", "allow_arbitrary_worlds", "device", "model")
@click.option("--maxzoom", type=int, help="Deepest zoom served [env TERRADREAM_MAXZOOM; default 22].")
@click.option("--queue-max", type=int, help="Cold tiles that may wait before 503 [env TERRADREAM_QUEUE_MAX].")
@click.option("--cold-deadline", "cold_deadline_s", type=float,
              help="Seconds a client may wait for a new tile before 503 [env TERRADREAM_COLD_DEADLINE_S; default 30].")
@engine_options("batch_size", "log_level")
def serve_command(**options: Any) -> None:
    """Serve tiles over HTTP (viewer at /, API docs at /docs)."""
    settings = build_settings(**options)
    configure_logging(settings.log_level)
    click.echo(f"terradream {__version__} serving on http://{settings.host}:{settings.port} "
               f"(cache: {settings.redis and 'redis' or settings.cache})", err=True)
    uvicorn.run(create_app(settings, cluster=cluster_service), host=settings.host, port=settings.port,
                log_config=None, log_level=settings.log_level, access_log=settings.log_level in ("debug", "info"),
                **uvicorn_limits(settings.max_url_bytes, settings.max_header_bytes))
