"""The static builder: the workspace, as it is, becomes the dist folder."""

from __future__ import annotations

from pathlib import Path

from sheen_pipeline.build.published import published
from sheen_pipeline.config import FileLimits
from sheen_pipeline.fsutil import read_tree, swap_in
from sheen_pipeline.models import BUILD_TOOL_FOLDERS, FileArtifact


class BuildError(RuntimeError):
    """The workspace cannot be built; the message says what is missing."""


def build_static(workspace: Path, dist: Path, limits: FileLimits) -> list[FileArtifact]:
    if not (workspace / "index.html").is_file():
        raise BuildError("the workspace has no index.html, so there is no page to serve")
    files, _withheld = published(read_tree(workspace, limits, skip=BUILD_TOOL_FOLDERS).files)
    return swap_in(dist, files)
