"""`terradream serve`: the tile server over HTTP (uvicorn, one worker process per core), local or cluster generation.

The server stack (uvicorn, the API, the model, Dask) is imported when the command runs, not when `--help` is shown.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click

from terradream import __version__
from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options, legacy_world_option, missing_extra

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    from terradream.api.app import create_app
    from terradream.engine.settings import Settings

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_level)
    cluster = None
    if settings.scheduler:
        from terradream.cluster.client import cluster_service

        cluster = cluster_service
    return create_app(settings, cluster=cluster)


@click.command("serve")
@engine_options("host", "port", "workers", "cache", "cache_max_bytes", "redis", "scheduler", "worlds",
                "allow_arbitrary_worlds", "device", "model", "maxzoom", "queue_max", "cold_deadline_s", "batch_size",
                "root_path", "public_url", "log_level")
@legacy_world_option
def serve_command(**options: Any) -> None:
    """Serve tiles over HTTP (viewer at /, API docs at /docs)."""
    settings = build_settings(**options)
    if settings.workers is None:
        settings = settings.model_copy(update={"workers": cpu_cores()})
    configure_logging(settings.log_level)
    # Heavy imports here, so other commands and --help start at once (the CLI is the top layer: no cycle hides).
    import uvicorn

    from terradream.api.limits import uvicorn_limits

    if settings.scheduler:
        try:
            import terradream.cluster.client  # noqa: F401 (fail here, in the parent, when the extra is missing)
        except ModuleNotFoundError as exc:
            raise missing_extra(exc, "--scheduler") or exc from exc
    click.echo(f"terradream {__version__} serving on http://{settings.host}:{settings.port} "
               f"(cache: {settings.redis and 'redis' or settings.cache}, {settings.workers} workers)", err=True)
    os.environ[SETTINGS_ENV] = settings_json(settings)
    uvicorn.run("terradream.cli.serve:worker_app", factory=True, workers=settings.workers, host=settings.host,
                port=settings.port, log_config=None, log_level=settings.log_level,
                access_log=settings.log_level in ("debug", "info"),
                **uvicorn_limits(settings.max_url_bytes, settings.max_header_bytes))
