"""`terradream serve`: the tile server over HTTP (uvicorn, one worker process per core), local or cluster generation."""

from __future__ import annotations

import json
import os
from typing import Any

import click
import uvicorn
from fastapi import FastAPI

from terradream import __version__
from terradream.api.app import create_app
from terradream.api.limits import uvicorn_limits
from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options
from terradream.cluster.client import cluster_service
from terradream.engine.settings import Settings

SETTINGS_ENV = "TERRADREAM_SERVE_SETTINGS_JSON"  # the parent's resolved settings, handed to each worker process


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def settings_json(settings: Settings) -> str:
    """Settings as JSON a worker process rebuilds them from, secrets included (it runs as the same user)."""
    data = settings.model_dump(mode="json")
    if settings.admin_token is not None:
        data["admin_token"] = settings.admin_token.get_secret_value()
    return json.dumps(data)


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory), built from the settings the parent put in the environment."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_level)
    return create_app(settings, cluster=cluster_service)


@click.command("serve")
@click.option("--host", help="Interface to listen on [env TERRADREAM_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="TCP port [env TERRADREAM_PORT; default 8000].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Server processes sharing the cache, each loading the model [env TERRADREAM_WORKERS; "
                   "default: one per core].")
@engine_options("cache", "redis")
@click.option("--scheduler", metavar="tcp://HOST:8786",
              help="Dask scheduler whose workers make cold tiles; needs --redis [env TERRADREAM_SCHEDULER].")
@engine_options("worlds", "allow_arbitrary_worlds", "device", "model")
@click.option("--maxzoom", type=int, help="Deepest zoom served [env TERRADREAM_MAXZOOM; default 22].")
@click.option("--queue-max", type=int, help="Cold tiles that may wait before 503 [env TERRADREAM_QUEUE_MAX].")
@engine_options("batch_size", "log_level")
def serve_command(**options: Any) -> None:
    """Serve tiles over HTTP (viewer at /, API docs at /docs)."""
    settings = build_settings(**options)
    if settings.workers is None:
        settings = settings.model_copy(update={"workers": cpu_cores()})
    configure_logging(settings.log_level)
    click.echo(f"terradream {__version__} serving on http://{settings.host}:{settings.port} "
               f"(cache: {settings.redis and 'redis' or settings.cache}, {settings.workers} workers)", err=True)
    os.environ[SETTINGS_ENV] = settings_json(settings)
    uvicorn.run("terradream.cli.serve:worker_app", factory=True, workers=settings.workers, host=settings.host,
                port=settings.port, log_config=None, log_level=settings.log_level,
                access_log=settings.log_level in ("debug", "info"),
                **uvicorn_limits(settings.max_url_bytes, settings.max_header_bytes))
