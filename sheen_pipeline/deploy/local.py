"""The local preview target: files under SHEEN_HOME/previews, served by `sheen serve`."""

from __future__ import annotations

from pathlib import Path

from sheen_pipeline.config import FileLimits
from sheen_pipeline.fsutil import replace_tree
from sheen_pipeline.models import FileArtifact


def deploy_local(
    dist: Path, previews_root: Path, build_id: str, limits: FileLimits
) -> list[FileArtifact]:
    return replace_tree(dist, previews_root / build_id, limits)
