"""terradream: an XYZ tile server whose imagery a diffusion cascade paints on demand."""

import os

# The model's CPU ops are many short OpenMP parallel regions; idle OpenMP workers that spin between them take the
# cores from the thread that would start the next one (and from the event loop), which on a shared or busy machine
# made a window about 3x slower. Sleeping idle workers change no result, only scheduling. Set before torch loads
# OpenMP, so it holds wherever terradream is imported first; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
