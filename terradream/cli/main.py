"""The `terradream` command: one click group with serve, worker, seed, export and train.

A command's module is imported only when that command runs (or shows its help), and each imports torch, the server
stack or Dask only inside the command, so `terradream --help` and `seed --dry-run` start at once.
"""

from __future__ import annotations

import importlib

import click

from terradream import __version__

# name -> (module:attribute of the click command, the one line shown in `terradream --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("terradream.cli.serve:serve_command", "Serve tiles, TileJSON and WMTS over HTTP."),
    "worker": ("terradream.cli.worker:worker_command", "Make tiles for a Dask cluster of servers."),
    "seed": ("terradream.cli.data:seed_command", "Generate and cache every tile of a region."),
    "export": ("terradream.cli.data:export_command", "Write a region as a GeoTIFF, PNG or MBTiles file."),
    "train": ("terradream.cli.train:train_command", "Train a denoiser on real imagery."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when used; the command list comes from COMMANDS without importing any."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order of COMMANDS."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module and return the command, its short help taken from COMMANDS."""
        if cmd_name not in COMMANDS:
            return None
        target, short_help = COMMANDS[cmd_name]
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        command.short_help = short_help
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS alone, so `terradream --help` imports no command."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, short_help) for name, (_, short_help) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="terradream")
def main() -> None:
    """terradream: satellite-like imagery generated on demand, served as XYZ tiles, TileJSON and WMTS."""


if __name__ == "__main__":
    main()
