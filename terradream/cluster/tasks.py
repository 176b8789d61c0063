"""The wire contract between API servers and Dask workers: task names, priorities, the GPU resource, the tile task.

Kept free of torch and of the server's heavy modules: the Dask scheduler unpickles task specs that name `make_tile`,
so it imports this module (and only this one) from the terradream package.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

from distributed import get_worker

from terradream.core.keys import TileKey

PLUGIN_NAME = "terradream"
GPU_RESOURCE = "GPU"  # workers advertise GPU=<slots>; every tile task asks for GPU=1
INTERACTIVE_PRIORITY = 10  # Dask runs higher priorities first: viewers before seeding
BULK_PRIORITY = 0


class TileMaker(Protocol):
    """What the worker plugin offers the tile task."""

    async def make(self, task_key: str, tile: TileKey, version: str) -> bool:
        """Make one unit's tiles (its parents are in the cache) and cache them; True when this call generated one."""
        ...


def task_name(tile: TileKey, version: str) -> str:
    """The cluster-wide Dask key of a tile: `tile-{world}-{version}-{z}-{x}-{y}` (one computation per key)."""
    return f"tile-{tile.world}-{version}-{tile.z}-{tile.x}-{tile.y}"


def dask_priority(bulk: bool) -> int:
    """The Dask user priority of a request: interactive above bulk."""
    return BULK_PRIORITY if bulk else INTERACTIVE_PRIORITY


def is_bulk_priority(task_priority: tuple[Any, ...] | None) -> bool:
    """Whether a worker-side task priority tuple (-user priority, generation, order) came from a bulk request."""
    return bool(task_priority) and -task_priority[0] < INTERACTIVE_PRIORITY  # type: ignore[index]


async def make_tile(world: str, version: str, z: int, x: int, y: int, *parents: object) -> bool:
    """The Dask task of one unit (a root tile, or the metatile block whose first tile in the world is z/x/y): made
    by this worker's plugin, written to Redis; returns a bool, never pixels.

    `parents` are the results of the parent tiles' tasks: they only order the graph (the pixels come from Redis).
    """
    tile = TileKey(world, z, x, y)
    maker = cast(TileMaker, get_worker().plugins[PLUGIN_NAME])
    return await maker.make(task_name(tile, version), tile, version)


def align_dask_logging(level: str) -> None:
    """Dask's loggers quiet like terradream's: warnings and worse, unless terradream logs at debug level."""
    numeric = logging.getLevelName(level.upper())
    logging.getLogger("distributed").setLevel(numeric if level == "debug" else max(numeric, logging.WARNING))
