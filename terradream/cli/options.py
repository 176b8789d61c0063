"""Options every engine-running command shares, declared once, and the Settings they build.

An option left out on the command line is None, so TERRADREAM_* variables and the Settings defaults apply.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from terradream.engine.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


def engine_option(name: str, flag: str | None = None) -> Callable[[F], F]:
    """One engine option by its Settings field name; `flag` renames it where the usual flag means something else."""
    decls, kwargs = ENGINE_OPTIONS[name]
    if flag is not None:
        decls = (flag, name)
    return click.option(*decls, **kwargs)


def engine_options(*names: str, **renamed: str) -> Callable[[F], F]:
    """The named engine options in this order (renamed={'worlds': '--image-world'} changes a flag)."""
    def decorate(command: F) -> F:
        for name in reversed(names):
            command = engine_option(name, renamed.get(name))(command)
        return command
    return decorate


ENGINE_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "cache": (("--cache",), {"type": click.Path(file_okay=False, path_type=Path),
                             "help": "Embedded cache directory (MBTiles files) [env TERRADREAM_CACHE; "
                                     "default ~/.cache/terradream]."}),
    "redis": (("--redis",), {"help": "Redis URL of the shared cache, replaces the embedded one "
                                     "[env TERRADREAM_REDIS]."}),
    "model": (("--model",), {"type": click.Path(exists=True, file_okay=False, path_type=Path),
                             "help": "Model directory (save_pretrained layout) [env TERRADREAM_MODEL; "
                                     "default: shipped weights]."}),
    "device": (("--device",), {"type": click.Choice(["auto", "cpu", "cuda"]),
                               "help": "Where the model runs [env TERRADREAM_DEVICE]."}),
    "batch_size": (("--batch-size",), {"type": int, "help": "Tiles per generation batch [env TERRADREAM_BATCH_SIZE]."}),
    "worlds": (("--world", "worlds"), {"multiple": True, "metavar": "NAME=IMAGE",
                                       "help": "A world rooted in an equirectangular image (repeatable) "
                                               "[env TERRADREAM_WORLDS, comma-separated]."}),
    "allow_arbitrary_worlds": (("--allow-arbitrary-worlds/--no-arbitrary-worlds",), {
        "default": None, "help": "Serve any name as a procedural planet [env TERRADREAM_ALLOW_ARBITRARY_WORLDS; "
                                 "default on]."}),
    "log_level": (("--log-level",), {"type": LOG_LEVELS,
                                     "help": "Log verbosity [env TERRADREAM_LOG_LEVEL; default warning]."}),
}


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


def pop_engine_options(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The engine options among a command's keyword arguments (removed from them)."""
    return {k: options.pop(k) for k in names}
