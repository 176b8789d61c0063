"""The base of the router factories (TiTiler style): dependencies are fields, routes registered on construction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from fastapi import APIRouter

from terradream.api.dependencies import Runtime, get_engine, get_runtime
from terradream.engine.engine import Engine


@dataclass
class RouterFactory:
    """Holds a router and the dependencies its routes use; subclasses name their tags and register routes."""

    router: APIRouter = field(default_factory=APIRouter)
    runtime_dependency: Callable[..., Awaitable[Runtime]] = get_runtime
    engine_dependency: Callable[..., Awaitable[Engine]] = get_engine
    tags: ClassVar[list[str]] = []

    def __post_init__(self) -> None:
        """Tag the router, then register the routes (tags apply to routes added after they are set)."""
        if not self.router.tags:
            self.router.tags = list(self.tags)
        self.register_routes()

    def register_routes(self) -> None:
        """Add this factory's routes to self.router."""
        raise NotImplementedError
