"""An engine over the shipped model loads earth's real data in the background at start, so that the first new
tiles do not wait for it, and serves meanwhile."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from terradream.engine.engine import Engine, load_engine
from terradream.engine.metrics import ServerMetrics
from terradream.engine.settings import Settings


def _loaded(engine: Engine) -> set[str]:
    """The water layers loaded so far (process-wide, like the atlas)."""
    stats = engine.pipeline.painter.water.stats()
    return {k for k in stats if k.startswith(("polygons_", "rivers_"))}


def test_an_engine_loads_earths_data_in_the_background(tmp_path: Path) -> None:
    engine = load_engine(Settings(cache=tmp_path / "cache", device="cpu", workers=1), ServerMetrics())
    try:
        assert "warm-atlases" in {t.name for t in threading.enumerate()} or _loaded(engine)
        want = {f"{kind}_{res}" for res in engine.pipeline.painter.water.available for kind in ("polygons", "rivers")}
        for thread in threading.enumerate():
            if thread.name == "warm-atlases":
                thread.join(120.0)
        assert _loaded(engine) == want
        assert engine.pipeline.places.count > 100_000
    finally:
        asyncio.run(engine.close())


def test_warming_can_be_switched_off(tmp_path: Path) -> None:
    engine = load_engine(Settings(cache=tmp_path / "cache", device="cpu", workers=1, warm_atlases=False),
                         ServerMetrics())
    try:  # (the data is process-wide, so another test may have loaded it: look for the loader instead)
        assert "warm-atlases" not in {t.name for t in threading.enumerate()}
    finally:
        asyncio.run(engine.close())
