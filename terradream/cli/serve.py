"""`terradream serve`: the tile server over HTTP (uvicorn), local generation or a Dask cluster's.

The server stack (uvicorn, the API, the model, Dask) is imported when the command runs, not when `--help` is shown.
"""

from __future__ import annotations

from typing import Any

import click

from terradream import __version__
from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options, legacy_world_option, missing_extra


@click.command("serve")
@engine_options("host", "port", "cache", "cache_max_bytes", "redis", "scheduler", "worlds", "allow_arbitrary_worlds",
                "device", "model", "maxzoom", "queue_max", "cold_deadline_s", "batch_size", "root_path", "public_url",
                "log_level")
@legacy_world_option
def serve_command(**options: Any) -> None:
    """Serve tiles over HTTP (viewer at /, API docs at /docs)."""
    settings = build_settings(**options)
    configure_logging(settings.log_level)
    # Heavy imports here, so other commands and --help start at once (the CLI is the top layer: no cycle hides).
    import uvicorn

    from terradream.api.app import create_app
    from terradream.api.limits import uvicorn_limits

    cluster = None
    if settings.scheduler:
        try:
            from terradream.cluster.client import cluster_service
        except ModuleNotFoundError as exc:
            raise missing_extra(exc, "--scheduler") or exc from exc
        cluster = cluster_service
    click.echo(f"terradream {__version__} serving on http://{settings.host}:{settings.port} "
               f"(cache: {settings.redis and 'redis' or settings.cache})", err=True)
    uvicorn.run(create_app(settings, cluster=cluster), host=settings.host, port=settings.port,
                log_config=None, log_level=settings.log_level, access_log=settings.log_level in ("debug", "info"),
                **uvicorn_limits(settings.max_url_bytes, settings.max_header_bytes))
