"""The package's layers, bottom to top: a module imports only from its own layer or below, and
only the Dagster layer (and what drives runs, and the CLI) imports Dagster."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "sheen_pipeline"

LAYERS: list[set[str]] = [
    {"config", "models", "logs", "redaction", "fsutil", "sqlite_commits", "background", "terminal"},
    {"store"},
    {"cache", "events", "budgets"},
    {"planning", "providers"},
    {"execution", "build", "deploy", "checks", "versions"},
    {"service", "approval", "costs", "promotion", "health", "metrics", "steps", "evals"},
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
    """Every module it imports, in any form: `import a.b`, `from a import b` (b may be a module),
    relative imports, and module paths written as whole strings (a code location module, a
    `python -m` target)."""
    tree = ast.parse(module_path.read_text())
    package = ".".join(("sheen_pipeline", *module_path.relative_to(PACKAGE).parent.parts))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base) if node.level else ""
            module = ".".join(filter(None, (module, node.module)))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and MODULE_STRING.fullmatch(node.value)
        ):
            names.add(node.value)
    return names


MODULE_STRING = re.compile(r"sheen_pipeline(\.\w+)+")
# Modules named by string on purpose, so that the layer below never imports them: the code
# location module whose jobs runs/ drives by name, and the CLI a short-lived command hands its
# pending webhook deliveries to.
STRING_REFERENCES = {
    ("runs/tags.py", "sheen_pipeline.defs"),
    ("events/runtime.py", "sheen_pipeline.cli"),
}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE / "store" / "migrations")


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(p) for p in MODULES} - {"__init__"}
    assert parts <= set().union(*LAYERS)


@pytest.mark.parametrize("module_path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward_or_dagster_outside_its_layer(module_path: Path) -> None:
    part = _part(module_path)
    if part == "__init__":
        return
    where = module_path.relative_to(PACKAGE).as_posix()
    for name in _imports(module_path):
        root, _, rest = name.partition(".")
        if (where, name) in STRING_REFERENCES:
            continue
        if root == "sheen_pipeline" and rest:
            imported = rest.split(".")[0]
            if imported in set().union(*LAYERS):  # a name from the package's __init__ otherwise
                assert _layer(imported) <= _layer(part), f"{part} imports {name} (a higher layer)"
        if root.startswith("dagster"):  # dagster, dagster_graphql, dagster_celery, ...
            assert part in DAGSTER_USERS, f"{part} imports {name}"


def test_every_string_reference_is_still_there() -> None:
    for where, name in STRING_REFERENCES:
        assert name in _imports(PACKAGE / where), f"{where} no longer names {name}"


def test_the_architecture_document_lists_the_same_layers() -> None:
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    listed = [
        set(re.findall(r"`(\w+)`", line.split(":", 1)[0] if ": " in line else line))
        for line in section.splitlines()
        if re.match(r"\d+\. ", line)
    ]
    assert listed == LAYERS
