"""terradream: an XYZ tile server whose imagery a diffusion cascade paints on demand."""

__version__ = "0.1.0"
