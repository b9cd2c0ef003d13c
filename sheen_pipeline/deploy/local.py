"""The local target: `sheen serve` serves each deployed build's site (its dist files in the
artifact store, so any process can) at /p/<build_id>/; production is whichever build is
promoted, at /prod/<project_id>/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sheen_pipeline.config import FileLimits
from sheen_pipeline.fsutil import deployable_files
from sheen_pipeline.models import Deployed, FileArtifact


class LocalTarget:
    name = "local"

    def __init__(
        self,
        limits: FileLimits,
        preview_url: Callable[[str], str],
        production_url: Callable[[str], str],
    ) -> None:
        self.limits = limits
        self.preview_url = preview_url
        self.production_url = production_url

    def deploy(self, project_id: str, build_id: str, dist: Path) -> Deployed:
        """Nothing to upload: the build step stored dist already; the deploy limits still hold."""
        files = tuple(
            FileArtifact.of(path.relative_to(dist).as_posix(), path.read_bytes())
            for path in deployable_files(dist, self.limits)
        )
        return Deployed(
            target=self.name,
            url=self.preview_url(build_id),
            files=files,
            uploaded_files=len(files),
            uploaded_bytes=sum(f.size for f in files),
        )

    def promote(self, project_id: str, deployed: Deployed) -> str:
        """Nothing to copy: the preview server serves the promoted build's files."""
        return self.production_url(project_id)
