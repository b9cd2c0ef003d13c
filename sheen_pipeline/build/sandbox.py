"""Run build commands of generated projects (untrusted code) in a bubblewrap sandbox: an
unprivileged user, a read-only system, nothing of the host's files but the system folders, the
build's own workspace and the npm cache; a private /tmp, its own process tree, no network unless
asked for (npm install), limits on memory, processes, CPU time and file size, a time limit, and
a minimal environment (no keys, tokens or secrets of ours). Killed whole on timeout."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sheen_pipeline.config import SandboxSettings

KILL_GRACE_S = 5.0
MAX_OUTPUT_CHARS = 20_000
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
NOBODY = 65534
SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt")
FALLBACK_HINT = (
    "install bubblewrap (apt-get install bubblewrap) where unprivileged user namespaces are "
    "allowed, or, for trusted local use only, set SHEEN_SANDBOX=off"
)


class CommandFailed(RuntimeError):
    """A build command failed or ran out of time; the message says which and how."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; generated code is then never run."""


@dataclass(frozen=True)
class CommandOutput:
    command: str
    output: str


def minimal_env(workspace: Path, cache_dir: Path) -> dict[str, str]:
    """Only what npm and node need; nothing is copied from this process's environment."""
    home = workspace / ".home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": ":".join([*sorted(str(d) for d in _tool_dirs()), SYSTEM_PATH]),
        "HOME": str(home),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "NODE_ENV": "production",
        "CI": "true",
        "npm_config_cache": str(cache_dir),
        "npm_config_update_notifier": "false",
        "npm_config_registry": "https://registry.npmjs.org/",  # a project .npmrc cannot redirect
    }


def _tool_dirs() -> set[Path]:
    """Folders of node and npm (and where their links point), to be visible read-only."""
    dirs = set()
    for name in ("npm", "node"):
        found = shutil.which(name)
        if found:
            dirs |= {Path(found).parent, Path(found).resolve().parent}
    return dirs


class Sandbox:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings

    def run(
        self,
        args: Sequence[str],
        workspace: Path,
        cache_dir: Path,
        timeout_s: float,
        *,
        network: bool = False,
    ) -> CommandOutput:
        """Run args in the workspace; CommandFailed when it fails or runs out of time."""
        cache_dir.mkdir(parents=True, exist_ok=True)
        env = minimal_env(workspace, cache_dir)
        if not self.settings.enabled:
            return _run(list(args), env, timeout_s, cwd=workspace)
        check_sandbox_works()
        writable = (workspace.resolve(), cache_dir.resolve())
        if os.geteuid() == 0:  # root drops to nobody, which must own what it may write
            for folder in writable:
                _chown_tree(folder, NOBODY)
        command = _sandboxed(args, writable, workspace.resolve(), network, self._limits(timeout_s))
        return _run(command, env, timeout_s, shown=" ".join(args))

    def _limits(self, timeout_s: float) -> list[str]:
        mib = 1024 * 1024
        return [
            "prlimit",
            f"--data={self.settings.memory_mb * mib}",
            f"--nproc={self.settings.max_processes}",
            f"--fsize={self.settings.max_file_mb * mib}",
            f"--cpu={int(timeout_s) + 1}",
            "--",
        ]


# Run as root, in a private mount namespace: the writable folders are first bound under a
# fresh /mnt that anyone may traverse (bwrap, as nobody, resolves its sources by path, and
# SHEEN_HOME may sit in a folder only root can enter); then root becomes nobody for good.
STAGE_AS_ROOT = (
    'mount -t tmpfs -o mode=0755 sheen-sandbox /mnt && n=0 && while [ "$1" != -- ]; do '
    'mkdir /mnt/$n && mount --bind "$1" /mnt/$n && n=$((n+1)) && shift; done && shift && '
    f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all -- "$@"'
)


def _sandboxed(
    args: Sequence[str],
    writable: Sequence[Path],
    workspace: Path,
    network: bool,
    limits: Sequence[str],
) -> list[str]:
    """The whole command line: as root, staged binds and a drop to nobody around bwrap; as
    any other user, bwrap straight away (its user namespace makes it unprivileged)."""
    if os.geteuid() != 0:
        binds = [(folder, folder) for folder in writable]
        return [*limits, *_bwrap(binds, workspace, network), *args]
    binds = [(Path(f"/mnt/{n}"), folder) for n, folder in enumerate(writable)]
    stage = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", STAGE_AS_ROOT]
    return [
        *stage,
        "sh",
        *map(str, writable),
        "--",
        *limits,
        *_bwrap(binds, workspace, network),
        *args,
    ]


def _bwrap(binds: Sequence[tuple[Path, Path]], workspace: Path, network: bool) -> list[str]:
    """The bwrap command line: system folders read-only, each (source, destination) bound
    writable, everything else absent."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    if network:
        args.append("--share-net")
    for folder in SYSTEM_FOLDERS:
        path = Path(folder)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    for tool_dir in sorted(_tool_dirs()):
        if not tool_dir.is_relative_to("/usr"):  # node from elsewhere (nvm, a tarball)
            args += ["--ro-bind-try", str(tool_dir), str(tool_dir)]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for source, destination in binds:
        args += ["--bind", str(source), str(destination)]
    return [*args, "--chdir", str(workspace), "--"]


def _chown_tree(root: Path, uid: int) -> None:
    for folder, dirs, names in os.walk(root):
        os.chown(folder, uid, uid, follow_symlinks=False)
        for name in (*dirs, *names):
            os.chown(Path(folder) / name, uid, uid, follow_symlinks=False)


@cache
def check_sandbox_works() -> None:
    """Start an empty sandbox once per process; raise SandboxUnavailable saying why not."""
    tools = (
        ("bwrap", "prlimit", "unshare", "setpriv") if os.geteuid() == 0 else ("bwrap", "prlimit")
    )
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(f"{' and '.join(missing)} not found: {FALLBACK_HINT}")
    probe = subprocess.run(
        _sandboxed(["true"], (), Path("/"), network=False, limits=()),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip() or f"exit code {probe.returncode}"
        raise SandboxUnavailable(f"the build sandbox cannot start ({reason}): {FALLBACK_HINT}")


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


def _run(
    command: list[str],
    env: dict[str, str],
    timeout_s: float,
    *,
    shown: str | None = None,
    cwd: Path = Path("/"),
) -> CommandOutput:
    shown = shown or " ".join(command)
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        raise CommandFailed(
            f"`{shown}` timed out after {timeout_s:g}s and was killed", _tail(output)
        ) from None
    finally:
        if process.poll() is None:
            _kill_group(process)
    if process.returncode != 0:
        raise CommandFailed(_failure(shown, process.returncode), _tail(output))
    return CommandOutput(shown, _tail(output))


def _failure(shown: str, returncode: int) -> str:
    """Exit codes say what the sandbox did: a signal means a limit or a crash."""
    if returncode < 0 or returncode > 128:
        number = -returncode if returncode < 0 else returncode - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = ""
        hint = {
            "SIGXCPU": "its CPU time limit",
            "SIGXFSZ": "the file size limit (SHEEN_SANDBOX_MAX_FILE_MB)",
            "SIGKILL": "killed (out of memory or time)",
            "SIGSEGV": "a crash (often the memory limit, SHEEN_SANDBOX_MEMORY_MB)",
            "SIGABRT": "aborted (often the memory limit, SHEEN_SANDBOX_MEMORY_MB)",
        }.get(name, "a signal")
        return f"`{shown}` was stopped by {name or number}: {hint}"
    return f"`{shown}` failed with exit code {returncode}"
