"""Fixtures for generator tests: a cascade over the tiny model with an in-memory store."""

from pathlib import Path

import pytest

from terradream.model.cascade import Cascade, MemoryTileStore
from terradream.model.pipeline import TerraPipeline
from terradream.model.worlds import WorldRegistry


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir: Path) -> TerraPipeline:
    return TerraPipeline.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture
def cascade(pipeline: TerraPipeline) -> Cascade:
    return Cascade(pipeline, WorldRegistry(), MemoryTileStore())
