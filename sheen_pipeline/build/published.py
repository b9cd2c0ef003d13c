"""What of a built site is published: never a dotfile or a build tool's folder, at any depth
(`.env`, `.git/`, a nested `node_modules/`), unless the framework's public folder holds that very
file (Vite copies `public/` into the site as it is, so `public/.well-known/security.txt` is
meant to be served)."""

from __future__ import annotations

from collections.abc import Mapping, Set
from pathlib import PurePosixPath

from sheen_pipeline.models import BUILD_TOOL_FOLDERS


def published(
    files: Mapping[str, bytes], public: Set[str] = frozenset()
) -> tuple[dict[str, bytes], list[str]]:
    """The files to publish, and the paths withheld."""
    kept: dict[str, bytes] = {}
    withheld: list[str] = []
    for path, data in files.items():
        if path in public or not _hidden(path):
            kept[path] = data
        else:
            withheld.append(path)
    return kept, withheld


def _hidden(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any(part.startswith(".") or part in BUILD_TOOL_FOLDERS for part in parts)
