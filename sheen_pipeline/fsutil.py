"""Folder copies that never follow links and never leave a half-written destination."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sheen_pipeline.models import FileArtifact


def regular_files(root: Path) -> list[Path]:
    """Regular files under root, sorted, skipping symbolic links and what lies behind them."""
    found: list[Path] = []
    for folder, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink() and path.is_file():
                found.append(path)
    return sorted(found)


def replace_tree(source: Path, destination: Path) -> list[FileArtifact]:
    """Copy source's regular files to destination, swapping it in only once complete."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    artifacts = []
    for path in regular_files(source):
        relative = path.relative_to(source)
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        target.write_bytes(data)
        artifacts.append(FileArtifact.of(relative.as_posix(), data))
    if destination.exists():
        shutil.rmtree(destination)
    staging.rename(destination)
    return artifacts
