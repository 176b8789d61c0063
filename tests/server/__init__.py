"""HTTP tests of the tile server (real uvicorn, real Redis, real files)."""
