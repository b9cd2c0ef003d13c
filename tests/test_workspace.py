"""Path-safety attacks on the build workspace: nothing may be written outside it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sheen_pipeline.config import FileLimits
from sheen_pipeline.execution.workspace import Workspace
from sheen_pipeline.models import UnsafePath


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "workspaces" / "b1"


@pytest.fixture
def workspace(root: Path) -> Workspace:
    return Workspace(root, FileLimits(max_file_bytes=1000))


def files_outside(tmp_path: Path, root: Path) -> list[Path]:
    return [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and root.resolve() not in p.resolve().parents and "outside" not in p.name
    ]


def test_writes_inside_and_reports_hash_and_size(workspace: Workspace, root: Path) -> None:
    artifact = workspace.write("./js/app.js", "console.log(1);")
    assert artifact.path == "js/app.js"
    assert artifact.size == 15
    assert artifact.sha256 == hashlib.sha256(b"console.log(1);").hexdigest()
    assert (root / "js" / "app.js").read_text() == "console.log(1);"
    assert workspace.read("js/app.js") == "console.log(1);"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "is absolute"),
        ("../escape.txt", "climbs out"),
        ("a/../../escape.txt", "climbs out"),
        ("C:/Windows/evil.txt", "names a drive"),
        ("c:evil.txt", "names a drive"),
        ("..\\escape.txt", "backslash"),
        ("ok\x00.txt", "NUL byte"),
        ("", "empty"),
        ("./.", "names the workspace itself"),
    ],
)
def test_escaping_paths_are_refused(
    workspace: Workspace, tmp_path: Path, root: Path, path: str, reason: str
) -> None:
    with pytest.raises(UnsafePath, match=reason):
        workspace.write(path, "x")
    assert files_outside(tmp_path, root) == []


def test_symlinked_folder_cannot_be_used_to_escape(
    workspace: Workspace, tmp_path: Path, root: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(UnsafePath, match="symbolic link"):
        workspace.write("link/evil.txt", "x")
    with pytest.raises(UnsafePath, match="symbolic link"):
        workspace.read("link/evil.txt")
    assert list(outside.iterdir()) == []


def test_symlinked_file_is_not_followed(workspace: Workspace, tmp_path: Path, root: Path) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("original")
    os.symlink(target, root / "index.html")
    with pytest.raises(UnsafePath, match="symbolic link"):
        workspace.write("index.html", "overwritten")
    assert target.read_text() == "original"


def test_file_size_is_capped(workspace: Workspace, root: Path) -> None:
    with pytest.raises(UnsafePath, match="over the limit of 1000"):
        workspace.write("big.txt", "x" * 1001)
    assert not (root / "big.txt").exists()
    assert workspace.write("fits.txt", "x" * 1000).size == 1000
