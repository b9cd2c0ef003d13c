"""Each build's files, by stage, in shared storage: the generated source (written by tasks),
the built site (dist) and the preview's screenshots. A row maps a path to content in the blob
store; a process that needs the files as a folder materializes them, so a local folder is only a
cache, and never one another machine wrote."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, and_, delete, insert, select

from sheen_pipeline.fsutil import holds, put_file, read_tree, regular_files
from sheen_pipeline.models import FileArtifact, check_relative_path
from sheen_pipeline.store.blobs import BlobStore, open_blobs
from sheen_pipeline.store.engines import engine_for
from sheen_pipeline.store.tables import build_files


class Stage(StrEnum):
    SOURCE = "source"
    DIST = "dist"
    SCREENSHOTS = "screenshots"
    CHANGES = "changes"  # a change's diff against its base
    SOURCE_MAPS = "source_maps"  # the bundles' maps: for the checks, not deployed unless asked


class BuildFiles:
    def __init__(self, engine: Engine, blobs: BlobStore) -> None:
        self.engine = engine
        self.blobs = blobs

    @classmethod
    def open(cls, database_url: str, artifact_store: str) -> BuildFiles:
        """SHEEN_DATABASE_URL's manifests over SHEEN_ARTIFACT_STORE's contents."""
        engine = engine_for(database_url)
        return cls(engine, open_blobs(artifact_store, engine))

    def save(self, build_id: str, stage: Stage, contents: dict[str, bytes]) -> list[FileArtifact]:
        """Store contents, then point the stage's paths at them (a path written again by a later
        task or attempt takes its new content)."""
        artifacts = self._put_all(contents)
        where = self._stage(build_id, stage)
        with self.engine.begin() as conn:
            if artifacts:
                paths = [a.path for a in artifacts]
                conn.execute(delete(build_files).where(where, build_files.c.path.in_(paths)))
                conn.execute(
                    insert(build_files), [self._row(build_id, stage, a) for a in artifacts]
                )
        return artifacts

    def replace(self, build_id: str, stage: Stage, folder: Path) -> list[FileArtifact]:
        """The stage becomes exactly the folder's regular files (a rebuilt site, new screenshots)."""
        return self.replace_with(
            build_id, stage, read_tree(folder).files if folder.is_dir() else {}
        )

    def replace_with(
        self, build_id: str, stage: Stage, contents: dict[str, bytes]
    ) -> list[FileArtifact]:
        """The stage becomes exactly contents."""
        return self._set_stage(build_id, stage, self._put_all(contents))

    def carry_over(self, base_id: str, build_id: str, stage: Stage) -> list[FileArtifact]:
        """A change starts from its base's files: the stage's rows point at the same contents
        (by hash), so nothing is copied or fetched."""
        return self._set_stage(build_id, stage, self.stage_files(base_id, stage))

    def _set_stage(
        self, build_id: str, stage: Stage, artifacts: list[FileArtifact]
    ) -> list[FileArtifact]:
        """The stage holds exactly these artifacts, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(delete(build_files).where(self._stage(build_id, stage)))
            if artifacts:
                conn.execute(
                    insert(build_files), [self._row(build_id, stage, a) for a in artifacts]
                )
        return artifacts

    def remove(self, build_id: str, stage: Stage, paths: list[str]) -> None:
        """Drop paths from the stage (a change deleting files of its base)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(build_files).where(
                    self._stage(build_id, stage), build_files.c.path.in_(paths)
                )
            )

    def _put_all(self, contents: dict[str, bytes]) -> list[FileArtifact]:
        return [
            FileArtifact(path=path, sha256=self.blobs.put(data), size=len(data))
            for path, data in contents.items()
        ]

    def stage_files(self, build_id: str, stage: Stage) -> list[FileArtifact]:
        query = select(build_files).where(self._stage(build_id, stage)).order_by(build_files.c.path)
        with self.engine.connect() as conn:
            return [
                FileArtifact(path=row.path, sha256=row.sha256, size=row.size)
                for row in conn.execute(query)
            ]

    def find(self, build_id: str, stage: Stage, path: str) -> FileArtifact | None:
        query = select(build_files).where(self._stage(build_id, stage), build_files.c.path == path)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (
            None if row is None else FileArtifact(path=row.path, sha256=row.sha256, size=row.size)
        )

    def read(self, artifact: FileArtifact) -> bytes:
        return self.blobs.get(artifact.sha256)

    def materialize(
        self, build_id: str, stage: Stage, folder: Path, prune: frozenset[str] | None = None
    ) -> list[FileArtifact]:
        """Make folder hold the stage's files: missing or different ones are fetched (written
        atomically, so a concurrent reader never sees half a file, and never through a link
        found in the folder). With prune, files the stage does not have are removed too, except
        under the top-level folders it names (build tool caches); without, files other steps in
        this process are writing are left alone."""
        artifacts = self.stage_files(build_id, stage)
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {check_relative_path(a.path).as_posix(): a for a in artifacts}
        for path in [] if prune is None else regular_files(folder, skip=prune):
            if path.relative_to(folder).as_posix() not in wanted:
                path.unlink()
        for relative, artifact in wanted.items():
            if not holds(folder, artifact):
                put_file(folder, relative, self.read(artifact))
        return artifacts

    @staticmethod
    def _stage(build_id: str, stage: Stage) -> ColumnElement[bool]:
        return and_(build_files.c.build_id == build_id, build_files.c.stage == stage.value)

    @staticmethod
    def _row(build_id: str, stage: Stage, artifact: FileArtifact) -> dict[str, object]:
        return {"build_id": build_id, "stage": stage.value, **artifact.model_dump()}
