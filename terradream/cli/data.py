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
from terradream.core.coverage import Coverage, keys_of, parse_geojson
from terradream.core.regions import BBox, parse_bbox, parse_zoom_range

if TYPE_CHECKING:  # the data engine imports the model (torch): loaded inside the commands that use it
    from tqdm import tqdm

    from terradream.data.seeding import RunReport
    from terradream.data.sources import TileSource

F = TypeVar("F", bound=Callable[..., Any])
INTERRUPTED_EXIT = 130  # the shell's code for "stopped by SIGINT"
ENGINE_OPTIONS = ("cache", "redis", "model", "device", "batch_size", "worlds", "log_level")
# written out so that help loads no codec or raster writer; a test checks them against TileFormat and COMPRESSIONS
TILE_FORMATS = ("png", "jpg", "webp")
COMPRESSIONS = ("jpeg", "webp", "deflate", "lzw")


def bbox_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[BBox, ...]:
    """click callback: each --bbox as W,S,E,N in degrees."""
    try:
        return tuple(parse_bbox(text) for text in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def geojson_option(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Any, ...]:
    """click callback: the polygons of each --geojson file."""
    polygons: list[Any] = []
    for path in value:
        try:
            polygons.extend(parse_geojson(path.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"{path}: {exc}") from exc
    return tuple(polygons)


def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """click callback: a time budget as seconds, or with a unit: 90s, 30m, 1.5h."""
    if value is None:
        return None
    text = value.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(text[-1:], None)
    try:
        seconds = float(text[:-1] if scale else text) * (scale or 1.0)
    except ValueError:
        raise click.BadParameter(f"give seconds or a number with s, m or h, got {value!r}") from None
    if not seconds > 0:
        raise click.BadParameter(f"must be positive, got {value!r}")
    return seconds


def coverage_of(boxes: tuple[BBox, ...], polygons: tuple[Any, ...]) -> Coverage:
    """The union of the --bbox and --geojson shapes; a usage error when there is none."""
    if not boxes and not polygons:
        raise click.UsageError("give the region with --bbox W,S,E,N and/or --geojson FILE")
    return Coverage(boxes, polygons)


def zoom_option(ctx: click.Context, param: click.Parameter, value: str) -> range:
    """click callback: Z or A-B."""
    try:
        return parse_zoom_range(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def region_options(zoom_help: str) -> Callable[[F], F]:
    """--world, --bbox, --geojson and --zoom."""
    def decorate(command: F) -> F:
        for option in reversed([
            click.option("--world", required=True, help="World name (earth, an image world, or any procedural name)."),
            click.option("--bbox", "boxes", multiple=True, callback=bbox_option, metavar="W,S,E,N",
                         help="WGS84 box in degrees; W > E crosses the antimeridian. Repeatable."),
            click.option("--geojson", "polygons", multiple=True, callback=geojson_option, metavar="FILE",
                         type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="GeoJSON (Multi)Polygons: every tile they touch. Repeatable; joins --bbox."),
            click.option("--zoom", "zooms", required=True, callback=zoom_option, metavar="Z|A-B", help=zoom_help),
        ]):
            command = option(command)
        return command
    return decorate


def source_options(command: F) -> F:
    """The tile source: --url (a running server) or the in-process engine with the same options as `serve`."""
    # --world names the region's world here, so image worlds take --image-world
    command = engine_options(*ENGINE_OPTIONS, worlds="--image-world")(command)
    for option in reversed([
        click.option("--url", help="Base URL of a running terradream server; without it the model runs in-process."),
        click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Tiles in flight at once over --url."),
        click.option("--retries", type=click.IntRange(0, 100), default=10, show_default=True,
                     help="Retries per tile over --url (503/429/5xx and network errors; Retry-After is honoured)."),
    ]):
        command = option(command)
    return command


def open_source(url: str | None, concurrency: int, retries: int, engine: dict[str, Any],
                bodies: bool = True) -> TileSource:
    """HttpSource for --url (HEAD requests without bodies), else a LocalSource built from the serve-style options
    over TERRADREAM_* variables."""
    from terradream.data.sources import HttpSource, LocalSource

    if url:
        given = sorted(f"--{k.replace('_', '-')}" for k, v in engine.items()
                       if v not in (None, ()) and k != "log_level")
        if given:
            raise click.UsageError(f"{', '.join(given)} configure the in-process engine; with --url the server's apply")
        return HttpSource(url, concurrency=concurrency, retries=retries, bodies=bodies)
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


def run_command(source_args: tuple[str | None, int, int, dict[str, Any], bool], world: str, total: int, verb: str,
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
@click.option("--duration", callback=duration_option, metavar="TIME",
              help="Stop taking new tiles after this long (90s, 30m, 2h); run again to go on.")
@source_options
def seed_command(world: str, boxes: tuple[BBox, ...], polygons: tuple[Any, ...], zooms: range, dry_run: bool,
                 duration: float | None, url: str | None, concurrency: int, retries: int, **options: Any) -> None:
    """Generate and cache every tile of a region (resumable: cached tiles are skipped); failures exit 1."""
    tile_sets = coverage_of(boxes, polygons).tile_sets(zooms)
    counts = [tile_set.count for tile_set in tile_sets]
    if dry_run:
        per_zoom = ", ".join(f"z{ts.z}: {n}" for ts, n in zip(tile_sets, counts, strict=True))
        click.echo(f"{sum(counts)} tiles ({per_zoom})")
        return
    from terradream.data.seeding import seed as seed_tiles

    source_args = (url, concurrency, retries, pop_engine_options(options, ENGINE_OPTIONS), False)
    report = run_command(source_args, world, sum(counts), "seed",
                         lambda source, rep, bar: seed_tiles(source, keys_of(world, tile_sets), rep, bar, duration))
    if duration is not None and report.done < report.total:
        click.echo(f"stopped after --duration {duration:g} s; run the same command again to go on "
                   "(cached tiles are not generated again)", err=True)
    finish(report, "seeded")


@click.command("export")
@region_options("Zoom of a .tif/.png; a zoom or range for .mbtiles/.pmtiles.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output: .tif (COG), .png (+ .pgw world file), .mbtiles or .pmtiles.")
@click.option("--tile-format", type=click.Choice(TILE_FORMATS), default=TILE_FORMATS[0],
              show_default=True, help="Tile encoding in .mbtiles/.pmtiles.")
@click.option("--compress", type=click.Choice(COMPRESSIONS), default=COMPRESSIONS[0], show_default=True,
              help="COG compression: jpeg/webp (small) or deflate/lzw (lossless).")
@click.option("--dry-run", is_flag=True, help="Print the tile count and an estimated size, and exit.")
@source_options
def export_command(world: str, boxes: tuple[BBox, ...], polygons: tuple[Any, ...], zooms: range, out: Path,
                   tile_format: str, compress: str, dry_run: bool, url: str | None, concurrency: int,
                   retries: int, **options: Any) -> None:
    """Write a region as a dataset in EPSG:3857: COG, georeferenced PNG, MBTiles 1.3 or PMTiles v3."""
    from terradream.cache.codec import TileFormat
    from terradream.data.exporting import describe_plan, export, human_bytes, plan_export

    try:
        plan = plan_export(coverage_of(boxes, polygons), zooms, out, TileFormat(tile_format), compress)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if dry_run:
        click.echo(f"{out}: {describe_plan(plan)}, about {human_bytes(plan.estimated_bytes())}")
        return
    written: list[bool] = []
    source_args = (url, concurrency, retries, pop_engine_options(options, ENGINE_OPTIONS), True)
    report = run_command(source_args, world, plan.count, "export",
                         lambda source, rep, bar: written.append(export(source, world, plan, out, rep, bar)))
    if written and written[0]:
        click.echo(f"wrote {out} ({describe_plan(plan)})")
    finish(report, "exported" if written and written[0] else "nothing written;")
