"""Folder copies that never follow links and never leave a half-written destination."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sheen_pipeline.config import FileLimits
from sheen_pipeline.models import FileArtifact


class TreeTooLarge(ValueError):
    """A folder holds more files or bytes than may be copied; the message gives the figures."""


def regular_files(root: Path, skip: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under root, sorted, skipping symbolic links and what lies behind them, and
    top-level folders named in skip."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in skip]
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink() and path.is_file():
                found.append(path)
    return sorted(found)


def deployable_files(
    source: Path, limits: FileLimits, skip: frozenset[str] = frozenset()
) -> list[Path]:
    """source's regular files (but the top-level folders in skip), refused when they are over
    the deploy limits."""
    paths = regular_files(source, skip)
    total = sum(path.stat().st_size for path in paths)
    if len(paths) > limits.max_deploy_files:
        raise TreeTooLarge(
            f"{len(paths)} files to deploy, over the limit of {limits.max_deploy_files}"
        )
    if total > limits.max_deploy_bytes:
        raise TreeTooLarge(f"{total} bytes to deploy, over the limit of {limits.max_deploy_bytes}")
    return paths


def replace_tree(
    source: Path, destination: Path, limits: FileLimits, skip: frozenset[str] = frozenset()
) -> list[FileArtifact]:
    """Copy source's regular files (but the top-level folders in skip) to destination, swapping
    it in only once complete; refused before anything is copied when they are over the
    deploy limits."""
    paths = deployable_files(source, limits, skip)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    artifacts = []
    for path in paths:
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
