"""A cgroup (v1 `pids` and `memory`) per sandboxed command: its process and memory limits are its
own, not shared with every other sandbox by uid (all of them run as nobody), and the memory limit
counts what it writes into its tmpfs folders too. Needs root and writable cgroup v1 controllers;
elsewhere the sandbox falls back to per-uid limits (see sandbox.py)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "sheen"
EMPTY_TIMEOUT_S = 10.0


def available() -> bool:
    """Root, with the pids and memory controllers mounted writable (cgroup v1)."""
    return os.geteuid() == 0 and all(
        os.access(CGROUP_ROOT / controller / "cgroup.procs", os.W_OK)
        for controller in ("pids", "memory")
    )


@contextmanager
def confined_group(label: str, max_processes: int, memory_bytes: int) -> Iterator[list[Path]]:
    """A fresh cgroup for one command: yields the `cgroup.procs` files a process writes its pid
    into to join it (none when cgroups are unavailable). On exit every process still in it is
    killed and the cgroup removed."""
    if not available():
        yield []
        return
    name = f"{label}-{uuid.uuid4().hex[:12]}"
    pids = _make(CGROUP_ROOT / "pids" / PARENT / name, {"pids.max": max_processes})
    memory_limits = {"memory.limit_in_bytes": memory_bytes}
    if (CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes").exists():  # swap counts too
        memory_limits["memory.memsw.limit_in_bytes"] = memory_bytes
    try:
        memory = _make(CGROUP_ROOT / "memory" / PARENT / name, memory_limits)
    except BaseException:
        _remove(pids)
        raise
    try:
        yield [pids / "cgroup.procs", memory / "cgroup.procs"]
    finally:
        _remove(pids)
        _remove(memory)


def _make(folder: Path, limits: dict[str, int]) -> Path:
    folder.parent.mkdir(exist_ok=True)  # the controller's own tree, never a workspace
    folder.mkdir()
    for name, value in limits.items():
        (folder / name).write_text(str(value))
    return folder


def _remove(folder: Path) -> None:
    """Kill what is left in the cgroup, wait until it is empty, then remove it."""
    deadline = time.monotonic() + EMPTY_TIMEOUT_S
    while True:
        try:
            pids = [int(pid) for pid in (folder / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not pids:
            try:
                folder.rmdir()
                return
            except OSError:  # the last process is still leaving
                pass
        if time.monotonic() > deadline:
            return  # left for the operator; never blocks the build's result
        time.sleep(0.05)
