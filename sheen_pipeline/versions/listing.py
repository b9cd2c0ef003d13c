"""A project's versions as a tree: each build under the one it changed, with its status, cost,
files changed, preview URL and whether it is in production."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sheen_pipeline.store.deployments import DeploymentStore
from sheen_pipeline.store.files import BuildFiles, Stage
from sheen_pipeline.store.versions import VersionRow, VersionStore


@dataclass(frozen=True)
class Version:
    build_id: str
    base_build_id: str | None
    created_at: datetime
    status: str
    cost_usd: Decimal | None
    files_changed: int | None  # None for a build from scratch
    preview_url: str | None
    in_production: bool
    prompt: str
    depth: int  # how many bases up to a build from scratch (in this listing)

    def as_json(self) -> dict[str, object]:
        return {
            "build_id": self.build_id,
            "base_build_id": self.base_build_id,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "files_changed": self.files_changed,
            "preview_url": self.preview_url,
            "in_production": self.in_production,
            "prompt": self.prompt,
        }


def _files_changed(row: VersionRow, files: BuildFiles) -> int | None:
    """Compared by hash from the two manifests: nothing is read."""
    if row.base_build_id is None:
        return None
    old = {a.path: a.sha256 for a in files.stage_files(row.base_build_id, Stage.SOURCE)}
    new = {a.path: a.sha256 for a in files.stage_files(row.build_id, Stage.SOURCE)}
    return sum(old.get(path) != new.get(path) for path in old.keys() | new.keys())


def project_versions(
    project_id: str, versions: VersionStore, files: BuildFiles, deployments: DeploymentStore
) -> list[Version]:
    """Depth first: each version followed by the versions made from it, oldest first."""
    rows = versions.of_project(project_id)
    live = deployments.production(project_id)
    known = {row.build_id for row in rows}
    children: dict[str | None, list[VersionRow]] = {}
    for row in rows:
        parent = row.base_build_id if row.base_build_id in known else None
        children.setdefault(parent, []).append(row)

    def walk(parent: str | None, depth: int) -> Iterator[Version]:
        for row in children.get(parent, []):
            yield Version(
                build_id=row.build_id,
                base_build_id=row.base_build_id,
                created_at=row.created_at,
                status=row.status.value,
                cost_usd=row.usage.cost_usd,
                files_changed=_files_changed(row, files),
                preview_url=row.preview_url,
                in_production=live is not None and live.build_id == row.build_id,
                prompt=row.prompt,
                depth=depth,
            )
            yield from walk(row.build_id, depth + 1)

    return list(walk(None, 0))
