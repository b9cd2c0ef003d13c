"""A build's workspace folder: generated paths can never escape it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sheen_pipeline.config import FileLimits
from sheen_pipeline.models import BUILD_TOOL_FOLDERS, FileArtifact, UnsafePath, check_relative_path

DEFAULT_LIMITS = FileLimits()


class Workspace:
    """Reads and writes files under one root, refusing anything that could leave it."""

    def __init__(self, root: Path, limits: FileLimits = DEFAULT_LIMITS) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.limits = limits

    def _generated(self, leaving_out: Path | None = None) -> tuple[int, int]:
        """Count and bytes of the generated files (tasks cannot write into build tool folders,
        so none are there). A sibling task may be fetching files into the folder meanwhile: a
        file gone between listing and counting (its staging copy, renamed) is not counted."""
        count, total = 0, 0
        for folder, dirs, names in os.walk(self.root):
            if Path(folder) == self.root:
                dirs[:] = [d for d in dirs if d not in BUILD_TOOL_FOLDERS]
            for name in names:
                path = Path(folder) / name
                if path == leaving_out:
                    continue
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    count += 1
                    total += info.st_size
        return count, total

    def check_room_for_more(self) -> None:
        """Before a task is paid for: refuse when the build cannot take one more file."""
        count, total = self._generated()
        if count >= self.limits.max_files or total >= self.limits.max_total_bytes:
            raise UnsafePath(
                f"the build already has {count} files and {total} bytes, the limits are "
                f"{self.limits.max_files} files and {self.limits.max_total_bytes} bytes: "
                "no room for another task's files"
            )

    def _check_totals(self, target: Path, size: int) -> None:
        """Generated files are limited in count and total size, whichever task wrote them."""
        count, total = self._generated(leaving_out=target)
        if count + 1 > self.limits.max_files:
            raise UnsafePath(
                f"the workspace already has {count} files, the limit is {self.limits.max_files}"
            )
        if total + size > self.limits.max_total_bytes:
            raise UnsafePath(
                f"writing {size} bytes would take the workspace over {self.limits.max_total_bytes} bytes"
            )

    def _target(self, path: str, create_parents: bool) -> tuple[str, Path]:
        relative = check_relative_path(path)
        current = self.root
        for part in relative.parts[:-1]:
            current = current / part
            if current.is_symlink():
                raise UnsafePath(f"path {path!r} goes through a symbolic link")
            if create_parents:
                current.mkdir(exist_ok=True)
        target = current / relative.parts[-1]
        if target.is_symlink():
            raise UnsafePath(f"path {path!r} is a symbolic link")
        return relative.as_posix(), target

    def write(self, path: str, content: str) -> FileArtifact:
        data = content.encode("utf-8")
        if len(data) > self.limits.max_file_bytes:
            raise UnsafePath(
                f"file {path!r} is {len(data)} bytes, over the limit of {self.limits.max_file_bytes}"
            )
        relative, target = self._target(path, create_parents=True)
        self._check_totals(target, len(data))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return FileArtifact.of(relative, data)

    def read(self, path: str) -> str:
        _, target = self._target(path, create_parents=False)
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            return handle.read().decode("utf-8")

    def exists(self, path: str) -> bool:
        _, target = self._target(path, create_parents=False)
        return target.is_file()

    def remove(self, path: str) -> None:
        """Delete a generated file (a change dropping a file of its base); gone already is fine."""
        _, target = self._target(path, create_parents=False)
        if target.is_file():
            target.unlink()
