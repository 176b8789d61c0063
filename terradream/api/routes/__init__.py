"""Routers: XYZ tiles, map-client descriptions (TileJSON, WMTS), service metadata, admin."""
