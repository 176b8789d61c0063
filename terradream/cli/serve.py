"""`terradream serve`: the tile server over HTTP (granian, one worker process per core), local or cluster generation.

granian (HTTP in Rust, an asyncio loop per worker) answers cached tiles about twice as fast as uvicorn on the same
app (docs/benchmarks.md); its HTTP/1 buffer is bounded a little above the app's URL and header limits, and proxy
headers are trusted from FORWARDED_ALLOW_IPS only. The server stack (granian, the API, the model, Dask) is imported
when the command runs, not when `--help` is shown.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, cast

import click

from terradream import __version__
from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options, legacy_world_option, missing_extra

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from terradream.engine.settings import Settings

SETTINGS_ENV = "TERRADREAM_SERVE_SETTINGS_JSON"  # the parent's resolved settings, handed to each worker process
SERVER_PID_ENV = "TERRADREAM_SERVE_PID"  # the main process, whose death ends every worker
FORWARDED_ALLOW_IPS_DEFAULT = "127.0.0.1,::1"  # proxies whose X-Forwarded-For/-Proto are trusted (env overrides)
HEADER_READ_TIMEOUT_MS = 10_000  # a client must send its request line and headers within this (slow-header clients)


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


def exit_with_server() -> None:
    """Have the kernel kill this worker when the server's main process dies, even by SIGKILL: its workers would
    otherwise live on as orphans holding the port and the model's memory (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux") or SERVER_PID_ENV not in os.environ:
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != int(os.environ[SERVER_PID_ENV]):  # it died before the line above
        os.kill(os.getpid(), signal.SIGKILL)


def worker_app() -> ASGIApp:
    """The app of one worker process (the server's factory), built from the settings the parent put in the
    environment, behind X-Forwarded-For/-Proto handling for the proxies in FORWARDED_ALLOW_IPS."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from terradream.api.app import create_app
    from terradream.engine.settings import Settings

    exit_with_server()
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_level)
    cluster = None
    if settings.scheduler:
        from terradream.cluster.client import cluster_service

        cluster = cluster_service
    app = create_app(settings, cluster=cluster)
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", FORWARDED_ALLOW_IPS_DEFAULT)
    return cast("ASGIApp", ProxyHeadersMiddleware(app, trusted_hosts=trusted))  # type: ignore[arg-type]


def run_http_server(settings: Settings) -> None:
    """granian serving worker_app in settings.workers processes, its HTTP/1 buffer bounded (parser_limit_bytes),
    until SIGINT or SIGTERM (then gracefully: lifespan shutdown closes each engine)."""
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    from terradream.api.limits import parser_limit_bytes

    http1 = HTTP1Settings(max_buffer_size=parser_limit_bytes(settings.max_url_bytes, settings.max_header_bytes),
                          header_read_timeout=HEADER_READ_TIMEOUT_MS)
    Server("terradream.cli.serve:worker_app", address=settings.host, port=settings.port,
           interface=Interfaces.ASGI, workers=settings.workers or 1, factory=True, websockets=False,
           http1_settings=http1, log_level=settings.log_level,  # type: ignore[arg-type]
           log_access=settings.log_level in ("debug", "info")).serve()


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
    if settings.scheduler:
        try:
            import terradream.cluster.client  # noqa: F401 (fail here, in the parent, when the extra is missing)
        except ModuleNotFoundError as exc:
            raise missing_extra(exc, "--scheduler") or exc from exc
    click.echo(f"terradream {__version__} serving on http://{settings.host}:{settings.port} "
               f"(cache: {settings.redis and 'redis' or settings.cache}, {settings.workers} workers)", err=True)
    os.environ[SETTINGS_ENV] = settings_json(settings)
    os.environ[SERVER_PID_ENV] = str(os.getpid())
    run_http_server(settings)
