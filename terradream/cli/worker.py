"""`terradream worker`: a Dask worker that makes tiles for `terradream serve --scheduler` API servers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from terradream import __version__
from terradream.cli.logs import configure_logging

ENGINE_OPTIONS = ("redis", "model", "device", "batch_size", "worlds", "allow_arbitrary_worlds", "log_level")


@click.command("worker")
@click.option("--scheduler", required=True, envvar="TERRADREAM_SCHEDULER", metavar="tcp://HOST:8786",
              help="Dask scheduler address [env TERRADREAM_SCHEDULER].")
@click.option("--redis", help="Redis URL the workers write tiles to, the API servers' [env TERRADREAM_REDIS].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
              help="Where the model runs [env TERRADREAM_DEVICE].")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model directory; must match the API servers' [env TERRADREAM_MODEL; default: shipped weights].")
@click.option("--world", "worlds", multiple=True, metavar="NAME=IMAGE",
              help="A world rooted in an image, as given to the API servers (repeatable) [env TERRADREAM_WORLDS].")
@click.option("--allow-arbitrary-worlds/--no-arbitrary-worlds", default=None,
              help="Make tiles of any world name [env TERRADREAM_ALLOW_ARBITRARY_WORLDS; default on].")
@click.option("--batch-size", type=int, help="Most tiles per model batch [env TERRADREAM_BATCH_SIZE].")
@click.option("--slots", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Tile tasks this worker runs at once (Dask threads and GPU resource units): they meet in one "
                   "batcher, so keep it well above --batch-size.")
@click.option("--memory-limit", default="auto", show_default=True,
              help="Host memory this worker may use before Dask pauses it (e.g. 16GiB; 0 for no limit).")
@click.option("--host", help="Interface the worker listens on and advertises (default: Dask's choice).")
@click.option("--port", "worker_port", type=int, help="Worker port (default: any free one).")
@click.option("--name", help="Worker name shown by the scheduler (must be unique in the cluster).")
@click.option("--metrics-port", type=int, help="Serve this worker's Prometheus metrics on this port (default: off).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log verbosity [env TERRADREAM_LOG_LEVEL; default warning].")
def worker_command(scheduler: str, slots: int, memory_limit: str, host: str | None, worker_port: int | None,
                   name: str | None, metrics_port: int | None, **options: Any) -> None:
    """Join a Dask cluster and make tiles (model loaded once; tiles written to Redis). Keep it on a private network."""
    from terradream.cli.main import (
        build_settings,  # here, not on top: cli.py imports this module
    )
    from terradream.cluster.tasks import align_dask_logging
    from terradream.cluster.worker import WorkerOptions, run_worker

    settings = build_settings(**{k: options[k] for k in ENGINE_OPTIONS})
    if not settings.redis:
        raise click.UsageError("workers need --redis (or TERRADREAM_REDIS): it is where they put the tiles")
    configure_logging(settings.log_level)
    align_dask_logging(settings.log_level)
    click.echo(f"terradream {__version__} worker joining {scheduler} with {slots} slots", err=True)
    worker_options = WorkerOptions(scheduler=scheduler, slots=slots, memory_limit=memory_limit, host=host,
                                   port=worker_port, name=name, metrics_port=metrics_port)
    asyncio.run(run_worker(settings, worker_options))
