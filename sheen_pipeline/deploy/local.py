"""The local target: previews under SHEEN_HOME/previews/<build_id>/, served by `sheen serve` at
/p/<build_id>/; production is whichever build is promoted, at /prod/<project_id>/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sheen_pipeline.config import FileLimits
from sheen_pipeline.fsutil import replace_tree
from sheen_pipeline.models import Deployed


class LocalTarget:
    name = "local"

    def __init__(
        self,
        previews_dir: Path,
        limits: FileLimits,
        preview_url: Callable[[str], str],
        production_url: Callable[[str], str],
    ) -> None:
        self.previews_dir = previews_dir
        self.limits = limits
        self.preview_url = preview_url
        self.production_url = production_url

    def deploy(self, project_id: str, build_id: str, dist: Path) -> Deployed:
        files = tuple(replace_tree(dist, self.previews_dir / build_id, self.limits))
        return Deployed(
            target=self.name,
            url=self.preview_url(build_id),
            files=files,
            uploaded_files=len(files),
            uploaded_bytes=sum(f.size for f in files),
        )

    def promote(self, project_id: str, deployed: Deployed) -> str:
        """Nothing to copy: the preview server serves the promoted build's preview folder."""
        return self.production_url(project_id)
