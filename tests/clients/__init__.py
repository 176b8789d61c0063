"""Client tests: seed/export CLI, GDAL interop, docker compose (real servers, real files, Debian GDAL)."""
