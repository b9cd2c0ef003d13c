"""File work on folders that untrusted code may have touched. Every path is walked openat-style
(a descriptor per folder, `O_NOFOLLOW` on every step), so no link is ever followed: symbolic
links, hard links, FIFOs, sockets and devices are left out when reading and never written
through; new trees are made with exclusive creates only, and copies swap in only when complete."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sheen_pipeline.config import FileLimits
from sheen_pipeline.models import FileArtifact, UnsafePath, check_relative_path

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeTooLarge(ValueError):
    """A folder holds more files or bytes than may be copied; the message gives the figures."""


class UnreadableName(ValueError):
    """A file name that is not UTF-8 cannot be served or stored; the message shows its bytes."""


@dataclass
class Tree:
    """A folder's regular files by relative POSIX path, and what was left out (and why)."""

    files: dict[str, bytes] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


def regular_files(root: Path, skip: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under root (a folder only this process writes), sorted, skipping symbolic
    links and what lies behind them, and top-level folders named in skip."""
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
    _check_deploy_limits(len(paths), sum(path.stat().st_size for path in paths), limits)
    return paths


def _check_deploy_limits(count: int, total: int, limits: FileLimits) -> None:
    if count > limits.max_deploy_files:
        raise TreeTooLarge(f"{count} files to deploy, over the limit of {limits.max_deploy_files}")
    if total > limits.max_deploy_bytes:
        raise TreeTooLarge(f"{total} bytes to deploy, over the limit of {limits.max_deploy_bytes}")


def read_tree(
    root: Path, limits: FileLimits | None = None, skip: frozenset[str] = frozenset()
) -> Tree:
    """The regular files under root (but the top-level folders in skip), read without following
    any link; with limits, refused before anything is read when over the deploy limits."""
    tree = Tree()
    found: list[tuple[str, int, tuple[int, int], int]] = []  # path, parent fd, (dev, ino), size
    root_fd = os.open(root, DIRECTORY_FLAGS)
    opened = [root_fd]
    try:
        for relative, parent_fd, entry in _walk(root_fd, "", skip, opened):
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                tree.left_out.append(f"{relative} (not a regular file)")
            elif info.st_nlink > 1:
                tree.left_out.append(f"{relative} (a hard link)")
            else:
                found.append((relative, parent_fd, (info.st_dev, info.st_ino), info.st_size))
        if limits is not None:
            _check_deploy_limits(len(found), sum(size for *_, size in found), limits)
        for relative, parent_fd, identity, _ in found:
            tree.files[relative] = _read_same_file(parent_fd, relative, identity)
    finally:
        for fd in opened:
            os.close(fd)
    tree.files = dict(sorted(tree.files.items()))
    return tree


def _walk(
    folder_fd: int, prefix: str, skip: frozenset[str], opened: list[int]
) -> Iterator[tuple[str, int, os.DirEntry[str]]]:
    """(relative path, parent folder's fd, entry) for everything but folders, depth first;
    folders are entered by descriptor, never through a link."""
    with os.scandir(folder_fd) as entries:
        listed = sorted(entries, key=lambda e: e.name)
    for entry in listed:
        relative = f"{prefix}{_utf8(prefix, entry.name)}"
        if entry.is_dir(follow_symlinks=False):
            if not prefix and entry.name in skip:
                continue
            child = os.open(entry.name, DIRECTORY_FLAGS, dir_fd=folder_fd)
            opened.append(child)
            yield from _walk(child, f"{relative}/", skip, opened)
        else:
            yield relative, folder_fd, entry


def _utf8(prefix: str, name: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(prefix + name)
        raise UnreadableName(
            f"the file name {raw!r} is not UTF-8: rename it (only UTF-8 names can be "
            "served and stored)"
        ) from None
    return name


def _read_same_file(parent_fd: int, relative: str, identity: tuple[int, int]) -> bytes:
    """Read the file the walk saw, refusing anything that took its place since."""
    fd = os.open(relative.rsplit("/", 1)[-1], READ_FLAGS, dir_fd=parent_fd)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != identity:
            raise UnsafePath(f"{relative!r} changed while it was being read")
        return handle.read()


def put_file(root: Path, path: str, data: bytes) -> None:
    """Write root/path atomically (a reader never sees half a file), creating its folders; no
    link on the way is followed, and one in the way is an UnsafePath."""
    parts = check_relative_path(path).parts
    folder_fd = _open_parent(root, parts, path, create=True)
    try:
        staging = f".{parts[-1]}-{os.urandom(6).hex()}"
        fd = os.open(staging, NEW_FILE_FLAGS, 0o644, dir_fd=folder_fd)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(staging, parts[-1], src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    finally:
        os.close(folder_fd)


def holds(root: Path, artifact: FileArtifact) -> bool:
    """Whether root holds the artifact: a regular file (reached without following links) of
    its size and digest."""
    parts = check_relative_path(artifact.path).parts
    try:
        folder_fd = _open_parent(root, parts, artifact.path, create=False)
    except (OSError, UnsafePath):
        return False
    try:
        fd = os.open(parts[-1], READ_FLAGS, dir_fd=folder_fd)
    except OSError:
        return False
    finally:
        os.close(folder_fd)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != artifact.size:
            return False
        return hashlib.sha256(handle.read()).hexdigest() == artifact.sha256


def _open_parent(root: Path, parts: tuple[str, ...], path: str, create: bool) -> int:
    """The descriptor of the folder holding path's last part, entered one folder at a time."""
    folder_fd = os.open(root, DIRECTORY_FLAGS)
    for part in parts[:-1]:
        folder_fd = _enter(folder_fd, part, path, create)
    return folder_fd


def _enter(folder_fd: int, name: str, path: str, create: bool) -> int:
    """The descriptor of folder/name (made when missing and create); closes folder_fd."""
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=folder_fd)
        try:
            return os.open(name, DIRECTORY_FLAGS, dir_fd=folder_fd)
        except FileNotFoundError:
            raise
        except OSError:  # a link (ELOOP) or a file (ENOTDIR) where a folder belongs
            raise UnsafePath(f"path {path!r} goes through something that is not a folder") from None
    finally:
        os.close(folder_fd)


def write_new_tree(root: Path, files: Mapping[str, bytes]) -> None:
    """Make root (which must not exist yet) hold exactly files."""
    root.mkdir(mode=0o755)
    for path, data in files.items():
        put_file(root, path, data)


def swap_in(destination: Path, files: Mapping[str, bytes]) -> list[FileArtifact]:
    """Make destination (a folder of this process's) hold exactly files, all at once."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.parent / f".{destination.name}-{os.urandom(6).hex()}"
    write_new_tree(staging, files)
    if destination.exists():
        shutil.rmtree(destination)
    staging.rename(destination)
    return [FileArtifact.of(path, data) for path, data in files.items()]
