"""Leaflet viewer: static files under static/, Leaflet and Swagger UI (for /docs) from npm under node_modules/."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET_DIST_DIR = Path(__file__).parent / "node_modules" / "leaflet" / "dist"
SWAGGER_UI_DIST_DIR = Path(__file__).parent / "node_modules" / "swagger-ui-dist"
