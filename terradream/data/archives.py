"""Tile-archive exports: MBTiles 1.3 and PMTiles v3, holding tiles as PNG (bytes unchanged), JPEG or WebP.

MBTiles uses the cache's schema and TMS rows, committed in one transaction. PMTiles (the `pmtiles` package, imported
only when used) gets its tiles in Hilbert order whatever order they arrived in, so the archive is clustered, and
carries TileJSON-style metadata; both state the tile format, bounds, centre and zooms.
"""

from __future__ import annotations

import html
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from terradream import __version__
from terradream.cache.codec import TileFormat, transcode_png
from terradream.cache.mbtiles import SCHEMA, tms_row
from terradream.core.coverage import TileSet
from terradream.core.keys import TileKey
from terradream.data.sources import TilesetInfo


def archive_metadata(world: str, info: TilesetInfo, tile_sets: Sequence[TileSet],
                     fmt: TileFormat) -> dict[str, str]:
    """MBTiles 1.3 metadata (also PMTiles' JSON metadata): name, format, bounds, center, zooms, attribution, type."""
    z_min, z_max = tile_sets[0].z, tile_sets[-1].z
    west, south, east, north = tile_sets[-1].bounds_deg()
    if west > east:  # MBTiles bounds cannot cross the antimeridian
        west, east = -180.0, 180.0
    return {
        "name": f"terradream {world}",
        "format": fmt.value,
        "bounds": f"{west!r},{south!r},{east!r},{north!r}",
        "center": f"{(west + east) / 2!r},{(south + north) / 2!r},{z_min}",
        "minzoom": str(z_min),
        "maxzoom": str(z_max),
        "attribution": html.escape(info.attribution),  # MBTiles attribution may hold HTML: escape plain text
        "description": f"Generated imagery of terradream world '{world}', model version {info.version}. "
                       f"{info.description}".strip(),
        "type": "baselayer",
        "version": "1",
        "generator": f"terradream {__version__}",
    }


class MBTilesWriter:
    """An MBTiles 1.3 file (the cache's schema, TMS rows); PNG tiles keep their bytes, others are transcoded."""

    def __init__(self, path: Path, metadata: dict[str, str], fmt: TileFormat = TileFormat.png) -> None:
        """Create the tables and the metadata; tiles are committed in one transaction by finish()."""
        self.fmt = fmt
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)
        self.conn.executemany("INSERT OR REPLACE INTO metadata (name, value) VALUES (?, ?)", metadata.items())

    def write(self, key: TileKey, png: bytes) -> None:
        """Insert one tile (TMS row)."""
        self.conn.execute("INSERT OR REPLACE INTO tiles (zoom_level, tile_column, tile_row, tile_data) "
                          "VALUES (?, ?, ?, ?)", (key.z, key.x, tms_row(key.z, key.y), transcode_png(png, self.fmt)))

    def finish(self) -> None:
        """Commit and close."""
        self.conn.commit()
        self.conn.close()

    def abort(self) -> None:
        """Close without committing."""
        self.conn.close()


def pmtiles_header(metadata: dict[str, str], fmt: TileFormat) -> dict[str, object]:
    """The PMTiles v3 header fields the writer does not fill in itself: tile type, bounds and centre."""
    from pmtiles.tile import Compression, TileType

    west, south, east, north = (float(v) for v in metadata["bounds"].split(","))
    lon, lat, zoom = metadata["center"].split(",")
    tile_type = {TileFormat.png: TileType.PNG, TileFormat.jpg: TileType.JPEG, TileFormat.webp: TileType.WEBP}[fmt]
    return {"tile_type": tile_type, "tile_compression": Compression.NONE,
            "min_lon_e7": round(west * 1e7), "min_lat_e7": round(south * 1e7),
            "max_lon_e7": round(east * 1e7), "max_lat_e7": round(north * 1e7),
            "center_zoom": int(zoom),
            "center_lon_e7": round(float(lon) * 1e7), "center_lat_e7": round(float(lat) * 1e7)}


class PMTilesWriter:
    """A PMTiles v3 archive: tiles are spooled to a temporary file as they come, then written in tile-id order."""

    def __init__(self, path: Path, metadata: dict[str, str], fmt: TileFormat = TileFormat.png) -> None:
        """Open the spool next to the output (so it lands on the same disk)."""
        self.path, self.metadata, self.fmt = path, metadata, fmt
        self.spool = tempfile.TemporaryFile(dir=path.parent)
        self.entries: list[tuple[int, int, int]] = []  # (tile id, spool offset, length)

    def write(self, key: TileKey, png: bytes) -> None:
        """Append the tile to the spool."""
        from pmtiles.tile import zxy_to_tileid

        data = transcode_png(png, self.fmt)
        self.entries.append((zxy_to_tileid(key.z, key.x, key.y), self.spool.tell(), len(data)))
        self.spool.write(data)

    def finish(self) -> None:
        """Write the archive: tiles in tile-id order (clustered), identical tiles stored once, then the directories."""
        from pmtiles.writer import Writer

        self.entries.sort()
        with self.path.open("wb") as out:
            writer = Writer(out)
            for tile_id, offset, length in self.entries:
                self.spool.seek(offset)
                writer.write_tile(tile_id, self.spool.read(length))
            writer.finalize(pmtiles_header(self.metadata, self.fmt), self.metadata)
        self.spool.close()

    def abort(self) -> None:
        """Drop the spool."""
        self.spool.close()
