"""`terradream worker`: a Dask worker that makes tiles for `terradream serve --scheduler` API servers.

Dask and the model are imported when the command runs; without the cluster extra it says how to install it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from terradream import __version__
from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options, legacy_world_option, missing_extra

ENGINE_OPTIONS = ("redis", "device", "model", "worlds", "allow_arbitrary_worlds", "batch_size", "log_level")


@click.command("worker")
@click.option("--scheduler", required=True, envvar="TERRADREAM_SCHEDULER", metavar="tcp://HOST:8786",
              help="Dask scheduler address [env TERRADREAM_SCHEDULER].")
@engine_options(*ENGINE_OPTIONS)
@legacy_world_option
@click.option("--slots", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Tile tasks this worker runs at once (Dask threads and GPU resource units): they meet in one "
                   "batcher, so keep it well above --batch-size.")
@click.option("--memory-limit", default="auto", show_default=True,
              help="Host memory this worker may use before Dask pauses it (e.g. 16GiB; 0 for no limit).")
@click.option("--host", help="Interface the worker listens on and advertises (default: Dask's choice).")
@click.option("--port", "worker_port", type=int, help="Worker port (default: any free one).")
@click.option("--name", help="Worker name shown by the scheduler (must be unique in the cluster).")
@click.option("--metrics-port", type=int, help="Serve this worker's Prometheus metrics on this port (default: off).")
def worker_command(scheduler: str, slots: int, memory_limit: str, host: str | None, worker_port: int | None,
                   name: str | None, metrics_port: int | None, **options: Any) -> None:
    """Join a Dask cluster and make tiles (model loaded once; tiles written to Redis). Keep it on a private network."""
    settings = build_settings(**{k: options[k] for k in (*ENGINE_OPTIONS, "legacy_worlds")})
    if not settings.redis:
        raise click.UsageError("workers need --redis (or TERRADREAM_REDIS): it is where they put the tiles")
    try:  # Dask and the model load only here, so `terradream --help` and the other commands start at once
        from terradream.cluster.tasks import align_dask_logging
        from terradream.cluster.worker import WorkerOptions, run_worker
    except ModuleNotFoundError as exc:
        raise missing_extra(exc, "terradream worker") or exc from exc
    configure_logging(settings.log_level)
    align_dask_logging(settings.log_level)
    click.echo(f"terradream {__version__} worker joining {scheduler} with {slots} slots", err=True)
    worker_options = WorkerOptions(scheduler=scheduler, slots=slots, memory_limit=memory_limit, host=host,
                                   port=worker_port, name=name, metrics_port=metrics_port)
    asyncio.run(run_worker(settings, worker_options))
