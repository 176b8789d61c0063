"""The package layering: every import of a terradream package points down the rule below, so there is no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[1] / "terradream"

# package -> the packages it may import (besides itself and terradream/__init__). Anything missing is an error.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "model": {"core"},
    "cache": {"core"},
    "training": {"model", "core"},
    "engine": {"model", "cache", "core"},
    "api": {"engine", "model", "cache", "core", "frontend"},
    "cluster": {"engine", "model", "cache", "core"},
    "data": {"engine", "model", "cache", "core"},
    "cli": {"api", "cluster", "data", "training", "engine", "model", "cache", "core"},
    "frontend": set(),
}


def package_imports() -> list[tuple[str, str, Path, int, bool]]:
    """(importing package, imported package, file, line, at module level) for every terradream import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts or path.parent == PACKAGE:
            continue
        source = path.relative_to(PACKAGE).parts[0]
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "terradream" and len(parts) > 1:
                    found.append((source, parts[1], path, node.lineno, id(node) in top))
    return found


def test_every_package_is_in_the_rule() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert packages == set(ALLOWED)


def test_imports_follow_the_layering() -> None:
    wrong = [f"{path.relative_to(PACKAGE.parent)}:{line}: {src} -> {dst}"
             for src, dst, path, line, _ in package_imports() if dst != src and dst not in ALLOWED[src]]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


# The CLI is the top layer (nothing imports it, so no cycle can hide there): its commands import the model, the
# server stack and Dask inside the command, so `terradream --help` and light commands start without them.
LAZY_IMPORTERS = {"cli"}


def test_no_imports_inside_functions() -> None:
    hidden = [f"{path.relative_to(PACKAGE.parent)}:{line}" for src, _, path, line, top in package_imports()
              if not top and src not in LAZY_IMPORTERS]
    assert not hidden, "terradream imports inside functions (hiding a cycle?):\n" + "\n".join(hidden)


def test_no_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for src, dst, *_ in package_imports():
        if src != dst:
            edges.setdefault(src, set()).add(dst)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
                   for nxt in edges.get(start, ()))

    cyclic = sorted(package for package in edges if reaches(package, package, {package}))
    assert not cyclic, f"packages on an import cycle: {cyclic}"
