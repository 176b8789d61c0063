"""Leaflet viewer: static files under static/ and Leaflet from npm under node_modules/leaflet/dist/."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET_DIST_DIR = Path(__file__).parent / "node_modules" / "leaflet" / "dist"
