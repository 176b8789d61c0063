"""The `terradream` command: one click group with serve, worker, seed, export and train."""

from __future__ import annotations

import click

from terradream import __version__
from terradream.cli.data import export_command, seed_command
from terradream.cli.serve import serve_command
from terradream.cli.train import train_command
from terradream.cli.worker import worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="terradream")
def main() -> None:
    """terradream: satellite-like imagery generated on demand, served as XYZ tiles, TileJSON and WMTS."""


for command in (serve_command, worker_command, seed_command, export_command, train_command):
    main.add_command(command)

if __name__ == "__main__":
    main()
