"""The data-engine commands: `terradream seed` (prefetch a region into the cache) and `terradream export` (a dataset).

Both work in-process (the server's model and cache stack, from the same options and TERRADREAM_* variables as
`serve`, so what they generate is served) or through a running server with --url (requests marked bulk).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from terradream.cli.logs import configure_logging
from terradream.cli.options import build_settings, engine_options, pop_engine_options
from terradream.core.regions import BBox, parse_bbox, parse_zoom_range, region_grids, region_keys

if TYPE_CHECKING:  # the data engine imports the model (torch): loaded inside the commands that use it
    from tqdm import tqdm

    from terradream.data.seeding import RunReport
    from terradream.data.sources import TileSource

F = TypeVar("F", bound=Callable[..., Any])
INTERRUPTED_EXIT = 130  # the shell's code for "stopped by SIGINT"
ENGINE_OPTIONS = ("cache", "redis", "model", "device", "batch_size", "worlds", "log_level")


def bbox_option(ctx: click.Context, param: click.Parameter, value: str) -> BBox:
    """click callback: W,S,E,N in degrees."""
    try:
        return parse_bbox(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def zoom_option(ctx: click.Context, param: click.Parameter, value: str) -> range:
    """click callback: Z or A-B."""
    try:
        return parse_zoom_range(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def region_options(zoom_help: str) -> Callable[[F], F]:
    """--world, --bbox and --zoom."""
    def decorate(command: F) -> F:
        for option in reversed([
            click.option("--world", required=True, help="World name (earth, an image world, or any procedural name)."),
            click.option("--bbox", required=True, callback=bbox_option, metavar="W,S,E,N",
                         help="WGS84 box in degrees; W > E crosses the antimeridian."),
            click.option("--zoom", "zooms", required=True, callback=zoom_option, metavar="Z|A-B", help=zoom_help),
        ]):
            command = option(command)
        return command
    return decorate


def source_options(command: F) -> F:
    """The tile source: --url (a running server) or the in-process engine with the same options as `serve`."""
    command = engine_options(*ENGINE_OPTIONS)(command)
    for option in reversed([
        click.option("--url", help="Base URL of a running terradream server; without it the model runs in-process."),
        click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Tiles in flight at once over --url."),
        click.option("--retries", type=click.IntRange(0, 100), default=10, show_default=True,
                     help="Retries per tile over --url (503/429/5xx and network errors; Retry-After is honoured)."),
    ]):
        command = option(command)
    return command


def open_source(url: str | None, concurrency: int, retries: int, engine: dict[str, Any]) -> TileSource:
    """HttpSource for --url, else a LocalSource built from the serve-style options over TERRADREAM_* variables."""
    from terradream.data.sources import HttpSource, LocalSource

    if url:
        given = sorted(f"--{k.replace('_', '-')}" for k, v in engine.items()
                       if v not in (None, ()) and k != "log_level")
        if given:
            raise click.UsageError(f"{', '.join(given)} configure the in-process engine; with --url the server's apply")
        return HttpSource(url, concurrency=concurrency, retries=retries)
    settings = build_settings(**engine)
    configure_logging(settings.log_level)
    return LocalSource(settings)


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[tqdm]:
    """A tqdm bar on stderr: count, rate and ETA."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, unit="tile", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    try:
        yield bar
    finally:
        bar.close()


def finish(report: RunReport, verb: str) -> None:
    """Print the summary, then the failed tiles (stderr) and exit 1 if there are any."""
    click.echo(f"{verb} {report.summary()}")
    if report.failures:
        click.echo(f"{len(report.failures)} tiles failed:", err=True)
        for line in report.failure_lines():
            click.echo(line, err=True)
        sys.exit(1)


def run_command(source_args: tuple[str | None, int, int, dict[str, Any]], world: str, total: int, verb: str,
                work: Callable[[TileSource, RunReport, tqdm], object]) -> RunReport:
    """Open the source, check the world, run work with a report and a bar; Ctrl-C prints how far it got."""
    from terradream.data.seeding import RunReport
    from terradream.data.sources import SourceError

    source = open_source(*source_args)
    report = RunReport(total)
    try:
        source.info(world)
        with progress_bar(total, verb) as bar:
            work(source, report, bar)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo(f"interrupted: {report.summary()}; run the same command again to resume "
                   "(cached tiles are not generated again)", err=True)
        sys.exit(INTERRUPTED_EXIT)
    finally:
        source.close()
    return report


@click.command("seed")
@region_options("Zoom or inclusive zoom range, e.g. 0-12.")
@click.option("--dry-run", is_flag=True, help="Print how many tiles the region holds and exit.")
@source_options
def seed_command(world: str, bbox: BBox, zooms: range, dry_run: bool, url: str | None, concurrency: int,
                 retries: int, **options: Any) -> None:
    """Generate and cache every tile of a region (resumable: cached tiles are skipped); failures exit 1."""
    grids = region_grids(bbox, zooms)
    total = sum(grid.count for grid in grids)
    if dry_run:
        click.echo(f"{total} tiles ({', '.join(f'z{grid.z}: {grid.count}' for grid in grids)})")
        return
    from terradream.data.seeding import seed

    source_args = (url, concurrency, retries, pop_engine_options(options, ENGINE_OPTIONS))
    report = run_command(source_args, world, total, "seed",
                         lambda source, rep, bar: seed(source, region_keys(world, grids), rep, bar))
    finish(report, "seeded")


@click.command("export")
@region_options("Zoom of a .tif/.png; a zoom or range for .mbtiles.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: .tif (GeoTIFF), .png (+ .pgw world file) or .mbtiles.")
@source_options
def export_command(world: str, bbox: BBox, zooms: range, out: Path, url: str | None, concurrency: int,
                   retries: int, **options: Any) -> None:
    """Write a region as a dataset in EPSG:3857: GeoTIFF, georeferenced PNG or MBTiles 1.3."""
    from terradream.data.exporting import describe_plan, export, plan_export

    try:
        plan = plan_export(bbox, zooms, out)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    written: list[bool] = []
    source_args = (url, concurrency, retries, pop_engine_options(options, ENGINE_OPTIONS))
    report = run_command(source_args, world, plan.count, "export",
                         lambda source, rep, bar: written.append(export(source, world, plan, out, rep, bar)))
    if written and written[0]:
        click.echo(f"wrote {out} ({describe_plan(plan)})")
    finish(report, "exported" if written and written[0] else "nothing written;")

