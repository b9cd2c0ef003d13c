"""The package's layers, bottom to top: a module imports only from its own layer or below, and
only the Dagster layer (and what drives runs, and the CLI) imports Dagster."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "sheen_pipeline"

LAYERS: list[set[str]] = [
    {"config", "models", "logs", "redaction", "fsutil", "sqlite_commits", "background", "terminal"},
    {"store"},
    {"cache", "events", "budgets"},
    {"planning", "providers"},
    {"execution", "build", "deploy", "checks"},
    {"service", "approval", "costs", "promotion", "health", "metrics"},
    {"liveness"},
    {"runs"},
    {"defs"},
    {"api", "cli", "celery_worker"},
]
DAGSTER_USERS = {"runs", "defs", "cli", "celery_worker"}


def _part(module_path: Path) -> str:
    """The top-level part of the package a file belongs to (`service` for service.py)."""
    return module_path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _layer(part: str) -> int:
    return next(index for index, parts in enumerate(LAYERS) if part in parts)


def _imports(module_path: Path) -> set[str]:
    tree = ast.parse(module_path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE / "store" / "migrations")


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(p) for p in MODULES} - {"__init__"}
    assert parts <= set().union(*LAYERS)


@pytest.mark.parametrize("module_path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward_or_dagster_outside_its_layer(module_path: Path) -> None:
    part = _part(module_path)
    if part == "__init__":
        return
    for name in _imports(module_path):
        root, _, rest = name.partition(".")
        if root == "sheen_pipeline" and rest:
            imported = rest.split(".")[0]
            assert _layer(imported) <= _layer(part), f"{part} imports {name} (a higher layer)"
        if root in ("dagster", "dagster_graphql"):
            assert part in DAGSTER_USERS, f"{part} imports {name}"
