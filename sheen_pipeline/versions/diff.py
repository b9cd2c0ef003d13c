"""The difference between a version and its base: files added, changed, removed and kept, lines
added and removed, and a unified diff (trimmed for the UI; stored whole as an artifact)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sheen_pipeline.models import FileArtifact
from sheen_pipeline.store.files import BuildFiles, Stage

DIFF_PATH = "changes.diff"  # the whole diff, in the build's `changes` stage
TRIMMED_LINES = 200


@dataclass(frozen=True)
class VersionDiff:
    base_build_id: str
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    lines_added: int
    lines_removed: int
    text: str

    @property
    def files_changed(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)

    def trimmed(self, max_lines: int = TRIMMED_LINES) -> str:
        lines = self.text.splitlines()
        if len(lines) <= max_lines:
            return self.text
        rest = len(lines) - max_lines
        return "\n".join([*lines[:max_lines], f"... {rest} more lines (sheen diff shows all)"])

    def summary(self) -> dict[str, object]:
        return {
            "base_build_id": self.base_build_id,
            "files_added": len(self.added),
            "files_changed": len(self.changed),
            "files_removed": len(self.removed),
            "files_unchanged": len(self.unchanged),
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
        }


def _lines(data: bytes | None) -> list[str] | None:
    """A file's lines, or None for a binary file (no line diff)."""
    if data is None:
        return []
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _file_diff(path: str, old: bytes | None, new: bytes | None) -> list[str]:
    before, after = _lines(old), _lines(new)
    if before is None or after is None:
        return [f"Binary files a/{path} and b/{path} differ\n"]
    out = list(
        difflib.unified_diff(
            before,
            after,
            fromfile="/dev/null" if old is None else f"a/{path}",
            tofile="/dev/null" if new is None else f"b/{path}",
        )
    )
    return [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out
    ]


def diff_versions(
    base_build_id: str,
    base: Sequence[FileArtifact],
    version: Sequence[FileArtifact],
    read: Callable[[FileArtifact], bytes],
) -> VersionDiff:
    """Compared by hash first: a carried-over file is never read."""
    old = {a.path: a for a in base}
    new = {a.path: a for a in version}
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    common = sorted(old.keys() & new.keys())
    changed = [p for p in common if old[p].sha256 != new[p].sha256]
    unchanged = [p for p in common if old[p].sha256 == new[p].sha256]
    lines: list[str] = []
    for path in sorted([*added, *removed, *changed]):
        before = read(old[path]) if path in old else None
        after = read(new[path]) if path in new else None
        lines += _file_diff(path, before, after)
    plus = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    minus = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return VersionDiff(
        base_build_id,
        tuple(added),
        tuple(changed),
        tuple(removed),
        tuple(unchanged),
        plus,
        minus,
        "".join(lines),
    )


def diff_of_build(build_id: str, base_build_id: str, files: BuildFiles) -> VersionDiff:
    """A build's source against its base's, from the artifact store."""
    return diff_versions(
        base_build_id,
        files.stage_files(base_build_id, Stage.SOURCE),
        files.stage_files(build_id, Stage.SOURCE),
        files.read,
    )
