"""The HTTP face of terradream: FastAPI app, routes (XYZ, TileJSON, WMTS, meta), generation service and CLI."""
