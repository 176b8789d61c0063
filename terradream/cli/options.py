"""Options every engine-running command shares, declared once, and the Settings they build.

An option left out on the command line is None, so TERRADREAM_* variables and the Settings defaults apply; the help
shows that variable and the default read from the Settings field itself when it is shown, so the two cannot drift and
commands that never build Settings (`seed --dry-run`) do not import pydantic. Flag names mean one thing in every
command: `--world NAME` names a world, `--image-world NAME=IMAGE` adds one rooted in an image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from terradream.engine.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# The values of Settings' Literal fields (tests/server/test_cli.py checks they match).
DEVICES = ("auto", "cpu", "cuda")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def settings_default(name: str) -> str | None:
    """The default of Settings field `name` as help text (bools as on/off); None when it has none worth showing."""
    from pydantic_core import PydanticUndefined

    from terradream.engine.settings import Settings

    field = Settings.model_fields[name]
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined or value is None or value in ({}, [], ""):
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def settings_help(name: str, text: str | None = None) -> str:
    """`text` (else the field's description) followed by [env TERRADREAM_NAME; default: the field's default]."""
    from terradream.engine.settings import Settings

    notes = [f"env TERRADREAM_{name.upper()}"]
    default = settings_default(name)
    if default is not None:
        notes.append(f"default: {default}")
    return f"{text or Settings.model_fields[name].description} [{'; '.join(notes)}]"


class SettingsOption(click.Option):
    """An option for one Settings field; its help (text, variable, default) is read from Settings when shown."""

    def __init__(self, *args: Any, field: str, text: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.field, self.text = field, text

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """The usual help line, its text built from the Settings field first."""
        self.help = settings_help(self.field, self.text)
        return super().get_help_record(ctx)


ENGINE_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "host": (("--host",), {"text": "Interface to listen on."}),
    "port": (("--port",), {"type": int, "text": "TCP port."}),
    "workers": (("--workers",), {"type": click.IntRange(min=1), "text": (
        "Server processes sharing the cache, each loading the model (default: one per core).")}),
    "cache": (("--cache",), {"type": click.Path(file_okay=False, path_type=Path),
                             "text": "Embedded cache directory (MBTiles files)."}),
    "redis": (("--redis",), {"metavar": "URL"}),
    "scheduler": (("--scheduler",), {"metavar": "tcp://HOST:8786", "text": "Dask scheduler whose `terradream "
                                     "worker`s make cold tiles; needs --redis and the cluster extra."}),
    "model": (("--model",), {"type": click.Path(exists=True, file_okay=False, path_type=Path),
                             "text": "Model directory (save_pretrained layout); the shipped weights when not given."}),
    "device": (("--device",), {"type": click.Choice(DEVICES), "text": "Where the model runs."}),
    "batch_size": (("--batch-size",), {"type": int}),
    "cache_max_bytes": (("--cache-max-bytes",), {"metavar": "SIZE"}),
    "cold_deadline_s": (("--cold-deadline", "cold_deadline_s"), {"type": float}),
    "root_path": (("--root-path",), {"metavar": "/PREFIX", "text": (
        "Path prefix a reverse proxy strips, e.g. /terradream; handed-out URLs keep it.")}),
    "public_url": (("--public-url",), {"metavar": "URL", "text": (
        "Base URL clients use, e.g. https://maps.example.org/terradream; handed-out URLs start with it "
        "(default: from each request).")}),
    "worlds": (("--image-world", "worlds"), {"multiple": True, "metavar": "NAME=IMAGE", "text": (
        "A world rooted in an equirectangular image (repeatable; TERRADREAM_WORLDS is comma-separated).")}),
    "allow_arbitrary_worlds": (("--allow-arbitrary-worlds/--no-arbitrary-worlds",), {"default": None}),
    "maxzoom": (("--maxzoom",), {"type": int, "text": "Deepest zoom served."}),
    "queue_max": (("--queue-max",), {"type": int}),
    "log_level": (("--log-level",), {"type": click.Choice(LOG_LEVELS, case_sensitive=False),
                                     "text": "Log verbosity."}),
}


def engine_option(name: str, flag: str | None = None) -> Callable[[F], F]:
    """One engine option by its Settings field name; `flag` renames it where the usual flag means something else."""
    decls, kwargs = ENGINE_OPTIONS[name]
    if flag is not None:
        decls = (flag, name)
    return click.option(*decls, cls=SettingsOption, field=name, **kwargs)


def engine_options(*names: str, **renamed: str) -> Callable[[F], F]:
    """The named engine options in this order (renamed={'worlds': '--other-flag'} changes a flag)."""
    def decorate(command: F) -> F:
        for name in reversed(names):
            command = engine_option(name, renamed.get(name))(command)
        return command
    return decorate


def warn_legacy_worlds(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """click callback: say once on stderr that the old spelling is deprecated."""
    if value:
        click.echo("terradream: --world NAME=IMAGE is deprecated here, use --image-world NAME=IMAGE "
                   "(--world names a world)", err=True)
    return value


def legacy_world_option(command: F) -> F:
    """The old `--world NAME=IMAGE` of serve and worker: hidden, deprecated, read as --image-world."""
    return click.option("--world", "legacy_worlds", multiple=True, hidden=True, metavar="NAME=IMAGE",
                        callback=warn_legacy_worlds)(command)


def build_settings(**options: Any) -> Settings:
    """Settings from explicit CLI options (None = not given) over TERRADREAM_* variables over defaults."""
    from pydantic import ValidationError

    from terradream.engine.settings import Settings

    legacy = options.pop("legacy_worlds", ())
    if legacy:
        options["worlds"] = (*legacy, *options.get("worlds", ()))
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


def missing_extra(exc: ModuleNotFoundError, what: str) -> click.ClickException | None:
    """A clear error when an optional dependency group is not installed (None: exc is about something else)."""
    extras = {"dask": "cluster", "distributed": "cluster", "bokeh": "cluster"}
    extra = extras.get((exc.name or "").partition(".")[0])
    if extra is None:
        return None
    return click.ClickException(f"{what} needs the {extra} extra ({exc.name} is not installed): "
                                f"pip install 'terradream[{extra}]'")
