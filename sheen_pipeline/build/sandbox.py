"""Run build commands of generated projects: in the workspace, with a minimal environment (no
keys, tokens or secrets of ours), a time limit, and their own process group, killed whole on
timeout so no grandchild survives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 5.0
MAX_OUTPUT_CHARS = 20_000
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


class CommandFailed(RuntimeError):
    """A build command failed or ran out of time; the message says which and how."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class CommandOutput:
    command: str
    output: str


def minimal_env(workspace: Path, cache_dir: Path) -> dict[str, str]:
    """Only what npm and node need; nothing is copied from this process's environment."""
    tool_dirs = {
        str(Path(found).parent) for name in ("npm", "node") if (found := shutil.which(name))
    }
    home = workspace / ".home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": ":".join([*sorted(tool_dirs), SYSTEM_PATH]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NODE_ENV": "production",
        "CI": "true",
        "npm_config_cache": str(cache_dir),
        "npm_config_update_notifier": "false",
    }


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else "…" + text[-MAX_OUTPUT_CHARS:]


def _kill_group(process: subprocess.Popen[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(
    args: Sequence[str], cwd: Path, env: dict[str, str], timeout_s: float
) -> CommandOutput:
    command = " ".join(args)
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        raise CommandFailed(
            f"`{command}` timed out after {timeout_s:g}s and was killed", _tail(output)
        ) from None
    finally:
        if process.poll() is None:
            _kill_group(process)
    if process.returncode != 0:
        raise CommandFailed(
            f"`{command}` failed with exit code {process.returncode}", _tail(output)
        )
    return CommandOutput(command, _tail(output))
