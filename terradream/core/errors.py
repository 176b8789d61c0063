"""Errors the generator raises; the server maps each to an HTTP status."""


class TerradreamError(Exception):
    """Base class for errors the generator reports to its callers."""


class TileOutOfRange(TerradreamError):
    """The tile lies outside the tile matrix (z above maxzoom, x or y >= 2^z, negatives): HTTP 404."""


class UnknownWorld(TerradreamError):
    """The world name is malformed, not configured, or arbitrary worlds are disabled: HTTP 404."""
